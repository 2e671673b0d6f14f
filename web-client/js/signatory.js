// signatory.js — the page behind the one-time join link: information and
// active consent, device check, then the recorded call with automatic rejoin.

import * as i18n from './i18n.js';
import { t, setText } from './i18n.js';
import { consentMessage, consentText, shownInformation, CONSENT_VERSION } from './consent.js';
import {
  openCameraAndMicrophone, startLevelMeter, playTestTone, waitForFrames, attach, stopStream, MediaAccessError,
  audioContext,
} from './media.js';
import { Signaling, Call, backoffDelay, SignalingError } from './signaling.js';
import { RETENTION_YEARS, RECONNECT, DISCONNECTED_GRACE_MS, MIC_OK_LEVEL, MIC_GRACE_MS } from './config.js';

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  retentionYears: RETENTION_YEARS,
  sig: null,
  call: null,
  hello: null,
  stream: null,
  stopMeter: null,
  checks: { camera: false, microphone: false, speaker: false },
  inCall: false,
  ended: false,
  attempt: 0,
  reconnectTimer: null,
  disconnectTimer: null,
  consentAt: null,
  deviceCheck: null,
  micTimer: null,
  micQuiet: false,
};
// For tests and support: read-only view of the live objects.
window.testigo = { get call() { return state.call; }, get stream() { return state.stream; }, state };

/* ------------------------------------------------------------ helpers */

function tokenFromLocation() {
  const m = location.pathname.match(/^\/join\/([A-Za-z0-9_-]{16,128})\/?$/);
  if (m) return m[1];
  const h = location.hash.replace(/^#/, '');
  if (/^[A-Za-z0-9_-]{16,128}$/.test(h)) return h;
  return null;
}

const storeKey = (k) => `testigo.${k}.${state.token}`;
function remember(k, v) { try { sessionStorage.setItem(storeKey(k), v); } catch { /* private mode */ } }
function recall(k) { try { return sessionStorage.getItem(storeKey(k)); } catch { return null; } }

function showStep(id, { focus = true } = {}) {
  for (const s of document.querySelectorAll('.step')) s.hidden = s.id !== id;
  const h = document.querySelector(`#${id} h1`);
  if (h && focus) { h.setAttribute('tabindex', '-1'); h.focus({ preventScroll: false }); }
}

function status(key, params) { setText($('status'), key, params); }

function alertBox(key, params, { retry = false } = {}) {
  const box = $('alert');
  if (!key) { box.hidden = true; return; }
  setText($('alert-text'), key, params);
  $('alert-retry').hidden = !retry;
  box.hidden = false;
}

function setResult(id, ok, key) {
  const el = $(id);
  setText(el, key);
  el.classList.toggle('ok', ok === true);
  el.classList.toggle('bad', ok === false);
}

/* ------------------------------------------------------------ consent */

function renderConsent() {
  const ul = $('consent-info');
  ul.replaceChildren(...shownInformation(state.retentionYears).map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }));
  $('consent-statement').textContent = t('consent.statement', { years: state.retentionYears });
  setText($('consent-version'), 'consent.version', { version: `${CONSENT_VERSION}.${i18n.lang()}` });
}

function endWith(key, params) {
  state.ended = true;
  clearTimeout(state.reconnectTimer);
  if (state.call) { state.call.close(); state.call = null; }
  if (state.sig) { state.sig.close(); state.sig = null; }
  if (state.stopMeter) { state.stopMeter(); state.stopMeter = null; }
  stopStream(state.stream);
  state.stream = null;
  setText($('end-text'), key, params);
  status('');
  alertBox(null);
  showStep('step-end');
}

function errorKey(err) {
  const code = err instanceof SignalingError ? err.code : 'connection-failed';
  const known = ['invalid-link', 'link-used', 'link-expired', 'session-closed', 'already-connected',
    'recording-unavailable'];
  return known.includes(code) ? `link.${code}` : 'link.connection-failed';
}

/** Opens the signaling connection (token the first time, rejoin secret after). */
async function connect() {
  const secret = recall('rejoin');
  const hello = secret ? { role: 'signatory', rejoin: secret } : { role: 'signatory', token: state.token };
  const sig = new Signaling(hello);
  const reply = await sig.connect();
  if (reply.rejoin) remember('rejoin', reply.rejoin);
  if (reply.retention_years > 0) state.retentionYears = reply.retention_years;
  state.sig = sig;
  state.hello = reply;
  sig.addEventListener('message', (ev) => onMessage(ev.detail));
  sig.addEventListener('close', (ev) => onSignalingClosed(sig, ev.detail));
  return reply;
}

function waitFor(sig, types, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { sig.removeEventListener('message', on); reject(new SignalingError('timeout')); }, timeoutMs);
    const on = (ev) => {
      if (types.includes(ev.detail.type)) {
        clearTimeout(timer);
        sig.removeEventListener('message', on);
        resolve(ev.detail);
      }
    };
    sig.addEventListener('message', on);
  });
}

