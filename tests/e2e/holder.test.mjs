// holder.test.mjs — suite "e2e": the holder portal and the CA part of the
// officer console in Debian's Chromium against the real testigod (no
// recorder needed): an officer records an in-person visit with a scanned
// document and the sealed bundle passes `testigo verify`; the CA
// administrator sees the gate's verdict in the console and applies the
// renewal, which then waits for the holder's CSR; a holder logs in
// (Spanish) and revokes a certificate with a reason, after which the portal
// and the OCSP responder (stock `openssl ocsp`) say revoked; another holder
// (English) completes the approved renewal by uploading a CSR made with
// openssl and downloads a certificate whose serial differs. Plus static
// checks of holder.html against the catalogues. Written against
// docs/protocol.md ("CA", "Holder portal").
//
// Environment: TESTIGOD, TESTIGO (built binaries), TESTIGO_WEB_ROOT,
// TESTIGO_E2E_KEEP=1 keeps the state folder.

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
const PASSWORD = 'correct horse battery staple';
const OFFICER = 'e2e.officer';
const ADMIN = 'e2e.admin';
const ANA = { nid: 'V-12345678', name: 'Ana Pérez', email: 'ana@example.org' };
const BETO = { nid: 'V-87654321', name: 'Beto Ruiz', email: 'beto@example.org' };
const TEST_TIMEOUT = 240000;
const es = JSON.parse(fs.readFileSync(path.join(WEB, 'i18n/es.json'), 'utf8'));
const en = JSON.parse(fs.readFileSync(path.join(WEB, 'i18n/en.json'), 'utf8'));

let tmp;
let state;
let server;
let base;
const certs = {};
let renewalCase;
let visitBundle;

/* ------------------------------------------------------------ helpers */

