// stills.js — the officer console's stills gallery shows what the recorder
// saved: once the recorder reports a still saved (still-saved), the image is
// the PNG it decoded from the signatory's received video, fetched from
// GET /api/sessions/<id>/stills/<name> (cookie-authenticated), with its
// offset in the recording. Until then, or if the server cannot give it, the
// console's own preview (a frame of its <video>) stands in, marked as such.

import { t } from './i18n.js';

/** The officer-API URL of still @name of session @sessionId. */
export function stillUrl(sessionId, name) {
  return `/api/sessions/${encodeURIComponent(sessionId)}/stills/${encodeURIComponent(name)}`;
}

function params(s) {
  return { kind: t(`stills.kind.${s.kind}`), name: s.name, seconds: (s.offset_ms / 1000).toFixed(1), part: s.part };
}

function previewImage(s) {
  const img = document.createElement('img');
  img.src = s.thumb;
  img.alt = t('stills.alt', { kind: t(`stills.kind.${s.kind}`) });
  img.dataset.source = 'preview';
  return img;
}

/**
 * The image for gallery entry @s ({kind, saved, name, part, offset_ms, thumb})
 * of session @sessionId: the recorder's PNG once saved, else the console's
 * preview (or null without one). A recorder image that fails to load is
 * replaced by the preview and a note, so the gallery never shows a broken image.
 * The <img> carries data-source ("recorder" | "preview") and, once decoded,
 * data-loaded="true".
 */
export function stillImage(sessionId, s) {
  if (!s.saved || !s.name) return s.thumb ? previewImage(s) : null;
  const img = document.createElement('img');
  img.dataset.source = 'recorder';
  img.alt = t('stills.alt-recorded', params(s));
  img.decoding = 'async';
  img.addEventListener('load', () => { img.dataset.loaded = 'true'; }, { once: true });
  img.addEventListener('error', () => {
    const note = document.createElement('p');
    note.className = 'hint';
    note.textContent = t('stills.recorded-unavailable', params(s));
    note.dataset.source = 'error';
    img.replaceWith(...[s.thumb ? previewImage(s) : null, note].filter(Boolean));
  }, { once: true });
  img.src = stillUrl(sessionId, s.name);
  return img;
}
