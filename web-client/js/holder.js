// holder.js — the certificate holder's portal: log in with the national ID,
// see one's certificates and cases, revoke one's own certificate with a
// reason, follow a case and complete an approved renewal from a CSR
// (docs/protocol.md, "Holder portal"). Phone-sized pages, no build step.

import * as i18n from './i18n.js';
import { t, setText } from './i18n.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'i18n') setText(e, v[0], v[1]);
    else if (k in e && k !== 'list') e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
};
const enc = encodeURIComponent;
/** The server refuses a CSR above this size. */
export const MAX_CSR = 16 * 1024;

/* ------------------------------------------------------------ API */

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.body = body;
  }
}

let csrf = null;

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/* ------------------------------------------------------------ state and messages */

const app = { holder: null, certs: [], cases: [] };
window.testigoHolder = { app };

function status(key, params) { setText($('status'), key || '', params); }

function alertBox(key, params) {
  if (!key) { $('alert').hidden = true; return; }
  setText($('alert-text'), key, params);
  $('alert').hidden = false;
}

function showApiError(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) { app.holder = null; route(); alertBox('login.expired'); return; }
    alertBox('error.server', { status: e.status, message: e.message });
    return;
  }
  alertBox('error.network', { message: e.message });
}

const fmtTime = (v) => {
  if (v == null || v === '') return '—';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString(i18n.lang() === 'es' ? 'es-VE' : 'en-GB');
};

function showView(id) {
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== id;
  const h = document.querySelector(`#${id} h1`);
  if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
}

/* ------------------------------------------------------------ routing */