/** The page's errors, less the 401 of the "am I logged in?" probe a fresh page makes. */
const pageErrors = (b) => b.errors.filter((e) => !/status of 401 \(Unauthorized\)/.test(e));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function startTestigod() {
  return new Promise((resolve, reject) => {
    const args = ['--state-dir', state, '--listen', '127.0.0.1:0', '--web-root', WEB, '--recorder', 'none'];
    const log = fs.openSync(path.join(tmp, 'testigod.log'), 'a');
    const proc = spawn(TESTIGOD, args, { detached: true, stdio: ['ignore', 'pipe', log] });
    const timer = setTimeout(() => reject(new Error('testigod did not say it was listening within 30 s')), 30000);
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

/** An officer's API session from Node (cookie + CSRF). */
async function apiLogin(user) {
  const r = await fetch(`${base}/api/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: user, password: PASSWORD }),
  });
  assert.equal(r.status, 200);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const { csrf_token: csrf } = await r.json();
  return async (method, p, body) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { Cookie: cookie, 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
}

function makeCsr(holder, tag) {
  const key = path.join(tmp, `${tag}.key`);
  const csr = path.join(tmp, `${tag}.csr`);
  run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-utf8', '-keyout', key,
    '-subj', `/CN=${holder.name}/serialNumber=${holder.nid}`, '-out', csr]);
  return csr;
}

function ocspStatus(serial) {
  const ca = path.join(state, 'ca', 'ca.pem');
  const out = run('openssl', ['ocsp', '-url', `${base}/ocsp`, '-issuer', ca, '-serial', `0x${serial}`, '-CAfile', ca, '-no_nonce']);
  const line = out.split('\n').find((l) => l.startsWith('0x'));
  return line.split(':')[1].trim();
}

async function holderLogin(page, holder, cat) {
  await page.goto(`${base}/holder.html`);
  await until(page, () => !document.getElementById('view-login').hidden, null, { what: 'login form' });
  assert.equal(await page.textContent('#login-title'), cat['holder.login.title']);
  await page.fill('#login-nid', holder.nid);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await until(page, () => !document.getElementById('view-home').hidden, null, { what: 'home view' });
}

/* ------------------------------------------------------------ set-up */

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: apt-get install chromium`);
  for (const exe of [TESTIGOD, TESTIGO]) assert.ok(fs.existsSync(exe), `${exe} is not built`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'testigo-holder-'));
  state = path.join(tmp, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  const pw = path.join(tmp, 'password');
  fs.writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
  run(TESTIGO, ['officer', 'add', OFFICER, '--name', 'Oficial E2E', '--password-file', pw, '--state-dir', state]);
  run(TESTIGO, ['officer', 'add', ADMIN, '--role', 'admin', '--name', 'Admin E2E', '--password-file', pw, '--state-dir', state]);
  for (const h of [ANA, BETO]) {
    run(TESTIGO, ['holder', 'add', h.nid, '--name', h.name, '--email', h.email, '--password-file', pw, '--state-dir', state]);
  }
  server = await startTestigod();
  base = server.url;
  const admin = await apiLogin(ADMIN);
  for (const [tag, h] of [['ana', ANA], ['beto', BETO]]) {
    const csr = fs.readFileSync(makeCsr(h, tag), 'utf8');
    const r = await admin('POST', '/api/ca/certificates', { name: h.name, national_id: h.nid, email: h.email, csr });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    certs[tag] = r.body;
  }
  const officer = await apiLogin(OFFICER);
  const c = await officer('POST', '/api/cases', {
    holder_name: BETO.name, national_id: BETO.nid, email: BETO.email, serial: certs.beto.serial, action: 'renewal',
    reason: 'El certificado vence pronto.',
  });
  assert.equal(c.status, 201);
  renewalCase = c.body;
});

after(() => {
  stopTestigod();
  if (tmp && !process.env.TESTIGO_E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
  else if (tmp) console.log(`# state kept in ${tmp}`);
});

/* ------------------------------------------------------------ static checks */

test('holder.html: every key exists in both catalogues and no text is hard-coded', () => {
  const html = fs.readFileSync(path.join(WEB, 'holder.html'), 'utf8');
  const used = new Set();
  for (const m of html.matchAll(/data-i18n="([^"]+)"/g)) used.add(m[1]);
  for (const m of html.matchAll(/data-title-key="([^"]+)"/g)) used.add(m[1]);
  for (const s of ['valid', 'held', 'revoked', 'superseded', 'expired']) used.add(`holder.state.${s}`);
  assert.deepEqual([...used].filter((k) => !(k in es) || !(k in en)), []);
  const text = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<(script|style|title)\b[\s\S]*?<\/\1>/g, '')
    .replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ').trim();
  assert.equal(text, '');
});

/* ------------------------------------------------------------ officer console */

test('an officer records an in-person visit with a scanned document; the bundle verifies', { timeout: TEST_TIMEOUT }, async () => {
  const b = await launch({ fakeDevices: false, lang: 'es-VE' });
  try {
    const o = b.page;
    await o.goto(`${base}/officer.html#/case/${renewalCase.id}`);
    await until(o, () => !document.getElementById('view-login').hidden, null, { what: 'login' });
    await o.fill('#login-user', OFFICER);
    await o.fill('#login-password', PASSWORD);
    await o.click('#login-submit');
    await until(o, () => !document.getElementById('visit-form').hidden, null, { what: 'visit form' });
    const scan = path.join(tmp, 'cedula.png');
    fs.writeFileSync(scan, Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'));
    // an incomplete form is stopped in the page
    await o.check('input[name="visit-outcome"][value="approved"]');
    await o.click('#visit-submit');
    await until(o, () => document.getElementById('visit-attestation-error').textContent.length > 0, null, { what: 'attestation error' });
    await o.fill('#visit-attestation', 'El titular se presentó con su cédula; la foto y los datos coinciden.');
    await o.check('#visit-consent');
    await o.selectOption('#visit-doc-type', 'id-card');
    await o.fill('#visit-doc-number', 'V87654321');
    await o.fill('#visit-doc-expiry', '2031-05-31');
    await o.check('#visit-match-name');
    await o.check('#visit-match-nid');
    await o.check('input[name="visit-face"][value="match"]');
    await o.setInputFiles('#visit-files', scan);
    await o.click('#visit-submit');
    const ind = await until(o, () => {
      const r = document.getElementById('visit-result');
      return !r.hidden && r.dataset.indication;
    }, null, { what: 'sealed visit', timeout: 60000 });
    assert.equal(ind, 'TOTAL-PASSED');
    assert.equal(await o.textContent('#visit-verdict'), es['verdict.TOTAL-PASSED']);
    visitBundle = await o.evaluate(() => [...document.querySelectorAll('#visit-facts dd')].map((d) => d.textContent).find((t) => t.endsWith('.tar')));
    assert.ok(visitBundle && fs.existsSync(visitBundle), `bundle ${visitBundle}`);
    const v = spawnSync(TESTIGO, ['verify', '--ca-file', path.join(state, 'keys', 'root.pem'), '--for-case', renewalCase.id,
      '--action', 'renewal', '--serial', certs.beto.serial, visitBundle], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const listing = run('tar', ['tf', visitBundle]);
    assert.match(listing, /data\/documents\/scan-1\.png/);
    assert.match(listing, /data\/documents\/attestation\.txt/);
    // the officer sees the gate's verdict but cannot apply
    await until(o, () => document.getElementById('apply-card').dataset.allowed !== undefined && !document.getElementById('apply-card').hidden,
      null, { what: 'apply card' });
    assert.equal(await o.isVisible('#apply-submit'), false);
    assert.deepEqual(pageErrors(b), []);
  } finally {
    await b.close();
  }
});

test('the CA administrator sees the gate verdict of the approved case and applies it', { timeout: TEST_TIMEOUT }, async () => {
  const b = await launch({ fakeDevices: false, lang: 'en-GB' });
  try {
    const o = b.page;
    await o.goto(`${base}/officer.html#/case/${renewalCase.id}`);
    await until(o, () => !document.getElementById('view-login').hidden, null, { what: 'login' });
    await o.fill('#login-user', ADMIN);
    await o.fill('#login-password', PASSWORD);
    await o.click('#login-submit');
    const allowed = await until(o, () => {
      const c = document.getElementById('apply-card');
      return !c.hidden && c.dataset.allowed;
    }, null, { what: 'gate verdict' });
    assert.equal(allowed, 'true');
    assert.equal(await o.textContent('#apply-verdict'), en['apply.allowed']);
    assert.equal(await o.isVisible('#apply-submit'), true);
    // applying the renewal leaves it waiting for the holder's CSR
    await o.click('#apply-submit');
    await until(o, (text) => document.getElementById('apply-verdict').textContent === text, en['apply.done'],
      { what: 'applied', timeout: 60000 });
    assert.equal(await o.isVisible('#apply-submit'), false);
    assert.deepEqual(pageErrors(b), []);
  } finally {
    await b.close();
  }
});

/* ------------------------------------------------------------ holder portal */

test('a holder (es) revokes a certificate with a reason; the portal and OCSP say revoked', { timeout: TEST_TIMEOUT }, async () => {
  assert.equal(ocspStatus(certs.ana.serial), 'good');
  const b = await launch({ fakeDevices: false, lang: 'es-VE', viewport: { width: 390, height: 844 } });
  try {
    const p = b.page;
    await holderLogin(p, ANA, es);
    const row = `tr[data-serial="${certs.ana.serial}"]`;
    await p.waitForSelector(row);
    assert.equal((await p.textContent(`${row} td:nth-child(2)`)).trim(), es['holder.state.valid']);
    assert.equal(await p.$(`tr[data-serial="${certs.beto.serial}"]`), null);
    await p.click(`${row} a`);
    await until(p, () => !document.getElementById('view-revoke').hidden, null, { what: 'revoke form' });
    await p.click('#revoke-submit');
    await until(p, () => document.getElementById('revoke-reason-error').textContent.length > 0, null, { what: 'reason error' });
    await p.selectOption('#revoke-reason', 'cessation-of-operation');
    await p.fill('#revoke-details', 'Cerré mi empresa.');
    await p.check('#revoke-confirm');
    await p.click('#revoke-submit');
    await until(p, (sel) => {
      const r = document.querySelector(sel);
      return !document.getElementById('view-home').hidden && r && r.dataset.state === 'revoked';
    }, row, { what: 'revoked row', timeout: 60000 });
    assert.equal((await p.textContent(`${row} td:nth-child(2)`)).trim(), es['holder.state.revoked']);
    assert.equal(await p.$(`${row} a`), null); // nothing more to do with it
    assert.equal(ocspStatus(certs.ana.serial), 'revoked');
    assert.deepEqual(pageErrors(b), []);
  } finally {
    await b.close();
  }
});

test('a holder (en) completes the approved renewal from a CSR and downloads the new certificate', { timeout: TEST_TIMEOUT }, async () => {
  assert.ok(visitBundle, 'needs the in-person visit of the first test');
  const b = await launch({ fakeDevices: false, lang: 'en-GB', viewport: { width: 390, height: 844 } });
  try {
    const p = b.page;
    await holderLogin(p, BETO, en);
    await p.waitForSelector(`li[data-case="${renewalCase.id}"] a`);
    await p.click(`li[data-case="${renewalCase.id}"] a`);
    await until(p, () => !document.getElementById('renew-form').hidden, null, { what: 'renewal form' });
    await p.setInputFiles('#renew-file', makeCsr(BETO, 'beto-new'));
    await until(p, () => document.getElementById('renew-csr').value.includes('BEGIN CERTIFICATE REQUEST'), null, { what: 'CSR read' });
    await p.click('#renew-submit');
    await until(p, () => !document.getElementById('renew-result').hidden, null, { what: 'new certificate', timeout: 60000 });
    const [download] = await Promise.all([p.waitForEvent('download'), p.click('#renew-download')]);
    const file = path.join(tmp, 'new.pem');
    await download.saveAs(file);
    const serial = run('openssl', ['x509', '-in', file, '-noout', '-serial']).trim().split('=')[1].toUpperCase();
    assert.notEqual(serial, certs.beto.serial.toUpperCase());
    assert.equal(serial.replace(/^0+/, ''), (await p.textContent('#renew-new-serial')).trim().replace(/^0+/, ''));
    run('openssl', ['verify', '-CAfile', path.join(state, 'ca', 'ca.pem'), file]);
    assert.equal(await p.isVisible('#renew-form'), false);
    assert.equal(ocspStatus(certs.beto.serial), 'good'); // superseded is not a revocation here
    assert.deepEqual(pageErrors(b), []);
  } finally {
    await b.close();
  }
});
