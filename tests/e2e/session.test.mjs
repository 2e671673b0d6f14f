// session.test.mjs — suite "e2e": a whole validation session through the real
// testigod and testigo-recorder, driven in two Chromium contexts with fake
// devices (shared/design/recording.md): the officer logs in, creates a case
// and starts a session; the signatory opens the link, consents, passes the
// device check and joins; each side receives the other's audio and video
// (getStats: framesDecoded > 0, totalAudioEnergy > 0); the officer captures
// three stills, gives an instruction, fills the checklist and closes approved;
// the bundle passes `testigo verify`. A signatory reload mid-call gives two
// recording parts, both in the bundle. A recorder killed with SIGKILL
// mid-call leaves an interrupted session that still seals and verifies, while
// a concurrent session goes on. Written against docs/protocol.md.
// (Decoding each track to EOS and the duration checks are the recorder's tests.)
//
// Environment: TESTIGOD, TESTIGO (built binaries; default build/…),
// TESTIGO_RECORDER (optional: testigod's built-in default otherwise),
// TESTIGO_WEB_ROOT, TESTIGO_E2E_KEEP=1 keeps the state folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { launch, until, chromiumAvailable, CHROMIUM } from './browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const TESTIGOD = process.env.TESTIGOD || path.join(ROOT, 'build/signaling/testigod');
const TESTIGO = process.env.TESTIGO || path.join(ROOT, 'build/cli/testigo');
const WEB = process.env.TESTIGO_WEB_ROOT || path.join(ROOT, 'web-client');
const OFFICER = { id: 'e2e.officer', name: 'Oficial E2E', password: 'correct horse battery staple' };

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
    const s = await call.inboundStats();
    return { frames: s.video?.framesDecoded || 0, energy: s.audio?.totalAudioEnergy || 0, state: call.pc.connectionState };
  }, expr);
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
  await until(o, () => !document.getElementById('view-cases').hidden, null, { what: 'case list' });
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
  await until(o, () => !document.getElementById('view-case').hidden && window.testigo.app.currentCase, null, { what: 'case view' });
  const caseId = await o.evaluate(() => window.testigo.app.currentCase.id);
  await o.click('#session-start');
  const joinUrl = await until(o, () => !document.getElementById('view-session').hidden && document.getElementById('join-url').value, null, { what: 'join link' });
  assert.match(joinUrl, /\/join\/[A-Za-z0-9_-]{43}$/);
  await until(o, () => window.testigo.session?.call, null, { what: 'officer call', timeout: 30000 });
  return { caseId, joinUrl };
}

async function signatoryJoins(s, joinUrl) {
  await s.goto(joinUrl);
  await until(s, () => document.getElementById('consent-title')?.textContent.length > 0, null, { what: 'signatory page' });
  await s.check('#consent-check');
  await s.click('#consent-accept');
  await until(s, () => !document.getElementById('step-devices').hidden, null, { what: 'device step' });
  await s.click('#devices-start');
  await until(s, () => document.getElementById('camera-result').classList.contains('ok')
    && document.getElementById('mic-result').classList.contains('ok'), null, { what: 'camera and microphone', timeout: 20000 });
  await s.click('#tone-play');
  await until(s, () => !document.getElementById('tone-heard').disabled, null, { what: 'tone' });
  await s.click('#tone-heard');
  await s.click('#join');
}

