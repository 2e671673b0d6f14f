// officer.js — the RA officer's console: login, cases, a video session with
// the signatory, the validation checklist, stills, and closing with an outcome
// that seals the evidence bundle.

import * as i18n from './i18n.js';
import { t, setText } from './i18n.js';
import * as api from './api.js';
import { ApiError } from './api.js';
import { Signaling, Call, backoffDelay, SignalingError } from './signaling.js';
import { openCameraAndMicrophone, attach, stopStream, MediaAccessError } from './media.js';
import {
  COMPARE_FIELDS, FEATURE_CATALOGUE, MIN_FEATURES, MIN_OPTICALLY_VARIABLE, buildClose, dataMatchesCase,
  featureCounts, randomFeatures,
} from './checklist.js';
import { RECONNECT, DISCONNECTED_GRACE_MS } from './config.js';
import * as ca from './officer-ca.js';
import { stillImage } from './stills.js';

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

const app = { officer: null, cases: [], currentCase: null };
let sess = null; // the open session view
window.testigo = { get session() { return sess; }, app };

/* ------------------------------------------------------------ messages */

function status(key, params) { setText($('status'), key || '', params); }

function alertBox(key, params) {
  if (!key) { $('alert').hidden = true; return; }
  setText($('alert-text'), key, params);
  $('alert').hidden = false;
}

/** Shows an API error: the field's own message slot when it names a field, else the alert. */
function showApiError(e, slots = {}) {
  if (e instanceof ApiError) {
    if (e.status === 401) { app.officer = null; route(); alertBox('login.expired'); return; }
    const slot = e.field && slots[e.field];
    if (slot) {
      $(slot).textContent = e.message;
      const input = $(slot.replace(/-error$/, ''));
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
      return;
    }
    alertBox('error.server', { status: e.status, message: e.message });
    return;
  }
  alertBox('error.network', { message: e.message });
}

