// session.test.mjs — suite "e2e": a whole validation session through the real
// testigod and testigo-recorder, driven in two Chromium contexts with fake
// devices (shared/design/recording.md): the officer logs in, creates a case
// and starts a session; the signatory opens the link, consents, passes the
// device check and joins; each side receives the other's audio and video
// (getStats: framesDecoded > 0, totalAudioEnergy > 0); the officer captures
// three stills (the console's gallery shows the recorder's PNGs, fetched from
// the officer API), gives an instruction, fills the checklist and closes
// approved; the downloaded bundle passes `testigo verify` and the auditor
// guide's stock-tool recipe; its recording holds four tracks (two video, two
// audio), each decoding to EOS with GStreamer's stock tools and lasting the
// call within 10 %; its three stills are PNGs that decode. A signatory reload
// mid-call gives two recording parts, both in the bundle, each decoding. A
// recorder killed with SIGKILL mid-call leaves an interrupted session whose
// sealed bundle verifies and holds the media up to the kill (at most 2 s
// lost), while a concurrent session goes on. Written against docs/protocol.md.
//
// Every wait is on a condition, with timeouts generous enough for a loaded
// two-core machine; the only fixed waits make the call last long enough.
//
// Environment: TESTIGOD, TESTIGO (built binaries; default build/…),
// TESTIGO_RECORDER (optional: testigod's built-in default otherwise),
// TESTIGO_WEB_ROOT, TESTIGO_E2E_KEEP=1 keeps the state folder.
// Needs gst-launch-1.0 and gst-discoverer-1.0 (gstreamer1.0-tools,
// gstreamer1.0-plugins-base-apps) and the stock tools of the recipe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { launch, until, chromiumAvailable, CHROMIUM } from './browser.mjs';
import { stockRecipe, extractBundle, checkRecording, checkPng } from './evidence.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const TESTIGOD = process.env.TESTIGOD || path.join(ROOT, 'build/signaling/testigod');
const TESTIGO = process.env.TESTIGO || path.join(ROOT, 'build/cli/testigo');
const WEB = process.env.TESTIGO_WEB_ROOT || path.join(ROOT, 'web-client');
const OFFICER = { id: 'e2e.officer', name: 'Oficial E2E', password: 'correct horse battery staple' };
/* Generous timeouts: the suite must not be flaky on a loaded two-core CI machine. */
const TEST_TIMEOUT = 600000;
const MEDIA_TIMEOUT = 90000;
const STILL_TIMEOUT = 60000;
const CLOSE_TIMEOUT = 180000;
/* How long the full session's call lasts from the signatory's connection:
 * long enough that the recorder's start and stop lag on a loaded machine
 * stay well inside 10 % of it (3 s). */
const CALL_MS = 30000;

let tmp;
let state;
let server;
let baseUrl;

function startTestigod() {
  return new Promise((resolve, reject) => {
    const args = ['--state-dir', state, '--listen', '127.0.0.1:0', '--web-root', WEB, '--recorder-loopback'];
    if (process.env.TESTIGO_RECORDER) args.push('--recorder', process.env.TESTIGO_RECORDER);
    const log = fs.openSync(path.join(tmp, 'testigod.log'), 'a');
    const proc = spawn(TESTIGOD, args, { detached: true, stdio: ['ignore', 'pipe', log] });
    const timer = setTimeout(() => reject(new Error('testigod did not say it was listening within 20 s')), 20000);
    proc.on('exit', (code) => reject(new Error(`testigod exited (${code}); see ${tmp}/testigod.log`)));
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = line.match(/listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1].replace(/\/$/, '') }); }
    });
  });
}

