// officer-ca.js — the CA part of the officer console's case view: the
// record of an in-person visit (attestation, checklist, scanned documents,
// sealed like a teleconference bundle) and, for the CA administrator,
// applying the case's action through the evidence gate with its verdict
// shown exactly as the server gives it (docs/protocol.md, "CA").

import { t, setText } from './i18n.js';
import * as i18n from './i18n.js';
import * as api from './api.js';
import { ApiError } from './api.js';

const $ = (id) => document.getElementById(id);
/** At most this many scans, each at most this many bytes (the server's caps). */
export const MAX_FILES = 8;
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
export const FILE_TYPES = ['image/jpeg', 'image/png', 'application/pdf'];

let csrf = null;
let ctx = null; // {officer, el, showApiError, fmtTime, reload}
let current = null; // the case shown

async function token() {
  if (!csrf) {
    const me = await api.me();
    csrf = me && me.csrf_token;
  }
  return csrf;
}

/** Forgets the CSRF token (after a logout or a new login). */
export function forgetToken() { csrf = null; }

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRF-Token'] = await token();
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

const enc = encodeURIComponent;

/* ------------------------------------------------------------ apply */

function verdictText(el, allowed, reason) {
  setText($('apply-verdict'), allowed ? 'apply.allowed' : 'apply.refused');
  $('apply-verdict').classList.toggle('ok', !!allowed);
  $('apply-verdict').classList.toggle('bad', !allowed);
  $('apply-reason').textContent = reason || '';
}

async function showApply(c) {
  const card = $('apply-card');
  const { el, fmtTime } = ctx;
  card.hidden = !(c.state === 'approved');
  $('apply-error').textContent = '';
  if (card.hidden) return;
  $('apply-reason-field').hidden = c.action !== 'revocation' || c.applied;
  const facts = [];
  if (c.applied) {
    setText($('apply-verdict'), 'apply.done');
    $('apply-verdict').classList.add('ok');
    $('apply-verdict').classList.remove('bad');
    $('apply-reason').textContent = '';
    facts.push(['apply.applied_at', fmtTime(c.applied_at)], ['apply.applied_by', c.applied_by || '—']);
    const r = c.apply_result || {};
    if (r.action) facts.push(['apply.action', r.action]);
    if (r.reason && r.reason !== 'none') facts.push(['apply.crl-reason', r.reason]);
    if (r.deadline) facts.push(['apply.deadline', fmtTime(typeof r.deadline === 'number' ? r.deadline * 1000 : r.deadline)]);
    if (c.new_serial) facts.push(['apply.new_serial', c.new_serial]);
    $('apply-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { i18n: [k] }), el('dd', {}, String(v))]));
    $('apply-submit').hidden = true;
    return;
  }
  $('apply-facts').replaceChildren();
  $('apply-submit').hidden = !ctx.officer.admin;
  if (!ctx.officer.admin) {
    $('apply-facts').replaceChildren(el('dt', { i18n: ['apply.who'] }), el('dd', { i18n: ['apply.admin-only'] }));
  }
  setText($('apply-verdict'), 'apply.checking');
  try {
    const v = await call('GET', `/api/cases/${enc(c.id)}/gate`);
    if (current !== c) return;
    verdictText($('apply-verdict'), v.allowed, v.reason);
    card.dataset.allowed = String(!!v.allowed);
  } catch (e) {
    ctx.showApiError(e);
  }
}

async function onApply() {
  const c = current;
  if (!c) return;
  $('apply-submit').disabled = true;
  $('apply-error').textContent = '';
  const body = {};
  if (!$('apply-reason-field').hidden && $('apply-crl-reason').value) body.reason = $('apply-crl-reason').value;
  try {
    await call('POST', `/api/cases/${enc(c.id)}/apply`, body);
    setText($('status'), 'apply.applied', { id: c.id });
    await ctx.reload(c.id);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401) {
      verdictText($('apply-verdict'), false, e.message);
      $('apply-error').textContent = e.message;
      $('apply-card').dataset.allowed = 'false';
    } else ctx.showApiError(e);
  } finally {
    $('apply-submit').disabled = false;
  }
}

/* ------------------------------------------------------------ in-person visit */

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ''));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

function visitError(id, key, params) {
  const slot = $(`${id}-error`);
  if (slot) setText(slot, key, params);
  const input = $(id);
  if (input) input.setAttribute('aria-invalid', 'true');
}