function clearErrors(root) {
  for (const e of root.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of root.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}

function fieldError(id, key, params) {
  const slot = $(`${id}-error`);
  if (slot) setText(slot, key, params);
  const input = $(id);
  if (input) input.setAttribute('aria-invalid', 'true');
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(i18n.lang() === 'es' ? 'es-VE' : 'en-GB') : '—');

/* ------------------------------------------------------------ views */

function showView(id) {
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== id;
  const h = document.querySelector(`#${id} h1`);
  if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
}

async function route() {
  alertBox(null);
  if (!app.officer) {
    leaveSession();
    $('who').hidden = true;
    $('logout').hidden = true;
    showView('view-login');
    return;
  }
  $('who').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = app.officer.name || app.officer.id;
  const hash = location.hash || '#/cases';
  let m;
  if ((m = hash.match(/^#\/session\/([A-Za-z0-9_-]{1,64})$/))) {
    await openSession(m[1]);
  } else {
    leaveSession();
    if ((m = hash.match(/^#\/case\/([A-Za-z0-9_.-]{1,64})$/))) await openCase(m[1]);
    else await openCases();
  }
}

/* ------------------------------------------------------------ login */

async function onLogin(ev) {
  ev.preventDefault();
  const form = $('login-form');
  clearErrors(form);
  const user = $('login-user').value.trim();
  const password = $('login-password').value;
  if (!user || !password) { setText($('login-error'), 'login.missing'); return; }
  $('login-submit').disabled = true;
  try {
    const r = await api.login(user, password);
    ca.forgetToken();
    app.officer = r.officer || { id: user };
    $('login-password').value = '';
    await route();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) setText($('login-error'), 'login.failed');
    else if (e instanceof ApiError && e.status === 429) setText($('login-error'), 'login.limited');
    else showApiError(e);
  } finally {
    $('login-submit').disabled = false;
  }
}

async function onLogout() {
  try { await api.logout(); } catch { /* the cookie expires anyway */ }
  ca.forgetToken();
  app.officer = null;
  location.hash = '#/cases';
  await route();
}

/* ------------------------------------------------------------ cases */

const CASE_SLOTS = {
  holder_name: 'case-holder-error', national_id: 'case-nid-error', email: 'case-email-error',
  serial: 'case-serial-error', action: 'case-action-error', reason: 'case-reason-error',
  suspension_days: 'case-days-error',
};

function syncSuspension() {
  const isSuspension = $('case-action').value === 'suspension';
  $('case-days-field').hidden = !isSuspension;
  $('case-days').required = isSuspension;
  if (!isSuspension) $('case-days').value = '';
}

/** The case form's fields, or null after marking the problems. */
function caseFields() {
  const form = $('case-form');
  clearErrors(form);
  const f = {
    holder_name: $('case-holder').value.trim(),
    national_id: $('case-nid').value.trim(),
    email: $('case-email').value.trim(),
    serial: $('case-serial').value.trim().replace(/[\s:]/g, ''),
    action: $('case-action').value,
    reason: $('case-reason').value.trim(),
  };
  const bad = [];
  if (!f.holder_name || f.holder_name.length > 256 || /[\n\t]/.test(f.holder_name)) bad.push(['case-holder', 'case.err.holder_name']);
  if (!/^[A-Za-z0-9./-]{1,64}$/.test(f.national_id)) bad.push(['case-nid', 'case.err.national_id']);
  if (!/^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$/.test(f.email) || f.email.length > 254) bad.push(['case-email', 'case.err.email']);
  if (!/^[0-9A-Fa-f]{1,40}$/.test(f.serial)) bad.push(['case-serial', 'case.err.serial']);
  if (!['renewal', 'suspension', 'reactivation', 'revocation'].includes(f.action)) bad.push(['case-action', 'case.err.action']);
  if (!f.reason || f.reason.length > 4000) bad.push(['case-reason', 'case.err.reason']);
  if (f.action === 'suspension') {
    const raw = $('case-days').value.trim();
    const days = Number(raw);
    if (!/^[0-9]{1,2}$/.test(raw) || days < 1 || days > 15) bad.push(['case-days', 'case.err.suspension_days']);
    else f.suspension_days = days;
  }
  for (const [id, key] of bad) fieldError(id, key);
  if (bad.length) { $(bad[0][0]).focus(); return null; }
  return f;
}

async function onCreateCase(ev) {
  ev.preventDefault();
  const f = caseFields();
  if (!f) return;
  $('case-submit').disabled = true;
  try {
    const c = await api.createCase(f);
    $('case-form').reset();
    syncSuspension();
    status('case.created', { id: c.id });
    location.hash = `#/case/${c.id}`;
  } catch (e) {
    showApiError(e, CASE_SLOTS);
  } finally {
    $('case-submit').disabled = false;
  }
}

async function openCases() {
  showView('view-cases');
  try {
    app.cases = await api.listCases();
  } catch (e) { showApiError(e); return; }
  const body = $('case-table').tBodies[0];
  body.replaceChildren(...app.cases.map((c) => el('tr', {},
    el('td', {}, c.id),
    el('td', {}, c.holder_name),
    el('td', {}, c.national_id),
    el('td', { i18n: [`action.${c.action}`] }),
    el('td', { i18n: [`state.${c.state}`] }),
    el('td', {}, el('a', { href: `#/case/${encodeURIComponent(c.id)}`, i18n: ['cases.open'] })))));
  $('cases-empty').hidden = app.cases.length > 0;
  try {
    const open = await api.unfinishedSessions();
    $('unfinished').replaceChildren(...open.map((x) => el('li', {},
      el('a', { href: `#/session/${encodeURIComponent(x.id)}` }, x.id), ` — ${x.case_id} — `,
      el('span', { i18n: [`state.${x.state}`] }))));
    $('unfinished-card').hidden = open.length === 0;
  } catch { $('unfinished-card').hidden = true; }
}

async function openCase(id) {
  showView('view-case');
  let c;
  try { c = await api.getCase(id); } catch (e) { showApiError(e); return; }
  app.currentCase = c;
  setText($('case-title'), 'case.heading', { id: c.id });
  const facts = [
    ['case.holder_name', c.holder_name], ['case.national_id', c.national_id], ['case.email', c.email],
    ['case.serial', c.serial], ['case.action', t(`action.${c.action}`)], ['case.reason', c.reason],
  ];
  if (c.suspension_days) facts.push(['case.suspension_days', String(c.suspension_days)]);
  facts.push(['case.state', t(`state.${c.state}`)], ['case.created_at', fmtTime(c.created_at)]);
  $('case-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { i18n: [k] }), el('dd', {}, v)]));
  const sessions = c.sessions || [];
  $('case-sessions').replaceChildren(...(sessions.length ? sessions.map((s) => el('li', {},
    el('a', { href: `#/session/${encodeURIComponent(s.id)}` }, s.id), ' — ',
    el('span', { i18n: [`state.${s.state}`] }),
    s.bundle ? el('span', {}, ' — ', el('a', { href: api.bundleUrl(s.id), download: '', i18n: ['result.download'] })) : null))
    : [el('li', { i18n: ['case.no-sessions'] })]));
  $('session-start').hidden = c.state !== 'open';
  await ca.showCase(c, app.officer);
}

async function onStartSession() {
  const c = app.currentCase;
  if (!c) return;
  $('session-start').disabled = true;
  try {
    const s = await api.createSession(c.id);
    const url = s.join_url || new URL(s.join_path, location.origin).href;
    try { sessionStorage.setItem(`testigo.join.${s.id}`, JSON.stringify({ url, expires: s.link_expires_at })); } catch { /* */ }
    location.hash = `#/session/${s.id}`;
  } catch (e) {
    showApiError(e);
  } finally {
    $('session-start').disabled = false;
  }
}

/* ------------------------------------------------------------ session */

function timeline(key, params) {
  const li = el('li', {}, el('time', {}, new Date().toLocaleTimeString(i18n.lang() === 'es' ? 'es-VE' : 'en-GB')), ' ');
  const span = el('span');
  setText(span, key, params);
  li.append(span);
  $('timeline').prepend(li);
}

function leaveSession() {
  if (!sess) return;
  sess.closed = true;
  clearTimeout(sess.reconnectTimer);
  clearTimeout(sess.disconnectTimer);
  if (sess.call) sess.call.close();
  // navigating away on purpose is a leave, not a lost connection
  if (sess.sig) sess.sig.leave();
  stopStream(sess.stream);
  for (const s of sess.stills) if (s.thumb) URL.revokeObjectURL(s.thumb);
  sess = null;
}

/** Stills need the signatory's video being recorded; instructions need a recording part. */
function setRecording(on) {
  sess.recording = on;
  if (!on) sess.signatoryVideo = false;
  const canStill = on && sess.signatoryPresent && sess.signatoryVideo;
  for (const b of document.querySelectorAll('button.still')) b.disabled = !canStill;
  $('instr-give').disabled = !on;
}

function signatoryVideoSeen() {
  if (!sess || sess.signatoryVideo) return;
  sess.signatoryVideo = true;
  setRecording(sess.recording);
}

async function openSession(id) {
  if (sess && sess.id === id && !sess.closed) return;
  leaveSession();
  showView('view-session');
  resetSessionView();
  let info;
  try { info = await api.getSession(id); } catch (e) { showApiError(e); return; }
  sess = {
    id, caseId: info.case_id, info, sig: null, call: null, stream: null, stills: [], instructions: [],
    consent: null, recording: false, signatoryPresent: false, signatoryVideo: false, attempt: 0, closed: false, closing: false,
    reconnectTimer: null, disconnectTimer: null,
  };
  setText($('session-title'), 'session.heading', { id, case: info.case_id });
  api.getCase(info.case_id).then((c) => {
    // the data the officer compares the document with
    const facts = [['case.holder_name', c.holder_name], ['case.national_id', c.national_id],
      ['case.action', t(`action.${c.action}`)], ['case.serial', c.serial]];
    if (c.suspension_days) facts.push(['case.suspension_days', String(c.suspension_days)]);
    $('session-case').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { i18n: [k] }), el('dd', {}, v)]));
  }).catch(() => $('session-case').replaceChildren());
  $('session-back').href = `#/case/${encodeURIComponent(info.case_id)}`;
  let link = null;
  try { link = JSON.parse(sessionStorage.getItem(`testigo.join.${id}`) || 'null'); } catch { /* */ }
  $('join-card').hidden = !link;
  if (link) {
    $('join-url').value = link.url;
    setText($('join-expiry'), 'join.expires', { time: fmtTime(link.expires || info.link_expires_at) });
  }
  if (!['created', 'active', 'interrupted', 'stopped'].includes(info.state)) {
    setText($('remote-state'), 'session.not-open', { state: t(`state.${info.state}`) });
    $('checklist').hidden = true;
    if (info.bundle) showResult({ sealed: true, download: api.bundleUrl(id), outcome: info.outcome }, false);
    return;
  }
  $('checklist').hidden = false;
  if (info.state === 'interrupted' || info.state === 'stopped') {
    // nobody can join any more: what was recorded is sealed by closing
    setText($('remote-state'), 'session.recover', { state: t(`state.${info.state}`) });
    alertBox('session.recover', { state: t(`state.${info.state}`) });
    sess.closedForJoin = true;
    return;
  }
  try {
    sess.stream = await openCameraAndMicrophone();
    attach($('self'), sess.stream);
  } catch (e) {
    alertBox(e instanceof MediaAccessError ? e.key : 'media.error.other');
  }
  if (!sess || sess.id !== id) return;
  await connectSession();
}

function resetSessionView() {
  for (const idn of ['timeline', 'tracks', 'gallery', 'instr-list', 'close-errors', 'session-case']) $(idn).replaceChildren();
  $('result').hidden = true;
  $('checklist').reset();
  clearErrors($('checklist'));
  $('close-submit').disabled = false;
  setText($('sg-connection'), 'signatory.absent');
  setText($('sg-consent'), 'signatory.pending');
  setText($('sg-devices'), 'signatory.pending');
  setText($('sg-recording'), 'signatory.pending');
  setText($('remote-state'), 'session.signatory.waiting');
  $('remote').srcObject = null;
  for (const b of document.querySelectorAll('button.still')) b.disabled = true;
  $('instr-give').disabled = true;
  renderCompareRows();
  $('feature-rows').replaceChildren();
  for (let i = 0; i < MIN_FEATURES; i++) addFeatureRow();
  updateCounters();
}

async function connectSession() {
  if (!sess || sess.closed) return;
  const mine = sess;
  const sig = new Signaling({ role: 'officer', session: mine.id });
  let hello;
  try {
    hello = await sig.connect();
  } catch (e) {
    if (mine !== sess) return;
    if (e instanceof SignalingError && e.fatal) { alertBox('session.error', { message: e.message }); return; }
    scheduleReconnect();
    return;
  }
  if (mine !== sess || sess.closed) { sig.close(); return; }
  sess.sig = sig;
  sig.addEventListener('message', (ev) => onSessionMessage(ev.detail));
  sig.addEventListener('close', (ev) => {
    if (sig !== sess?.sig || sess.closed || sess.closing) return;
    if (ev.detail.error?.fatal) { alertBox('session.error', { message: ev.detail.error.message }); return; }
    lost();
  });
  timeline(mine.attempt ? 'tl.officer-rejoined' : 'tl.officer-joined');
  if (hello.peer_present) signatoryJoined(false);
  if (hello.consent_given) setText($('sg-consent'), 'signatory.consent.given-before');
  const call = new Call(sig, sess.stream, hello.ice_servers || []);
  sess.call = call;
  call.addEventListener('remote', (ev) => {
    attach($('remote'), ev.detail).then((ok) => { $('sound-on').hidden = ok; });
  });
  $('remote').onresize = () => { if (sess?.signatoryPresent && $('remote').videoWidth > 0) signatoryVideoSeen(); };
  call.addEventListener('state', (ev) => {
    if (call !== sess?.call) return;
    clearTimeout(sess.disconnectTimer);
    if (ev.detail === 'connected') { sess.attempt = 0; alertBox(null); status('session.connected'); }
    else if (ev.detail === 'failed') lost();
    else if (ev.detail === 'disconnected') sess.disconnectTimer = setTimeout(() => { if (call === sess?.call) lost(); }, DISCONNECTED_GRACE_MS);
  });
  try { await call.start(); } catch (e) { console.warn(e); lost(); }
}

function lost() {
  if (!sess || sess.closed || sess.closing || sess.reconnectTimer) return;
  if (sess.call) { sess.call.close(); sess.call = null; }
  if (sess.sig) { const s = sess.sig; sess.sig = null; s.close(); }
  setRecording(false);
  scheduleReconnect();
}

function scheduleReconnect() {
  if (!sess || sess.closed) return;
  if (sess.attempt >= RECONNECT.attempts) { alertBox('call.gave-up'); return; }
  const delay = backoffDelay(sess.attempt, RECONNECT);
  sess.attempt += 1;
  alertBox('session.lost', { seconds: Math.ceil(delay / 1000), attempt: sess.attempt });
  sess.reconnectTimer = setTimeout(() => { if (sess) { sess.reconnectTimer = null; connectSession(); } }, delay);
}

function signatoryJoined(rejoin) {
  sess.signatoryPresent = true;
  setText($('sg-connection'), rejoin ? 'signatory.rejoined' : 'signatory.connected');
  setText($('remote-state'), 'session.signatory.present');
  setRecording(sess.recording);
}

function yesNo(v) { return t(v ? 'word.yes' : 'word.no'); }

function onSessionMessage(m) {
  switch (m.type) {
    case 'peer-joined':
      if (m.peer === 'signatory') {
        signatoryJoined(!!m.rejoin);
        timeline(m.rejoin ? 'tl.signatory-rejoined' : 'tl.signatory-joined');
      }
      break;
    case 'peer-left':
      if (m.peer === 'signatory') {
        sess.signatoryPresent = false;
        sess.signatoryVideo = false;
        setText($('sg-connection'), 'signatory.left', { reason: m.reason || '' });
        setText($('remote-state'), 'session.signatory.left');
        setRecording(false);
        timeline('tl.signatory-left', { reason: m.reason || '' });
      }
      break;
    case 'consent':
      sess.consent = m;
      setText($('sg-consent'), 'signatory.consent.given', { time: fmtTime(m.accepted_at), version: m.text_version });
      timeline('tl.consent', { version: m.text_version });
      break;
    case 'device-check':
      setText($('sg-devices'), 'signatory.devices.result',
        { camera: yesNo(m.camera), microphone: yesNo(m.microphone), speaker: yesNo(m.speaker) });
      timeline('tl.devices');
      break;
    case 'part-started':
      setText($('sg-recording'), 'signatory.recording.part', { part: m.part ?? '?' });
      timeline('tl.part', { part: m.part ?? '?' });
      setRecording(true);
      break;
    case 'first-keyframe':
      if (m.peer === 'signatory') signatoryVideoSeen();
      timeline('tl.keyframe', { party: t(`party.${m.peer}`), ms: m.delay_ms ?? '?' });
      break;
    case 'track': {
      if (m.party === 'signatory' && m.kind === 'video') signatoryVideoSeen();
      const dims = m.width ? ` ${m.width}×${m.height}` : '';
      $('tracks').append(el('li', {}, `${t(`party.${m.party}`)} · ${t(`kind.${m.kind}`)} · ${m.codec || '?'}${dims} (${t('tl.part', { part: m.part ?? '?' })})`));
      break;
    }
    case 'still-saved': stillSaved(m); break;
    case 'instruction-recorded': instructionRecorded(m); break;
    case 'session-interrupted':
      alertBox('session.interrupted', { reason: m.reason || '' });
      timeline('tl.interrupted');
      setRecording(false);
      break;
    case 'error':
      if (m.code === 'disk-full') alertBox('session.disk-full');
      else alertBox('session.error', { message: m.message || m.code });
      timeline('tl.error', { message: m.message || m.code });
      break;
    case 'closed':
      timeline('tl.closed', { outcome: t(`outcome.${m.outcome}`) });
      break;
    default:
      break;
  }
}

/* ------------------------------------------------------------ stills */

function localThumbnail() {
  const v = $('remote');
  if (!v.videoWidth) return Promise.resolve(null);
  const c = document.createElement('canvas');
  const scale = Math.min(1, 320 / v.videoWidth);
  c.width = Math.round(v.videoWidth * scale);
  c.height = Math.round(v.videoHeight * scale);
  c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
  return new Promise((resolve) => c.toBlob((b) => resolve(b ? URL.createObjectURL(b) : null), 'image/png'));
}

async function onStill(ev) {
  const kind = ev.currentTarget.dataset.kind;
  if (!sess?.sig) return;
  if (!sess.sig.send({ type: 'still', kind })) { alertBox('session.not-connected'); return; }
  const entry = { kind, saved: false, thumb: await localThumbnail(), li: el('li') };
  sess.stills.push(entry);
  renderStill(entry);
  $('gallery').append(entry.li);
  status('stills.requested', { kind: t(`stills.kind.${kind}`) });
}

function renderStill(s) {
  const caption = el('p', {});
  if (s.saved) setText(caption, 'stills.saved', { kind: t(`stills.kind.${s.kind}`), name: s.name, seconds: (s.offset_ms / 1000).toFixed(1), part: s.part });
  else setText(caption, 'stills.pending', { kind: t(`stills.kind.${s.kind}`) });
  const img = stillImage(sess.id, s); // the recorder's PNG once saved (stills.js)
  s.li.replaceChildren(...[img, caption].filter(Boolean));
  s.li.dataset.kind = s.kind;
  s.li.dataset.saved = String(s.saved);
}

function stillSaved(m) {
  let s = sess.stills.find((x) => !x.saved && x.kind === m.kind);
  if (!s) { s = { kind: m.kind, li: el('li'), thumb: null }; sess.stills.push(s); $('gallery').append(s.li); }
  Object.assign(s, { saved: true, name: m.name, part: m.part, offset_ms: m.offset_ms });
  renderStill(s);
  status('stills.saved', { kind: t(`stills.kind.${m.kind}`), name: m.name, seconds: (m.offset_ms / 1000).toFixed(1), part: m.part });
  timeline('tl.still', { name: m.name });
}

/* ------------------------------------------------------------ instructions */

function onInstruction() {
  if (!sess?.sig) return;
  const msg = { type: 'instruction', kind: $('instr-kind').value, target: $('instr-target').value };
  const text = $('instr-text').value.trim();
  if (text) msg.text = text;
  if (!sess.sig.send(msg)) { alertBox('session.not-connected'); return; }
  $('instr-text').value = '';
}

function instructionRecorded(m) {
  sess.instructions.push(m);
  const li = el('li');
  setText(li, 'instr.recorded', {
    kind: t(`instr.kind.${m.kind}`), target: t(`target.${m.target}`), time: fmtTime(m.time),
    seconds: (m.offset_ms / 1000).toFixed(1), part: m.part,
  });
  $('instr-list').append(li);
  status('instr.recorded.short', { kind: t(`instr.kind.${m.kind}`) });
}

/* ------------------------------------------------------------ checklist */

function renderCompareRows() {
  $('compare-rows').replaceChildren(...COMPARE_FIELDS.map((f) => {
    const id = `cmp-${f}`;
    const sel = el('select', { id, 'data-field': f, class: 'compare' },
      el('option', { value: '', i18n: ['compare.skip'] }),
      el('option', { value: 'match', i18n: ['compare.match'] }),
      el('option', { value: 'mismatch', i18n: ['compare.mismatch'] }));
    sel.addEventListener('change', updateCounters);
    return el('tr', {}, el('th', { scope: 'row' }, el('label', { for: id, i18n: [`compare.${f}`] })), el('td', {}, sel));
  }));
}

function addFeatureRow(name = '', ov = false) {
  const row = $('tpl-feature').content.firstElementChild.cloneNode(true);
  i18n.apply(row);
  row.querySelector('.feature-name').value = name;
  row.querySelector('.feature-ov').checked = ov;
  row.querySelector('.feature-remove').addEventListener('click', () => { row.remove(); updateCounters(); });
  for (const input of row.querySelectorAll('input, select')) input.addEventListener('input', updateCounters);
  $('feature-rows').append(row);
  updateCounters();
  return row;
}

function onRandomFeatures() {
  const picks = randomFeatures();
  const rows = [...$('feature-rows').querySelectorAll('tr.feature')];
  const empty = rows.filter((r) => !r.querySelector('.feature-name').value.trim());
  for (const p of picks) {
    const row = empty.shift() || addFeatureRow();
    row.querySelector('.feature-name').value = t(`featname.${p.key}`);
    row.querySelector('.feature-ov').checked = p.ov;
  }
  updateCounters();
  status('ck.features.picked');
}

function readForm() {
  const comparison = [...document.querySelectorAll('select.compare')]
    .filter((s) => s.value)
    .map((s) => ({ field: s.dataset.field, match: s.value === 'match' }));
  const features = [...$('feature-rows').querySelectorAll('tr.feature')].map((r) => ({
    name: r.querySelector('.feature-name').value,
    optically_variable: r.querySelector('.feature-ov').checked,
    result: r.querySelector('.feature-result').value,
  }));
  return {
    document: {
      type: $('doc-type').value, issuer: $('doc-issuer').value, number: $('doc-number').value,
      expiry: $('doc-expiry').value, comparison,
    },
    features,
    face: document.querySelector('input[name="face"]:checked')?.value || '',
    outcome: document.querySelector('input[name="outcome"]:checked')?.value || '',
    notes: $('notes').value,
  };
}

function updateCounters() {
  const f = readForm();
  const { total, ov } = featureCounts(f.features);
  const ok = total >= MIN_FEATURES && ov >= MIN_OPTICALLY_VARIABLE;
  const counter = $('feature-count');
  setText(counter, 'ck.features.count', { total, ov, min: MIN_FEATURES, minov: MIN_OPTICALLY_VARIABLE });
  counter.classList.toggle('ok', ok);
  counter.classList.toggle('bad', !ok);
  const cmp = f.document.comparison;
  const m = $('doc-matches');
  if (!cmp.length) { setText(m, 'ck.compare.none'); m.classList.remove('ok', 'bad'); }
  else {
    const match = dataMatchesCase(cmp);
    setText(m, match ? 'ck.compare.all' : 'ck.compare.differs');
    m.classList.toggle('ok', match);
    m.classList.toggle('bad', !match);
  }
}

/** The label shown before a problem in the list at the close button. */
const PROBLEM_LABELS = {
  'doc-type': 'ck.doc.type', 'doc-issuer': 'ck.doc.issuer', 'doc-number': 'ck.doc.number', 'doc-expiry': 'ck.doc.expiry',
  'doc-compare': 'ck.compare', features: 'ck.features', face: 'ck.face', outcome: 'close.title', notes: 'close.notes',
  stills: 'stills.title', instructions: 'instr.title', consent: 'signatory.consent',
};

const PROBLEM_SLOTS = {
  'doc-type': 'doc-type', 'doc-issuer': 'doc-issuer', 'doc-number': 'doc-number', 'doc-expiry': 'doc-expiry',
  'doc-compare': 'doc-compare', features: 'features', face: 'face', outcome: 'outcome', notes: 'notes',
};

async function onClose(ev) {
  ev.preventDefault();
  if (!sess) return;
  const form = $('checklist');
  clearErrors(form);
  $('close-errors').replaceChildren();
  const { problems, body } = buildClose(readForm(), {
    stills: sess.stills.filter((s) => s.saved), instructions: sess.instructions, consent: !!sess.consent || undefined,
  });
  // consent given in an earlier connection of this console counts too
  const real = problems.filter((p) => !(p.field === 'consent' && $('sg-consent').dataset.i18n !== 'signatory.pending'));
  if (real.length) {
    const seen = new Set();
    for (const p of real) {
      const li = el('li');
      const label = PROBLEM_LABELS[p.field];
      li.append(...(label ? [el('span', { i18n: [label] }), ': '] : []), el('span', { i18n: [p.key] }));
      $('close-errors').append(li);
      const slot = PROBLEM_SLOTS[p.field];
      if (slot && !seen.has(slot)) { seen.add(slot); fieldError(slot, p.key); }
    }
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
    status('close.problems', { n: real.length });
    return;
  }
  $('close-submit').disabled = true;
  sess.closing = true;
  status('close.sealing');
  try {
    const r = await api.closeSession(sess.id, body);
    sess.closed = true;
    if (sess.call) sess.call.close();
    if (sess.sig) sess.sig.close();
    stopStream(sess.stream);
    setRecording(false);
    showResult(r, true);
  } catch (e) {
    sess.closing = false;
    $('close-submit').disabled = false;
    status('');
    if (e instanceof ApiError && e.status === 422) {
      $('close-errors').append(el('li', {}, e.message));
      alertBox('close.refused', { message: e.message });
    } else showApiError(e, { notes: 'notes-error', outcome: 'outcome-error' });
  }
}

function showResult(r, focus) {
  const box = $('result');
  box.hidden = false;
  const v = $('result-verdict');
  const ind = r.indication || r.verdict?.indication;
  if (r.sealed && ind) {
    setText(v, `verdict.${ind}`);
    v.classList.toggle('ok', ind === 'TOTAL-PASSED');
    v.classList.toggle('bad', ind !== 'TOTAL-PASSED');
  } else if (r.sealed) {
    setText(v, 'result.sealed');
  } else {
    setText(v, 'result.not-sealed');
    v.classList.add('bad');
  }
  const facts = [];
  if (r.outcome) facts.push(['result.outcome', t(`outcome.${r.outcome}`)]);
  if (r.verdict?.subIndication) facts.push(['result.sub', r.verdict.subIndication]);
  if (r.verdict?.message) facts.push(['result.message', r.verdict.message]);
  if (r.verdict?.genTime) facts.push(['result.time', fmtTime(r.verdict.genTime)]);
  if (r.bundle) facts.push(['result.file', r.bundle]);
  if (r.reason) facts.push(['result.message', r.reason]);
  $('result-facts').replaceChildren(...facts.flatMap(([k, val]) => [el('dt', { i18n: [k] }), el('dd', {}, val)]));
  const a = $('result-download');
  a.hidden = !r.download;
  if (r.download) a.href = r.download;
  box.dataset.indication = ind || '';
  status(r.sealed ? 'result.done' : 'result.not-sealed');
  if (focus) box.focus();
}

/* ------------------------------------------------------------ start */

async function main() {
  await i18n.init();
  $('feature-names').replaceChildren(...FEATURE_CATALOGUE.map((f) => el('option', { 'data-i18n-attr': `value:featname.${f.key}` })));
  i18n.apply($('feature-names'));
  i18n.onChange(() => updateCounters());
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('case-action').addEventListener('change', syncSuspension);
  $('case-form').addEventListener('submit', onCreateCase);
  $('session-start').addEventListener('click', onStartSession);
  for (const b of document.querySelectorAll('button.still')) b.addEventListener('click', onStill);
  $('instr-give').addEventListener('click', onInstruction);
  $('feature-add').addEventListener('click', () => { addFeatureRow().querySelector('.feature-name').focus(); });
  $('feature-random').addEventListener('click', onRandomFeatures);
  $('checklist').addEventListener('submit', onClose);
  $('join-copy').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText($('join-url').value); setText($('join-copied'), 'join.copied'); }
    catch { $('join-url').select(); setText($('join-copied'), 'join.copy-manual'); }
  });
  $('sound-on').addEventListener('click', async () => { $('sound-on').hidden = await attach($('remote'), $('remote').srcObject); });
  window.addEventListener('hashchange', () => route());
  ca.init({ officer: null, el, showApiError, fmtTime, reload: (id) => openCase(id) });
  syncSuspension();
  renderCompareRows();
  try {
    const me = await api.me();
    if (me) app.officer = typeof me.officer === 'string' ? { id: me.officer, admin: !!me.admin } : me.officer;
  } catch { /* server unreachable: show the login form */ }
  await route();
}

main().catch((e) => console.error(e));
