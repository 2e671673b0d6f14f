// consent.js — what the signatory is told before anything is recorded, and the
// proof of what was shown: a text version and the SHA-256 of the exact text.

import { t, lang } from './i18n.js';

/** Bump when the meaning of the consent text changes (catalogue keys consent.*). */
export const CONSENT_VERSION = 'consent-1';

/** The catalogue keys of the information shown, in display order. */
export const INFO_KEYS = [
  'consent.info.purpose',
  'consent.info.recorded',
  'consent.info.stills',
  'consent.info.technical',
  'consent.info.retention',
  'consent.info.access',
  'consent.info.withdraw',
];
export const STATEMENT_KEY = 'consent.statement';

export function params(retentionYears) {
  return { years: retentionYears };
}

/** The texts shown, in the current language. */
export function shownInformation(retentionYears) {
  return INFO_KEYS.map((k) => t(k, params(retentionYears)));
}

/** The exact text the signatory agrees to: information, then the statement. */
export function consentText(retentionYears) {
  return [t('consent.title'), ...shownInformation(retentionYears), t(STATEMENT_KEY, params(retentionYears))]
    .join('\n')
    .normalize('NFC');
}

export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The consent message of the protocol, and the time the signatory agreed (browser clock, ISO). */
export async function consentMessage(retentionYears) {
  const text = consentText(retentionYears);
  return {
    message: {
      type: 'consent',
      text_version: `${CONSENT_VERSION}.${lang()}`,
      text_sha256: await sha256Hex(text),
      shown_information: shownInformation(retentionYears).map((s) => s.slice(0, 256)),
    },
    acceptedAt: new Date().toISOString(),
    text,
  };
}