/** The visit's body from the form, or null after marking the problems. */
export async function visitBody() {
  const form = $('visit-form');
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  const outcome = form.querySelector('input[name="visit-outcome"]:checked')?.value || '';
  const face = form.querySelector('input[name="visit-face"]:checked')?.value || '';
  const attestation = $('visit-attestation').value.trim();
  const notes = $('visit-notes').value.trim();
  const files = [...$('visit-files').files];
  const bad = [];
  if (!attestation) bad.push(['visit-attestation', 'visit.err.attestation']);
  if (!outcome) bad.push(['visit-outcome', 'visit.err.outcome']);
  if (outcome && outcome !== 'approved' && !notes) bad.push(['visit-notes', 'ck.err.notes']);
  if (files.length < 1 || files.length > MAX_FILES) bad.push(['visit-files', 'visit.err.files', { max: MAX_FILES }]);
  for (const f of files) {
    if (!FILE_TYPES.includes(f.type)) bad.push(['visit-files', 'visit.err.type', { name: f.name }]);
    else if (f.size > MAX_FILE_BYTES || f.size === 0) bad.push(['visit-files', 'visit.err.size', { name: f.name, mb: MAX_FILE_BYTES / 1048576 }]);
  }
  const doc = {
    type: $('visit-doc-type').value, issuer: $('visit-doc-issuer').value.trim(),
    number: $('visit-doc-number').value.trim(), expiry: $('visit-doc-expiry').value,
    comparison: [{ field: 'name', match: $('visit-match-name').checked }, { field: 'national_id', match: $('visit-match-nid').checked }],
  };
  const docComplete = doc.type && doc.issuer && /^[A-Za-z0-9<./-]{1,36}$/.test(doc.number) && /^\d{4}-\d{2}-\d{2}$/.test(doc.expiry);
  if (outcome === 'approved') {
    if (!$('visit-consent').checked) bad.push(['visit-consent', 'visit.err.consent']);
    if (!docComplete || !doc.comparison.every((x) => x.match)) bad.push(['visit-doc-type', 'visit.err.document']);
    if (face !== 'match') bad.push(['visit-doc-type', 'visit.err.face']);
  }
  for (const [id, key, params] of bad) visitError(id, key, params);
  if (bad.length) { $(bad[0][0])?.focus?.(); return null; }
  const body = { outcome, attestation, consent: $('visit-consent').checked, documents: [] };
  if (notes) body.notes = notes;
  if (docComplete) body.document = doc;
  if (face) body.face_comparison = face;
  if (ctx && ctx.startedAt) body.started_at = ctx.startedAt;
  for (const f of files) body.documents.push({ name: f.name, media_type: f.type, data: await readFile(f) });
  return body;
}

function showVisitResult(r) {
  const { el } = ctx;
  const box = $('visit-result');
  box.hidden = false;
  const ind = r.indication || r.verdict?.indication;
  setText($('visit-verdict'), ind ? `verdict.${ind}` : 'result.sealed');
  $('visit-verdict').classList.toggle('ok', ind === 'TOTAL-PASSED');
  $('visit-verdict').classList.toggle('bad', !!ind && ind !== 'TOTAL-PASSED');
  const facts = [['result.outcome', t(`outcome.${r.outcome}`)]];
  if (r.verdict?.message) facts.push(['result.message', r.verdict.message]);
  if (r.bundle) facts.push(['result.file', r.bundle]);
  $('visit-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { i18n: [k] }), el('dd', {}, v)]));
  $('visit-download').href = r.download;
  box.dataset.indication = ind || '';
  box.focus();
}

async function onVisit(ev) {
  ev.preventDefault();
  const c = current;
  if (!c) return;
  $('visit-submit').disabled = true;
  try {
    const body = await visitBody();
    if (!body) return;
    setText($('status'), 'visit.sealing');
    const r = await call('POST', `/api/cases/${enc(c.id)}/visit`, body);
    $('visit-form').reset();
    setText($('status'), 'visit.sealed', { id: c.id });
    await ctx.reload(c.id);
    showVisitResult(r);
  } catch (e) {
    if (e instanceof ApiError && e.status !== 401) $('visit-error').textContent = e.message;
    else ctx.showApiError(e);
  } finally {
    $('visit-submit').disabled = false;
  }
}

function showVisits(c) {
  const { el, fmtTime } = ctx;
  const visits = c.visits || []; // GET /api/cases/{id} lists them
  $('visits-card').hidden = visits.length === 0;
  $('case-visits').replaceChildren(...visits.map((v) => el('li', {},
    `${v.id} — ${fmtTime(v.created_at)} — `, el('span', { i18n: [`outcome.${v.outcome}`] }),
    v.verdict?.indication ? el('span', {}, ' — ', el('span', { i18n: [`verdict.${v.verdict.indication}`] })) : null,
    v.bundle ? el('span', {}, ' — ', el('a', { href: `/api/visits/${enc(v.id)}/bundle`, download: '', i18n: ['result.download'] })) : null)));
}

/* ------------------------------------------------------------ entry points */

/** Wires the forms once; @context: {officer, el, showApiError, fmtTime, reload(caseId)}. */
export function init(context) {
  ctx = context;
  $('visit-form').addEventListener('submit', onVisit);
  $('apply-submit').addEventListener('click', onApply);
  i18n.onChange(() => { if (current) showApply(current); });
}

/** Shows the CA part of case @c (called by officer.js after it rendered the case). */
export async function showCase(c, officer) {
  current = c;
  ctx.officer = officer || {};
  ctx.startedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  $('visit-result').hidden = true;
  $('visit-form').hidden = c.state !== 'open';
  $('visit-error').textContent = '';
  showVisits(c);
  await showApply(c);
}