function stopTestigod() {
  if (!server || server.proc.exitCode !== null) return;
  try { process.kill(-server.proc.pid, 'SIGTERM'); } catch { return; }
  const end = Date.now() + 10000;
  while (Date.now() < end) {
    try { process.kill(-server.proc.pid, 0); } catch { return; }
    spawnSync('sleep', ['0.2']);
  }
  try { process.kill(-server.proc.pid, 'SIGKILL'); } catch { /* gone */ }
}

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: apt-get install chromium`);
  for (const exe of [TESTIGOD, TESTIGO]) assert.ok(fs.existsSync(exe), `${exe} is not built`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'testigo-e2e-'));
  state = path.join(tmp, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  const pw = path.join(tmp, 'password');
  fs.writeFileSync(pw, `${OFFICER.password}\n`, { mode: 0o600 });
  const add = spawnSync(TESTIGO, ['officer', 'add', OFFICER.id, '--name', OFFICER.name, '--password-file', pw, '--state-dir', state], { encoding: 'utf8' });
  assert.equal(add.status, 0, `testigo officer add: ${add.stderr}`);
  server = await startTestigod();
  baseUrl = server.url;
});

after(() => {
  stopTestigod();
  if (tmp && !process.env.TESTIGO_E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
  else if (tmp) console.log(`# state kept in ${tmp}`);
});

/** Inbound RTP of the page's live call: {video: framesDecoded, audio: totalAudioEnergy}. */
async function inbound(page, expr) {
  return page.evaluate(async (e) => {
    // eslint-disable-next-line no-new-func
    const call = new Function(`return ${e}`)();
    if (!call || !call.pc) return null;
    try {
      const s = await call.inboundStats();
      return { frames: s.video?.framesDecoded || 0, energy: s.audio?.totalAudioEnergy || 0, state: call.pc.connectionState };
    } catch { return null; } // the call was just replaced or closed
  }, expr).catch(() => null); // the page is navigating
}

/**
 * The wall-clock time (ms, the test's clock: the page and the test share the
 * system clock) at which the page's call (@expr) got its RTCPeerConnection
 * connected: recorded in the page by a connectionstatechange listener
 * installed as soon as the connection exists.
 */
async function connectedAt(page, expr) {
  return until(page, (e) => {
    // eslint-disable-next-line no-new-func
    const call = new Function(`return ${e}`)();
    if (!call || !call.pc) return null;
    if (call.pc.connectionState === 'connected' && !call.e2eConnectedAt) call.e2eConnectedAt = Date.now();
    if (!call.e2eWatch) {
      call.e2eWatch = true;
      call.pc.addEventListener('connectionstatechange', () => {
        if (call.pc.connectionState === 'connected' && !call.e2eConnectedAt) call.e2eConnectedAt = Date.now();
      });
    }
    return call.e2eConnectedAt || null;
  }, expr, { what: 'the call connected', timeout: MEDIA_TIMEOUT, interval: 100 });
}