async function onConsent(ev) {
  ev.preventDefault();
  if (!$('consent-check').checked) {
    alertBox('consent.required');
    $('consent-check').focus();
    return;
  }
  const button = $('consent-accept');
  button.disabled = true;
  alertBox(null);
  status('link.connecting');
  try {
    const reply = state.sig ? state.hello : await connect();
    if (!reply.consent_given) {
      const { message, acceptedAt } = await consentMessage(state.retentionYears);
      state.consentAt = acceptedAt;
      const answer = waitFor(state.sig, ['consent', 'error']);
      state.sig.send(message);
      const got = await answer;
      if (got.type === 'error' && !/already/.test(got.message || '')) throw new SignalingError(got.code, got.message);
      if (got.accepted_at) state.consentAt = got.accepted_at;
    }
    remember('consent', '1');
    status('consent.recorded');
    showStep('step-devices');
  } catch (e) {
    button.disabled = !$('consent-check').checked;
    status('');
    if (e instanceof SignalingError && e.fatal) endWith(errorKey(e));
    else alertBox(errorKey(e));
  }
}

/* ------------------------------------------------------------ device check */

function updateJoin() {
  const { camera, microphone, speaker } = state.checks;
  $('join').disabled = !(camera && (microphone || state.micQuiet) && speaker);
}

async function startDevices() {
  // create and resume the AudioContext inside the tap: phones refuse it later
  audioContext().catch(() => {});
  alertBox(null);
  $('devices-start').disabled = true;
  status('devices.asking');
  try {
    stopStream(state.stream);
    state.stream = await openCameraAndMicrophone();
  } catch (e) {
    $('devices-start').disabled = false;
    status('');
    const key = e instanceof MediaAccessError ? e.key : 'media.error.other';
    document.body.dataset.mediaError = e.errorName || e.name;
    alertBox(key, null, { retry: true });
    return false;
  }
  status('');
  $('devices-start').hidden = true;
  $('devices-panel').hidden = false;
  const video = $('preview');
  attach(video, state.stream);
  setResult('camera-result', null, 'devices.waiting');
  waitForFrames(video, 15000)
    .then(() => { state.checks.camera = true; setResult('camera-result', true, 'devices.camera.ok'); updateJoin(); })
    .catch(() => setResult('camera-result', false, 'devices.camera.none'));
  if (state.stopMeter) state.stopMeter();
  // A very quiet microphone must not lock the signatory out: after a while the
  // call can start anyway, and the officer sees "microphone: no".
  clearTimeout(state.micTimer);
  state.micTimer = setTimeout(() => {
    if (state.checks.microphone) return;
    setResult('mic-result', false, 'devices.microphone.quiet');
    state.micQuiet = true;
    updateJoin();
  }, MIC_GRACE_MS);
  state.stopMeter = await startLevelMeter(state.stream, (level, peak) => {
    const pct = Math.round(level * 100);
    $('mic-bar').style.width = `${pct}%`;
    $('mic-meter').setAttribute('aria-valuenow', String(pct));
    if (!state.checks.microphone && peak >= MIC_OK_LEVEL) {
      state.checks.microphone = true;
      setResult('mic-result', true, 'devices.microphone.ok');
      updateJoin();
    }
  });
  return true;
}

async function onTone() {
  $('tone-play').disabled = true;
  try {
    await playTestTone(1.5);
  } finally {
    $('tone-play').disabled = false;
    $('tone-heard').disabled = false;
  }
}

function onHeard() {
  state.checks.speaker = true;
  $('tone-heard').setAttribute('aria-pressed', 'true');
  setResult('speaker-result', true, 'devices.speaker.ok');
  updateJoin();
}

async function onJoin() {
  $('join').disabled = true;
  clearTimeout(state.micTimer);
  if (state.stopMeter) { state.stopMeter(); state.stopMeter = null; }
  remember('devices', '1');
  state.deviceCheck = {
    type: 'device-check', camera: state.checks.camera, microphone: state.checks.microphone,
    speaker: state.checks.speaker, details: navigator.userAgent.slice(0, 200),
  };
  showStep('step-call');
  await startCall();
}

/* ------------------------------------------------------------ call */

async function startCall() {
  if (state.ended) return;
  if (!state.sig) {
    try {
      await connect();
    } catch (e) {
      if (e instanceof SignalingError && e.fatal) { endWith(errorKey(e)); return; }
      scheduleReconnect();
      return;
    }
  }
  if (state.deviceCheck && state.sig.send(state.deviceCheck)) state.deviceCheck = null;
  if (!state.stream || state.stream.getTracks().some((tr) => tr.readyState === 'ended')) {
    try {
      state.stream = await openCameraAndMicrophone();
    } catch (e) {
      alertBox(e.key || 'media.error.other', null, { retry: true });
      return;
    }
  }
  attach($('self'), state.stream);
  const call = new Call(state.sig, state.stream, state.hello?.ice_servers || []);
  state.call = call;
  call.addEventListener('remote', (ev) => {
    attach($('remote'), ev.detail).then((ok) => { $('sound-on').hidden = ok; });
  });
  call.addEventListener('state', (ev) => onCallState(call, ev.detail));
  status(state.attempt > 0 ? 'call.rejoining' : 'call.connecting');
  try {
    await call.start();
  } catch (e) {
    console.warn('call start', e);
    lost();
  }
}