async function route() {
  alertBox(null);
  if (!app.holder) {
    $('who').hidden = true;
    $('logout').hidden = true;
    showView('view-login');
    return;
  }
  $('who').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = app.holder.name || app.holder.national_id;
  const hash = location.hash || '#/';
  let m;
  if ((m = hash.match(/^#\/revoke\/([0-9A-Fa-f]{1,40})$/))) await openRevoke(m[1]);
  else if ((m = hash.match(/^#\/case\/([A-Za-z0-9_.-]{1,64})$/))) await openCase(m[1]);
  else await openHome();
}

/* ------------------------------------------------------------ login */

async function onLogin(ev) {
  ev.preventDefault();
  $('login-error').textContent = '';
  const nid = $('login-nid').value.trim();
  const password = $('login-password').value;
  if (!nid || !password) { setText($('login-error'), 'holder.login.missing'); return; }
  $('login-submit').disabled = true;
  try {
    const r = await request('POST', '/api/holder/login', { national_id: nid, password });
    csrf = r.csrf_token;
    app.holder = r.holder;
    $('login-password').value = '';
    await route();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 400)) setText($('login-error'), 'holder.login.failed');
    else if (e instanceof ApiError && e.status === 429) setText($('login-error'), 'login.limited');
    else showApiError(e);
  } finally {
    $('login-submit').disabled = false;
  }
}

async function onLogout() {
  try { await request('POST', '/api/holder/logout', {}); } catch { /* the cookie expires anyway */ }
  csrf = null;
  app.holder = null;
  location.hash = '#/';
  await route();
}

/* ------------------------------------------------------------ home */

async function openHome() {
  showView('view-home');
  try {
    const [certs, cases] = await Promise.all([request('GET', '/api/holder/certificates'), request('GET', '/api/holder/cases')]);
    app.certs = certs.certificates || [];
    app.cases = cases.cases || [];
  } catch (e) { showApiError(e); return; }
  $('cert-table').tBodies[0].replaceChildren(...app.certs.map((c) => {
    const actions = el('td', {});
    const canRevoke = c.state === 'valid' || c.state === 'held';
    if (canRevoke) actions.append(el('a', { href: `#/revoke/${enc(c.serial)}`, className: 'button danger small', i18n: ['holder.revoke'] }));
    const row = el('tr', { 'data-serial': c.serial, 'data-state': c.state },
      el('td', {}, el('code', {}, c.serial)),
      c.state === 'held' && c.hold_deadline
        ? el('td', { i18n: ['holder.held-until', { time: fmtTime(c.hold_deadline) }] })
        : el('td', { i18n: [`holder.state.${c.state}`] }),
      el('td', {}, fmtTime(c.not_after)),
      actions);
    return row;
  }));
  $('certs-empty').hidden = app.certs.length > 0;
  $('case-list').replaceChildren(...app.cases.map((c) => el('li', { 'data-case': c.id },
    el('a', { href: `#/case/${enc(c.id)}` }, c.id), ' — ', el('span', { i18n: [`action.${c.action}`] }), ' — ',
    el('span', { i18n: [`state.${c.state}`] }),
    c.applied ? el('span', {}, ' — ', el('span', { i18n: ['holder.case.applied'] })) : null)));
  $('cases-empty').hidden = app.cases.length > 0;
}

/* ------------------------------------------------------------ revoke */

let revokeSerial = null;

async function openRevoke(serial) {
  showView('view-revoke');
  revokeSerial = serial.toUpperCase();
  setText($('revoke-title'), 'holder.revoke.heading', { serial: revokeSerial });
  $('revoke-form').reset();
  syncReason();
  for (const e of $('revoke-form').querySelectorAll('.field-error')) e.textContent = '';
}

function syncReason() {
  $('revoke-when-field').hidden = $('revoke-reason').value !== 'key-compromise';
}

async function onRevoke(ev) {
  ev.preventDefault();
  for (const e of $('revoke-form').querySelectorAll('.field-error')) e.textContent = '';
  const reason = $('revoke-reason').value;
  const details = $('revoke-details').value.trim();
  const bad = [];
  if (!reason) bad.push(['revoke-reason', 'holder.err.reason']);
  if (!details) bad.push(['revoke-details', 'holder.err.details']);
  if (!$('revoke-confirm').checked) bad.push(['revoke-confirm', 'holder.err.confirm']);
  const body = { reason, details };
  if (reason === 'key-compromise' && $('revoke-when').value) {
    const when = new Date($('revoke-when').value);
    if (Number.isNaN(when.getTime()) || when.getTime() > Date.now()) bad.push(['revoke-when', 'holder.err.when']);
    else body.compromised_at = when.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  for (const [id, key] of bad) setText($(`${id}-error`), key);
  if (bad.length) { $(bad[0][0]).focus(); return; }
  $('revoke-submit').disabled = true;
  try {
    const r = await request('POST', `/api/holder/certificates/${enc(revokeSerial)}/revoke`, body);
    status('holder.revoked', { serial: r.serial, id: r.case_id });
    location.hash = '#/';
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401) $('revoke-error').textContent = e.message;
    else showApiError(e);
  } finally {
    $('revoke-submit').disabled = false;
  }
}

/* ------------------------------------------------------------ case and renewal */

let currentCase = null;
let pemUrl = null;

async function openCase(id) {
  showView('view-case');
  $('renew-result').hidden = true;
  $('renew-form').hidden = true;
  let c;
  try { c = await request('GET', `/api/holder/cases/${enc(id)}`); } catch (e) { showApiError(e); return; }
  currentCase = c;
  setText($('case-title'), 'case.heading', { id: c.id });
  const facts = [
    ['case.action', t(`action.${c.action}`)], ['case.serial', c.serial], ['case.reason', c.reason],
    ['case.state', t(`state.${c.state}`)], ['case.created_at', fmtTime(c.created_at)],
  ];
  if (c.applied) facts.push(['holder.case.applied_at', fmtTime(c.applied_at)]);
  if (c.new_serial) facts.push(['holder.case.new_serial', c.new_serial]);
  $('case-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { i18n: [k] }), el('dd', {}, v)]));
  $('renew-form').hidden = !(c.action === 'renewal' && c.state === 'approved' && !c.renewed);
  $('renew-form').reset();
  $('renew-csr-error').textContent = '';
  $('renew-error').textContent = '';
}

async function onRenewFile() {
  const f = $('renew-file').files[0];
  if (!f) return;
  if (f.size > MAX_CSR) { setText($('renew-csr-error'), 'holder.err.csr-size', { kb: MAX_CSR / 1024 }); return; }
  $('renew-csr').value = await f.text();
}

async function onRenew(ev) {
  ev.preventDefault();
  const c = currentCase;
  if (!c) return;
  $('renew-csr-error').textContent = '';
  $('renew-error').textContent = '';
  const csr = $('renew-csr').value.trim().replace(/\r\n/g, '\n') + '\n';
  if (!/^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+\n-----END CERTIFICATE REQUEST-----\n$/.test(csr)) {
    setText($('renew-csr-error'), 'holder.err.csr');
    $('renew-csr').focus();
    return;
  }
  if (csr.length > MAX_CSR) { setText($('renew-csr-error'), 'holder.err.csr-size', { kb: MAX_CSR / 1024 }); return; }
  $('renew-submit').disabled = true;
  try {
    const r = await request('POST', `/api/holder/cases/${enc(c.id)}/renew`, { csr });
    if (pemUrl) URL.revokeObjectURL(pemUrl);
    pemUrl = URL.createObjectURL(new Blob([r.certificate], { type: 'application/x-pem-file' }));
    await openCase(c.id);
    $('renew-facts').replaceChildren(el('dt', { i18n: ['holder.renew.old'] }), el('dd', {}, r.old_serial),
      el('dt', { i18n: ['holder.renew.new'] }), el('dd', { id: 'renew-new-serial' }, r.serial));
    const a = $('renew-download');
    a.href = pemUrl;
    a.download = `${r.serial}.pem`;
    $('renew-result').hidden = false;
    $('renew-result').focus();
    status('holder.renewed', { serial: r.serial });
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401) $('renew-error').textContent = e.message;
    else showApiError(e);
  } finally {
    $('renew-submit').disabled = false;
  }
}

/* ------------------------------------------------------------ start */

async function main() {
  await i18n.init();
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('revoke-reason').addEventListener('change', syncReason);
  $('revoke-form').addEventListener('submit', onRevoke);
  $('renew-file').addEventListener('change', onRenewFile);
  $('renew-form').addEventListener('submit', onRenew);
  window.addEventListener('hashchange', () => route());
  try {
    const me = await request('GET', '/api/holder/me');
    csrf = me.csrf_token;
    app.holder = me.holder;
  } catch { /* not logged in */ }
  await route();
}

main().catch((e) => console.error(e));