/** Resolves at wall-clock time @t (the call's length, never an assertion). */
function callUntil(t) {
  const ms = t - Date.now();
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

/* ------------------------------------------------------------ steps */

async function officerLogin(o) {
  await o.goto(`${baseUrl}/officer.html`);
  await until(o, () => !document.getElementById('view-login').hidden || !document.getElementById('view-cases').hidden, null, { what: 'console' });
  if (await o.isVisible('#view-login')) {
    await o.fill('#login-user', OFFICER.id);
    await o.fill('#login-password', OFFICER.password);
    await o.click('#login-submit');
  }
  await until(o, () => !document.getElementById('view-cases').hidden, null, { what: 'case list', timeout: 60000 });
}

/** Creates a case and starts its session; returns {caseId, joinUrl}. */
async function caseAndSession(o, { nationalId, serial, action = 'renewal', days }) {
  await o.fill('#case-holder', 'María José García-Núñez');
  await o.fill('#case-nid', nationalId);
  await o.fill('#case-email', 'mj@example.org');
  await o.fill('#case-serial', serial);
  await o.selectOption('#case-action', action);
  if (days) await o.fill('#case-days', String(days));
  await o.fill('#case-reason', 'Token perdido.');
  await o.click('#case-submit');
  await until(o, () => !document.getElementById('view-case').hidden && window.testigo.app.currentCase, null, { what: 'case view', timeout: 60000 });
  const caseId = await o.evaluate(() => window.testigo.app.currentCase.id);
  await o.click('#session-start');
  const joinUrl = await until(o, () => !document.getElementById('view-session').hidden && document.getElementById('join-url').value, null, { what: 'join link', timeout: 60000 });
  assert.match(joinUrl, /\/join\/[A-Za-z0-9_-]{43}$/);
  await until(o, () => window.testigo.session?.call, null, { what: 'officer call', timeout: MEDIA_TIMEOUT });
  return { caseId, joinUrl };
}

async function signatoryJoins(s, joinUrl) {
  await s.goto(joinUrl);
  await until(s, () => document.getElementById('consent-title')?.textContent.length > 0, null, { what: 'signatory page', timeout: 60000 });
  await s.check('#consent-check');
  await s.click('#consent-accept');
  await until(s, () => !document.getElementById('step-devices').hidden, null, { what: 'device step', timeout: 30000 });
  await s.click('#devices-start');
  await until(s, () => document.getElementById('camera-result').classList.contains('ok')
    && document.getElementById('mic-result').classList.contains('ok'), null, { what: 'camera and microphone', timeout: 60000 });
  await s.click('#tone-play');
  await until(s, () => !document.getElementById('tone-heard').disabled, null, { what: 'tone', timeout: 30000 });
  await s.click('#tone-heard');
  await s.click('#join');
}

/** Waits until the page's call decodes video frames and audio energy beyond @above. */
async function wantMedia(page, expr, who, above = { frames: 0, energy: 0 }) {
  const end = Date.now() + MEDIA_TIMEOUT;
  let last;
  while (Date.now() < end) {
    last = await inbound(page, expr);
    if (last && last.frames > above.frames && last.energy > above.energy) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${who} did not receive audio and video: ${JSON.stringify(last)}`);
}
const OFFICER_CALL = 'window.testigo.session && window.testigo.session.call';
const SIGNATORY_CALL = 'window.testigo.call';

/**
 * Asks a still of @kind and waits until the gallery shows the recorder's PNG
 * (fetched from the officer API, decoded by the browser). Returns
 * {name, src, width, height, caption} of that gallery entry.
 */
async function still(o, kind) {
  const shown = (k) => `#gallery li[data-kind="${k}"][data-saved="true"] img[data-source="recorder"][data-loaded="true"]`;
  const before = await o.evaluate((sel) => document.querySelectorAll(sel).length, shown(kind));
  await until(o, () => !document.querySelector('button.still[data-kind="doc-front"]').disabled, null, { what: 'stills possible', timeout: STILL_TIMEOUT });
  await o.click(`button.still[data-kind="${kind}"]`);
  await until(o, ([sel, n]) => document.querySelectorAll(sel).length > n, [shown(kind), before], { what: `the recorder's still ${kind} in the gallery`, timeout: STILL_TIMEOUT });
  return o.evaluate(([sel, n]) => {
    const img = document.querySelectorAll(sel)[n];
    return { name: img.getAttribute('src').split('/').pop(), src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight,
      caption: img.closest('li').textContent };
  }, [shown(kind), before]);
}

async function instruction(o) {
  const before = await o.evaluate(() => document.querySelectorAll('#instr-list li').length);
  await o.selectOption('#instr-kind', 'tilt');
  await o.selectOption('#instr-target', 'doc-front');
  await o.fill('#instr-text', 'Incline el documento hacia la cámara.');
  await o.click('#instr-give');
  await until(o, (n) => document.querySelectorAll('#instr-list li').length > n, before, { what: 'instruction recorded', timeout: 30000 });
}

/** Fills the checklist as a pass and closes approved; returns the indication shown.
 * @times.clicked gets the wall-clock time of the click on "close". */
async function closeApproved(o, times = {}) {
  await o.selectOption('#doc-type', 'id-card');
  await o.fill('#doc-issuer', 'VEN');
  await o.fill('#doc-number', 'V12345678');
  await o.fill('#doc-expiry', '2031-06-14');
  await o.selectOption('#cmp-name', 'match');
  await o.selectOption('#cmp-national_id', 'match');
  await o.selectOption('#cmp-photo', 'match');
  await o.click('#feature-random');
  const rows = o.locator('#feature-rows tr');
  for (let i = 0; i < await rows.count(); i++) await rows.nth(i).locator('.feature-result').selectOption('pass');
  await o.check('input[name=face][value=match]');
  await o.check('input[name=outcome][value=approved]');
  times.clicked = Date.now();
  await o.click('#close-submit');
  await until(o, () => !document.getElementById('result').hidden || document.getElementById('close-errors').children.length, null, { what: 'close result', timeout: CLOSE_TIMEOUT });
  const errs = await o.evaluate(() => [...document.querySelectorAll('#close-errors li')].map((l) => l.textContent));
  assert.deepEqual(errs, [], 'the checklist was accepted');
  return o.evaluate(() => document.getElementById('result').dataset.indication);
}

function verify(bundle, caseId, action, serial) {
  const r = spawnSync(TESTIGO, ['verify', '--ca-file', path.join(state, 'keys', 'root.pem'), '--json',
    '--for-case', caseId, '--action', action, '--serial', serial, bundle], { encoding: 'utf8' });
  assert.equal(r.status, 0, `testigo verify: ${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

function bundleRecord(bundle, caseId) {
  const r = spawnSync('tar', ['-xOf', bundle, `${caseId}/data/record.json`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function bundleMembers(bundle) {
  return spawnSync('tar', ['-tf', bundle], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

/** The auditor's stock-tool recipe passes @bundle (docs/auditor-guide.md). */
function recipePasses(bundle) {
  const r = stockRecipe(ROOT, tmp, bundle, path.join(state, 'keys', 'root.pem'));
  assert.equal(r.status, 0, `stock-tool recipe on ${bundle}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /STOCK CHECKS PASSED for /);
}

/** Video and audio track counts of a recording part as the record lists them. */
function wantTracks(part) {
  return { video: part.tracks.filter((t) => t.kind === 'video').length, audio: part.tracks.filter((t) => t.kind === 'audio').length };
}

/** The files of a recording part: one per track (or, from an older recorder, the part's one file). */
function partFiles(part) {
  return part.file ? [part.file] : part.tracks.map((t) => t.file);
}

/**
 * checkRecording over the files of @part in the extracted bundle @bag: each
 * track's file holds that one track, decoding to EOS. Returns the tracks
 * ({pad: "<file> <pad>", spanMs, endMs, ...}).
 */
function checkPart(bag, part) {
  if (part.file) return checkRecording(path.join(bag, 'data', part.file), wantTracks(part));
  const tracks = [];
  for (const t of part.tracks) {
    assert.ok(t.file, `part ${part.index}: the ${t.party} ${t.kind} track names its file`);
    const m = checkRecording(path.join(bag, 'data', t.file), { video: t.kind === 'video' ? 1 : 0, audio: t.kind === 'audio' ? 1 : 0 });
    for (const x of m.tracks) tracks.push({ ...x, pad: `${t.file} ${x.pad}` });
  }
  return { tracks };
}

/** Downloads @href with the officer's cookie (the context's request API) to @file; returns the bytes. */
async function download(ctx, href, file) {
  const r = await ctx.request.get(new URL(href, baseUrl).toString(), { timeout: 120000 });
  assert.equal(r.status(), 200, `GET ${href}: ${r.status()}`);
  const body = await r.body();
  if (file) fs.writeFileSync(file, body);
  return body;
}

/* ------------------------------------------------------------ tests */

test('a whole session: join, media both ways, stills, checklist, sealed bundle that verifies', { timeout: TEST_TIMEOUT }, async () => {
  const officer = await launch({ lang: 'es-VE' });
  const signatory = await launch({ lang: 'es-VE', viewport: { width: 360, height: 740 } });
  const o = officer.page;
  const s = signatory.page;
  try {
    await officerLogin(o);
    const { caseId, joinUrl } = await caseAndSession(o, { nationalId: 'V-12.345.678', serial: '4f1a9c0b7d22e36a', action: 'suspension', days: 7 });
    await signatoryJoins(s, joinUrl);
    const joinedAt = Date.now();
    // the call starts when the signatory's connection (through the recorder) is up
    const callStart = await connectedAt(s, SIGNATORY_CALL);
    console.log(`# the signatory's call connected ${callStart - joinedAt} ms after the join click`);
    await until(o, () => document.getElementById('sg-consent').dataset.i18n === 'signatory.consent.given', null, { what: 'officer sees the consent', timeout: 30000 });

    // media both ways, through the recorder
    const atOfficer = await wantMedia(o, OFFICER_CALL, 'the officer');
    const atSignatory = await wantMedia(s, SIGNATORY_CALL, 'the signatory');
    console.log(`# officer receives ${JSON.stringify(atOfficer)}; signatory receives ${JSON.stringify(atSignatory)}`);

    // three stills: the gallery shows the recorder's PNG of each
    const shown = {};
    for (const kind of ['doc-front', 'doc-back', 'face']) shown[kind] = await still(o, kind);
    for (const [kind, g] of Object.entries(shown)) {
      assert.match(g.name, new RegExp(`^${kind}-\\d+\\.png$`), JSON.stringify(g));
      assert.ok(g.width >= 160 && g.height >= 120, `the gallery decoded the recorder's ${g.name}: ${g.width}x${g.height}`);
    }
    await instruction(o);
    // the call lasts CALL_MS from the connection, so that its set-up is small next to 10 % of it
    await callUntil(callStart + CALL_MS);
    const times = {};
    assert.equal(await closeApproved(o, times), 'TOTAL-PASSED');
    const callMs = times.clicked - callStart;

    // the signatory is told the session ended
    await until(s, () => !document.getElementById('step-end').hidden, null, { what: 'signatory end page', timeout: 60000 });

    // the bundle: in the holder's evidence folder and downloadable (the same bytes)
    const bundle = path.join(state, 'evidence', 'V-12_345_678', `${caseId}.tar`);
    assert.ok(fs.existsSync(bundle), `${bundle} exists`);
    const downloaded = path.join(tmp, `${caseId}-download.tar`);
    const href = await o.getAttribute('#result-download', 'href');
    assert.ok((await download(officer.context, href, downloaded)).equals(fs.readFileSync(bundle)), 'the download is the sealed bundle');

    // `testigo verify` and the auditor's stock-tool recipe pass the download
    console.log(`# ${downloaded}: ${verify(downloaded, caseId, 'suspension', '4F1A9C0B7D22E36A').indication}`);
    recipePasses(downloaded);

    const record = bundleRecord(downloaded, caseId);
    assert.equal(record.consent.text_version, 'consent-1.es');
    assert.deepEqual(record.stills.map((x) => x.kind).sort(), ['doc-back', 'doc-front', 'face']);
    assert.equal(record.instructions.length, 1);
    assert.equal(record.signatory.joins.length, 1);
    // the part with the signatory recorded four tracks: audio and video of both parties
    const part = record.recording.parts.find((x) => x.tracks.some((t) => t.party === 'signatory'));
    assert.deepEqual(part.tracks.map((t) => `${t.party}/${t.kind}`).sort(),
      ['officer/audio', 'officer/video', 'signatory/audio', 'signatory/video']);
    for (const f of partFiles(part)) assert.ok(bundleMembers(downloaded).includes(`${caseId}/data/${f}`), `${f} is in the bundle`);

    // the recording: two video and two audio tracks, each decoding to EOS with
    // GStreamer's stock tools, each lasting the call within 10 %
    const bag = extractBundle(tmp, downloaded, caseId);
    const media = checkPart(bag, part);
    assert.equal(media.tracks.length, 4, `four decoded tracks: ${JSON.stringify(media.tracks)}`);
    console.log(`# call ${callMs} ms (connection to close); tracks ${JSON.stringify(media.tracks)}`);
    for (const t of media.tracks) {
      assert.ok(Math.abs(t.spanMs - callMs) <= 0.1 * callMs,
        `${t.pad} lasts ${t.spanMs} ms, not within 10 % of the call's ${callMs} ms`);
    }
    // any other part (the officer alone) decodes too
    for (const p of record.recording.parts) if (p !== part) checkPart(bag, p);

    // the stills: PNG files that decode, the very images the gallery showed,
    // with the offsets the gallery gave
    for (const st of record.stills) {
      const file = path.join(bag, 'data', 'stills', st.name);
      const { width, height } = checkPng(file);
      const g = shown[st.kind];
      assert.equal(g.name, st.name);
      assert.deepEqual([g.width, g.height], [width, height], `the gallery showed ${st.name} at its size`);
      assert.ok((await download(officer.context, g.src)).equals(fs.readFileSync(file)), `the gallery's ${st.name} is the sealed still`);
      assert.ok(g.caption.includes((st.offset_ms / 1000).toFixed(1)), `the gallery gives the offset of ${st.name}: ${g.caption}`);
      assert.ok(st.offset_ms <= callMs, `${st.name} lies within the call`);
    }
    // another session's stills are not this one's
    const other = await officer.context.request.get(`${baseUrl}/api/sessions/ses-unknown/stills/${record.stills[0].name}`);
    assert.equal(other.status(), 404);
  } finally {
    await officer.close();
    await signatory.close();
  }
});

test('a signatory reload mid-call rejoins as a new part; both parts are in the bundle', { timeout: TEST_TIMEOUT }, async () => {
  const officer = await launch({ lang: 'en-US' });
  const signatory = await launch({ lang: 'en-US', viewport: { width: 360, height: 740 } });
  const o = officer.page;
  const s = signatory.page;
  try {
    await officerLogin(o);
    const { caseId, joinUrl } = await caseAndSession(o, { nationalId: 'V-87654321', serial: 'ABCDEF01' });
    await signatoryJoins(s, joinUrl);
    const first = await connectedAt(s, SIGNATORY_CALL);
    await wantMedia(o, OFFICER_CALL, 'the officer');
    await wantMedia(s, SIGNATORY_CALL, 'the signatory');
    await still(o, 'doc-front');
    await callUntil(first + 3000); // the first part lasts a few seconds

    // reload: the page rejoins by itself with the rejoin secret, without asking consent again
    await s.reload({ timeout: 60000 });
    await until(s, () => !document.getElementById('step-call').hidden, null, { what: 'call step after reload', timeout: 60000 });
    assert.equal(await s.evaluate(() => document.getElementById('step-consent').hidden), true);
    await until(o, () => document.getElementById('sg-connection').dataset.i18n === 'signatory.rejoined', null, { what: 'officer sees the rejoin', timeout: 60000 });
    const second = await connectedAt(s, SIGNATORY_CALL);
    await wantMedia(s, SIGNATORY_CALL, 'the signatory after the reload');
    const before = await inbound(o, OFFICER_CALL);
    await wantMedia(o, OFFICER_CALL, 'the officer after the reload', before);
    await still(o, 'face');
    await instruction(o);
    await callUntil(second + 3000);
    assert.equal(await closeApproved(o), 'TOTAL-PASSED');

    const bundle = path.join(state, 'evidence', 'V-87654321', `${caseId}.tar`);
    verify(bundle, caseId, 'renewal', 'ABCDEF01');
    recipePasses(bundle);
    const record = bundleRecord(bundle, caseId);
    assert.equal(record.signatory.joins.length, 2, 'the join and the rejoin');
    const withSignatory = record.recording.parts.filter((p) => p.tracks.some((t) => t.party === 'signatory' && t.kind === 'video'));
    assert.ok(withSignatory.length >= 2, `two parts with the signatory's video: ${JSON.stringify(record.recording.parts.map(partFiles))}`);
    const members = bundleMembers(bundle);
    for (const p of withSignatory) for (const f of partFiles(p)) assert.ok(members.includes(`${caseId}/data/${f}`), `${f} is in the bundle`);
    assert.ok(record.interruptions?.length >= 1, 'the drop is in the record');
    // every part in the bundle decodes to EOS on the tracks the record lists
    const bag = extractBundle(tmp, bundle, caseId);
    for (const p of record.recording.parts) {
      const media = checkPart(bag, p);
      console.log(`# part ${p.index}: ${JSON.stringify(media.tracks)}`);
    }
    for (const st of record.stills) checkPng(path.join(bag, 'data', 'stills', st.name));
  } finally {
    await officer.close();
    await signatory.close();
  }
});

/** The pid of the testigo-recorder of session @sid (from /proc), or null. */
function recorderPid(sid) {
  for (const pid of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let argv;
    try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    const i = argv.indexOf('--session-id');
    if (argv.some((a) => a.endsWith('testigo-recorder')) && i >= 0 && argv[i + 1] === sid) return Number(pid);
  }
  return null;
}

/** Polls @fn (in the test) until it returns a truthy value, or throws after @timeout ms. */
async function waitFor(fn, what, timeout = 60000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The events of session @sid's events.jsonl so far (complete lines only). */
function sessionEvents(sid) {
  let text;
  try { text = fs.readFileSync(path.join(state, 'sessions', sid, 'events.jsonl'), 'utf8'); } catch { return []; }
  return text.split('\n').slice(0, -1).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
}

test('a recorder killed mid-call: that session is interrupted and still seals; a concurrent session goes on', { timeout: TEST_TIMEOUT }, async () => {
  const ctx = [];
  try {
    for (const lang of ['es-VE', 'es-VE', 'en-US', 'en-US']) ctx.push(await launch({ lang, viewport: ctx.length % 2 ? { width: 360, height: 740 } : undefined }));
    const [oa, sa, ob, sb] = ctx.map((c) => c.page);
    await officerLogin(oa);
    const a = await caseAndSession(oa, { nationalId: 'V-11111111', serial: 'AA11' });
    await signatoryJoins(sa, a.joinUrl);
    await officerLogin(ob);
    const b = await caseAndSession(ob, { nationalId: 'V-22222222', serial: 'BB22' });
    await signatoryJoins(sb, b.joinUrl);
    for (const [page, expr, who] of [[oa, OFFICER_CALL, 'officer A'], [sa, SIGNATORY_CALL, 'signatory A'],
      [ob, OFFICER_CALL, 'officer B'], [sb, SIGNATORY_CALL, 'signatory B']]) await wantMedia(page, expr, who);
    await still(oa, 'doc-front');

    // A records for a while: its part started, a few segments of it are
    // chained, and at least 5 s went by since the part started
    const sidA = await oa.evaluate(() => window.testigo.session.id);
    const partStart = await waitFor(() => sessionEvents(sidA).find((e) => e.type === 'part-start'), `a part of ${sidA}`);
    const ofPart = (file) => typeof file === 'string' && file.startsWith(`recording-${partStart.part}-`);
    await waitFor(() => sessionEvents(sidA).filter((e) => e.type === 'segment' && ofPart(e.file)).length >= 2,
      `chained segments of part ${partStart.part}`, MEDIA_TIMEOUT);
    await callUntil(Date.parse(partStart.time) + 5000);
    const pid = recorderPid(sidA);
    assert.ok(pid, `the recorder of ${sidA} is running`);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');

    // both pages of A are told; B goes on
    await until(oa, () => document.getElementById('alert-text').dataset.i18n === 'session.interrupted', null, { what: 'officer A told', timeout: 60000 });
    await until(sa, () => document.getElementById('alert-text').dataset.i18n === 'call.interrupted', null, { what: 'signatory A told', timeout: 60000 });
    const ob0 = await inbound(ob, OFFICER_CALL);
    const sb0 = await inbound(sb, SIGNATORY_CALL);
    await wantMedia(ob, OFFICER_CALL, 'officer B after the kill', ob0);
    await wantMedia(sb, SIGNATORY_CALL, 'signatory B after the kill', sb0);

    // A: closed (aborted, with the reason) seals what was recorded, and it verifies
    await oa.check('input[name=outcome][value=aborted]');
    await oa.fill('#notes', 'The recorder stopped during the call.');
    await oa.click('#close-submit');
    await until(oa, () => !document.getElementById('result').hidden || document.getElementById('close-errors').children.length, null, { what: 'A closed', timeout: CLOSE_TIMEOUT });
    assert.equal(await oa.evaluate(() => document.getElementById('result').dataset.indication), 'TOTAL-PASSED');
    const bundleA = path.join(state, 'evidence', 'V-11111111', `${a.caseId}.tar`);
    verify(bundleA, a.caseId, 'renewal', 'AA11');
    recipePasses(bundleA);
    const recA = bundleRecord(bundleA, a.caseId);
    assert.ok(recA.interruptions.some((x) => x.cause === 'server'), JSON.stringify(recA.interruptions));
    const partA = recA.recording.parts.find((x) => x.tracks.some((t) => t.party === 'signatory'));
    assert.ok(partA && partFiles(partA).every((f) => bundleMembers(bundleA).includes(`${a.caseId}/data/${f}`)), 'the recording up to the kill is in the bundle');
    assert.ok(recA.stills.some((x) => x.kind === 'doc-front'));

    // The media up to the kill, at most 2 s lost. The part started at
    // started_at (the recorder's part-start time, UTC ms: the same system
    // clock as the test's Date.now()), so the call had run
    //   expected = killedAt - started_at
    // when the recorder died. The part's time zero (shared by its track
    // files) is its first recorded buffer, which comes after the part start
    // by at most the first keyframe's offset (first_keyframe_offset_ms: the
    // known start offset). What the sealed file holds is the latest decoded
    // end over its tracks, heldMs, so
    //   lost = expected - (heldMs + start offset)
    // must be at most 2000 ms. It cannot be far below zero either (media
    // cannot outlast the kill): 3 s slack there, for a part-start time that
    // a loaded recorder stamps late, clock reads and frame lengths.
    const bagA = extractBundle(tmp, bundleA, a.caseId);
    const mediaA = checkPart(bagA, partA);
    const heldMs = Math.max(...mediaA.tracks.map((t) => t.endMs));
    const startOffset = partA.first_keyframe_offset_ms ?? 0;
    const expected = killedAt - Date.parse(partA.started_at);
    const lost = expected - (heldMs + startOffset);
    console.log(`# A: part from ${partA.started_at}, killed ${expected} ms into it; the bundle holds ${heldMs} ms (+${startOffset} ms start offset): ${lost} ms lost; tracks ${JSON.stringify(mediaA.tracks)}`);
    assert.equal(Date.parse(partA.started_at), Date.parse(partStart.time), 'the record and the events agree on the part start');
    assert.ok(lost <= 2000, `at most 2 s lost at the kill: ${lost} ms lost`);
    assert.ok(lost >= -3000, `the media do not outlast the kill: ${lost} ms`);
    for (const t of mediaA.tracks) {
      const lostT = expected - (t.endMs + startOffset);
      assert.ok(lostT <= 2000, `${t.pad} runs up to the kill: ends at ${t.endMs} ms, ${lostT} ms lost`);
    }

    // B: the whole proof, approved, verifies, passes the recipe, its media decode
    await still(ob, 'doc-front');
    await still(ob, 'face');
    await instruction(ob);
    assert.equal(await closeApproved(ob), 'TOTAL-PASSED');
    const bundleB = path.join(state, 'evidence', 'V-22222222', `${b.caseId}.tar`);
    verify(bundleB, b.caseId, 'renewal', 'BB22');
    recipePasses(bundleB);
    const recB = bundleRecord(bundleB, b.caseId);
    const bagB = extractBundle(tmp, bundleB, b.caseId);
    for (const p of recB.recording.parts) checkPart(bagB, p);
    assert.ok(!(recB.interruptions || []).some((x) => x.cause === 'server'), `B's recorder was not hit: ${JSON.stringify(recB.interruptions)}`);
  } finally {
    for (const c of ctx) await c.close();
  }
});