/** Waits until the page's call decodes video frames and audio energy beyond @above. */
async function wantMedia(page, expr, who, above = { frames: 0, energy: 0 }) {
  const end = Date.now() + 45000;
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

async function still(o, kind) {
  const before = await o.evaluate((k) => document.querySelectorAll(`#gallery li[data-kind="${k}"][data-saved="true"]`).length, kind);
  await until(o, () => !document.querySelector('button.still[data-kind="doc-front"]').disabled, null, { what: 'stills possible', timeout: 30000 });
  await o.click(`button.still[data-kind="${kind}"]`);
  await until(o, ([k, n]) => document.querySelectorAll(`#gallery li[data-kind="${k}"][data-saved="true"]`).length > n, [kind, before], { what: `still ${kind}`, timeout: 30000 });
}

async function instruction(o) {
  const before = await o.evaluate(() => document.querySelectorAll('#instr-list li').length);
  await o.selectOption('#instr-kind', 'tilt');
  await o.selectOption('#instr-target', 'doc-front');
  await o.fill('#instr-text', 'Incline el documento hacia la cámara.');
  await o.click('#instr-give');
  await until(o, (n) => document.querySelectorAll('#instr-list li').length > n, before, { what: 'instruction recorded' });
}

/** Fills the checklist as a pass and closes approved; returns the indication shown. */
async function closeApproved(o) {
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
  await o.click('#close-submit');
  await until(o, () => !document.getElementById('result').hidden || document.getElementById('close-errors').children.length, null, { what: 'close result', timeout: 120000 });
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

/* ------------------------------------------------------------ tests */

test('a whole session: join, media both ways, stills, checklist, sealed bundle that verifies', { timeout: 300000 }, async () => {
  const officer = await launch({ lang: 'es-VE' });
  const signatory = await launch({ lang: 'es-VE', viewport: { width: 360, height: 740 } });
  const o = officer.page;
  const s = signatory.page;
  try {
    await officerLogin(o);
    const { caseId, joinUrl } = await caseAndSession(o, { nationalId: 'V-12.345.678', serial: '4f1a9c0b7d22e36a', action: 'suspension', days: 7 });
    await signatoryJoins(s, joinUrl);
    const callStart = Date.now();
    await until(o, () => document.getElementById('sg-consent').dataset.i18n === 'signatory.consent.given', null, { what: 'officer sees the consent' });

    // media both ways, through the recorder
    const atOfficer = await wantMedia(o, OFFICER_CALL, 'the officer');
    const atSignatory = await wantMedia(s, SIGNATORY_CALL, 'the signatory');
    console.log(`# officer receives ${JSON.stringify(atOfficer)}; signatory receives ${JSON.stringify(atSignatory)}`);

    for (const kind of ['doc-front', 'doc-back', 'face']) await still(o, kind);
    await instruction(o);
    // let the call run a little so the recording has substance
    const minCall = 8000 - (Date.now() - callStart);
    if (minCall > 0) await new Promise((r) => setTimeout(r, minCall));
    assert.equal(await closeApproved(o), 'TOTAL-PASSED');

    // the signatory is told the session ended
    await until(s, () => !document.getElementById('step-end').hidden, null, { what: 'signatory end page', timeout: 20000 });

    // the bundle: in the holder's evidence folder, downloadable, and `testigo verify` passes
    const bundle = path.join(state, 'evidence', 'V-12_345_678', `${caseId}.tar`);
    assert.ok(fs.existsSync(bundle), `${bundle} exists`);
    const href = await o.getAttribute('#result-download', 'href');
    const size = await o.evaluate(async (u) => (await (await fetch(u)).arrayBuffer()).byteLength, href);
    assert.equal(size, fs.statSync(bundle).size, 'the download is the sealed bundle');
    console.log(`# ${bundle}: ${verify(bundle, caseId, 'suspension', '4F1A9C0B7D22E36A').indication}`);
    const record = bundleRecord(bundle, caseId);
    assert.equal(record.consent.text_version, 'consent-1.es');
    assert.deepEqual(record.stills.map((x) => x.kind).sort(), ['doc-back', 'doc-front', 'face']);
    assert.equal(record.instructions.length, 1);
    assert.equal(record.signatory.joins.length, 1);
    // the part with the signatory recorded four tracks: audio and video of both parties
    const part = record.recording.parts.find((x) => x.tracks.some((t) => t.party === 'signatory'));
    assert.deepEqual(part.tracks.map((t) => `${t.party}/${t.kind}`).sort(),
      ['officer/audio', 'officer/video', 'signatory/audio', 'signatory/video']);
    assert.ok(bundleMembers(bundle).includes(`${caseId}/data/${part.file}`));
  } finally {
    await officer.close();
    await signatory.close();
  }
});

test('a signatory reload mid-call rejoins as a new part; both parts are in the bundle', { timeout: 300000 }, async () => {
  const officer = await launch({ lang: 'en-US' });
  const signatory = await launch({ lang: 'en-US', viewport: { width: 360, height: 740 } });
  const o = officer.page;
  const s = signatory.page;
  try {
    await officerLogin(o);
    const { caseId, joinUrl } = await caseAndSession(o, { nationalId: 'V-87654321', serial: 'ABCDEF01' });
    await signatoryJoins(s, joinUrl);
    await wantMedia(o, OFFICER_CALL, 'the officer');
    await wantMedia(s, SIGNATORY_CALL, 'the signatory');
    await still(o, 'doc-front');
    await new Promise((r) => setTimeout(r, 3000));

    // reload: the page rejoins by itself with the rejoin secret, without asking consent again
    await s.reload();
    await until(s, () => !document.getElementById('step-call').hidden, null, { what: 'call step after reload' });
    assert.equal(await s.evaluate(() => document.getElementById('step-consent').hidden), true);
    await until(o, () => document.getElementById('sg-connection').dataset.i18n === 'signatory.rejoined', null, { what: 'officer sees the rejoin', timeout: 30000 });
    await wantMedia(s, SIGNATORY_CALL, 'the signatory after the reload');
    const before = await inbound(o, OFFICER_CALL);
    await wantMedia(o, OFFICER_CALL, 'the officer after the reload', before);
    await still(o, 'face');
    await instruction(o);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await closeApproved(o), 'TOTAL-PASSED');

    const bundle = path.join(state, 'evidence', 'V-87654321', `${caseId}.tar`);
    verify(bundle, caseId, 'renewal', 'ABCDEF01');
    const record = bundleRecord(bundle, caseId);
    assert.equal(record.signatory.joins.length, 2, 'the join and the rejoin');
    const withSignatory = record.recording.parts.filter((p) => p.tracks.some((t) => t.party === 'signatory' && t.kind === 'video'));
    assert.ok(withSignatory.length >= 2, `two parts with the signatory's video: ${JSON.stringify(record.recording.parts.map((p) => p.file))}`);
    const members = bundleMembers(bundle);
    for (const p of withSignatory) assert.ok(members.includes(`${caseId}/data/${p.file}`), `${p.file} is in the bundle`);
    assert.ok(record.interruptions?.length >= 1, 'the drop is in the record');
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

test('a recorder killed mid-call: that session is interrupted and still seals; a concurrent session goes on', { timeout: 300000 }, async () => {
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
    await new Promise((r) => setTimeout(r, 3000));

    const sidA = await oa.evaluate(() => window.testigo.session.id);
    const pid = recorderPid(sidA);
    assert.ok(pid, `the recorder of ${sidA} is running`);
    process.kill(pid, 'SIGKILL');

    // both pages of A are told; B goes on
    await until(oa, () => document.getElementById('alert-text').dataset.i18n === 'session.interrupted', null, { what: 'officer A told', timeout: 20000 });
    await until(sa, () => document.getElementById('alert-text').dataset.i18n === 'call.interrupted', null, { what: 'signatory A told', timeout: 20000 });
    const ob0 = await inbound(ob, OFFICER_CALL);
    const sb0 = await inbound(sb, SIGNATORY_CALL);
    await wantMedia(ob, OFFICER_CALL, 'officer B after the kill', ob0);
    await wantMedia(sb, SIGNATORY_CALL, 'signatory B after the kill', sb0);

    // A: closed (aborted, with the reason) seals what was recorded, and it verifies
    await oa.check('input[name=outcome][value=aborted]');
    await oa.fill('#notes', 'The recorder stopped during the call.');
    await oa.click('#close-submit');
    await until(oa, () => !document.getElementById('result').hidden || document.getElementById('close-errors').children.length, null, { what: 'A closed', timeout: 120000 });
    assert.equal(await oa.evaluate(() => document.getElementById('result').dataset.indication), 'TOTAL-PASSED');
    const bundleA = path.join(state, 'evidence', 'V-11111111', `${a.caseId}.tar`);
    verify(bundleA, a.caseId, 'renewal', 'AA11');
    const recA = bundleRecord(bundleA, a.caseId);
    assert.ok(recA.interruptions.some((x) => x.cause === 'server'), JSON.stringify(recA.interruptions));
    const partA = recA.recording.parts.find((x) => x.tracks.some((t) => t.party === 'signatory'));
    assert.ok(partA && bundleMembers(bundleA).includes(`${a.caseId}/data/${partA.file}`), 'the recording up to the kill is in the bundle');
    assert.ok(recA.stills.some((x) => x.kind === 'doc-front'));

    // B: the whole proof, approved, verifies
    await still(ob, 'doc-front');
    await still(ob, 'face');
    await instruction(ob);
    assert.equal(await closeApproved(ob), 'TOTAL-PASSED');
    verify(path.join(state, 'evidence', 'V-22222222', `${b.caseId}.tar`), b.caseId, 'renewal', 'BB22');
  } finally {
    for (const c of ctx) await c.close();
  }
});