function onCallState(call, s) {
  if (call !== state.call) return;
  clearTimeout(state.disconnectTimer);
  if (s === 'connected') {
    state.attempt = 0;
    state.inCall = true;
    alertBox(null);
    status('call.connected');
  } else if (s === 'disconnected') {
    status('call.unstable');
    state.disconnectTimer = setTimeout(() => { if (call === state.call) lost(); }, DISCONNECTED_GRACE_MS);
  } else if (s === 'failed') {
    lost();
  }
}

function onSignalingClosed(sig, detail) {
  if (sig !== state.sig || state.ended) return;
  const err = detail.error;
  if (err && err.fatal) { endWith(errorKey(err)); return; }
  lost();
}

/** The connection dropped: tear the part down and rejoin with backoff. */
function lost() {
  if (state.ended || state.reconnectTimer) return;
  if (state.call) { state.call.close(); state.call = null; }
  if (state.sig) { const s = state.sig; state.sig = null; s.close(); }
  $('remote-waiting').hidden = false;
  setText($('remote-waiting'), 'call.waiting');
  scheduleReconnect();
}

function scheduleReconnect() {
  if (state.ended) return;
  if (state.attempt >= RECONNECT.attempts) {
    alertBox('call.gave-up');
    status('');
    return;
  }
  const delay = backoffDelay(state.attempt, RECONNECT);
  state.attempt += 1;
  alertBox('call.lost', { seconds: Math.ceil(delay / 1000), attempt: state.attempt });
  state.reconnectTimer = setTimeout(async () => {
    state.reconnectTimer = null;
    await startCall();
  }, delay);
}

function onMessage(msg) {
  switch (msg.type) {
    case 'peer-joined':
      if (msg.peer === 'officer') {
        status('call.officer-joined');
        const v = $('remote');
        if (typeof v.requestVideoFrameCallback === 'function') v.requestVideoFrameCallback(() => { $('remote-waiting').hidden = true; });
      }
      break;
    case 'peer-left':
      if (msg.peer === 'officer') {
        status('call.officer-left');
        $('remote-waiting').hidden = false;
        setText($('remote-waiting'), 'call.officer-left');
      }
      break;
    case 'session-interrupted':
      alertBox('call.interrupted');
      break;
    case 'closed':
      endWith(msg.outcome === 'aborted' ? 'end.aborted' : 'end.done');
      break;
    default:
      break;
  }
}

function onLeave() {
  if (!window.confirm(t('call.leave.confirm'))) return;
  state.ended = true;
  if (state.sig) state.sig.leave();
  state.sig = null;
  endWith('end.left');
}

/* ------------------------------------------------------------ start */

async function main() {
  await i18n.init();
  i18n.onChange(() => renderConsent());
  renderConsent();
  window.testigo.consentText = () => consentText(state.retentionYears); // the exact text hashed
  state.token = tokenFromLocation();
  if (!state.token) { endWith('link.invalid-link'); return; }

  const check = $('consent-check');
  check.addEventListener('change', () => { $('consent-accept').disabled = !check.checked; if (check.checked) alertBox(null); });
  $('consent-form').addEventListener('submit', onConsent);
  $('devices-start').addEventListener('click', startDevices);
  $('alert-retry').addEventListener('click', () => {
    alertBox(null);
    if (state.inCall || !$('step-call').hidden) startCall();
    else startDevices();
  });
  $('tone-play').addEventListener('click', onTone);
  $('tone-heard').addEventListener('click', onHeard);
  $('join').addEventListener('click', onJoin);
  $('leave').addEventListener('click', onLeave);
  // the officer is visible once the first frame is decoded
  $('remote').addEventListener('resize', () => { if ($('remote').videoWidth > 0) $('remote-waiting').hidden = true; });
  $('sound-on').addEventListener('click', async () => {
    $('sound-on').hidden = await attach($('remote'), $('remote').srcObject);
  });
  window.addEventListener('pagehide', () => { if (state.sig) state.sig.close(); });

  // A reload after consent and device check rejoins straight away (a new part).
  if (recall('rejoin') && recall('consent') && recall('devices')) {
    showStep('step-call');
    state.attempt = 1;
    await startCall();
    return;
  }
  // A reload after consent, before the device check: straight to the check.
  if (recall('rejoin') && recall('consent')) {
    showStep('step-devices', { focus: false });
    return;
  }
  showStep('step-consent', { focus: false });
}

main().catch((e) => { console.error(e); });
