// web.test.mjs — suite "web": the pages of web-client/ in Debian's Chromium
// against a tiny stand-in server (static-server.mjs), plus static checks of
// the catalogues and markup. Runs without testigod or the recorder.
//
//   node --test --test-reporter=tap tests/e2e/web.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServer } from './static-server.mjs';
import { launch, until, chromiumAvailable, CHROMIUM } from './browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = process.env.TESTIGO_WEB_ROOT || path.resolve(HERE, '../../web-client');
const read = (p) => fs.readFileSync(path.join(WEB, p), 'utf8');
const es = JSON.parse(read('i18n/es.json'));
const en = JSON.parse(read('i18n/en.json'));
const CATALOGUES = { es, en };
const fill = (s, params) => s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));

const checklist = await import(pathToFileURL(path.join(WEB, 'js/checklist.js')).href);

/* ------------------------------------------------------------ catalogues and markup (no browser) */

{ // catalogues
  test('i18n: es and en have the same keys', () => {
    const a = Object.keys(es).sort();
    const b = Object.keys(en).sort();
    assert.deepEqual(a.filter((k) => !(k in en)), [], 'keys only in es.json');
    assert.deepEqual(b.filter((k) => !(k in es)), [], 'keys only in en.json');
  });

  test('i18n: every message is a non-empty string with the same placeholders in both languages', () => {
    const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
    for (const k of Object.keys(es)) {
      for (const [code, cat] of Object.entries(CATALOGUES)) {
        assert.equal(typeof cat[k], 'string', `${code}:${k}`);
        assert.ok(cat[k].trim().length > 0, `${code}:${k} is empty`);
      }
      assert.equal(ph(es[k]), ph(en[k]), `placeholders of ${k}`);
    }
  });

  test('i18n: every key the pages and scripts use exists', () => {
    const used = new Set();
    for (const f of ['signatory.html', 'officer.html', 'index.html']) {
      const html = read(f);
      for (const m of html.matchAll(/data-i18n="([^"]+)"/g)) used.add(m[1]);
      for (const m of html.matchAll(/data-i18n-attr="([^"]+)"/g)) {
        for (const pair of m[1].split(';')) used.add(pair.split(':')[1].trim());
      }
      for (const m of html.matchAll(/data-title-key="([^"]+)"/g)) used.add(m[1]);
    }
    const prefixes = new Set(Object.keys(es).map((k) => k.split('.')[0]));
    for (const f of fs.readdirSync(path.join(WEB, 'js'))) {
      const js = read(`js/${f}`);
      for (const m of js.matchAll(/'([a-z][a-z0-9-]*(?:\.[A-Za-z0-9_-]+)+)'/g)) {
        if (prefixes.has(m[1].split('.')[0]) && !/\.(js|json|html|css)$/.test(m[1])) used.add(m[1]);
      }
      for (const m of js.matchAll(/`value:([a-z.]+)\$\{/g)) used.add(`${m[1]}hologram`);
    }
    // keys built at run time from protocol values
    const dyn = {
      action: ['renewal', 'suspension', 'reactivation', 'revocation'],
      state: ['open', 'created', 'active', 'interrupted', 'stopped', 'closed', 'sealed', 'approved', 'rejected', 'aborted'],
      outcome: checklist.OUTCOMES,
      'stills.kind': ['doc-front', 'doc-back', 'face', 'other'],
      'instr.kind': ['tilt', 'move', 'turn', 'cover', 'show-side', 'other'],
      target: ['doc-front', 'doc-back', 'face'],
      compare: checklist.COMPARE_FIELDS,
      featname: checklist.FEATURE_CATALOGUE.map((f) => f.key),
      verdict: ['TOTAL-PASSED', 'TOTAL-FAILED', 'INDETERMINATE'],
      party: ['signatory', 'officer'],
      kind: ['audio', 'video'],
      link: ['invalid-link', 'link-used', 'link-expired', 'session-closed', 'already-connected', 'recording-unavailable', 'connection-failed'],
      'media.error': ['denied', 'missing', 'busy', 'insecure', 'unsupported', 'other'],
    };
    for (const [p, vals] of Object.entries(dyn)) for (const v of vals) used.add(`${p}.${v}`);
    const missing = [...used].filter((k) => !(k in es) || !(k in en));
    assert.deepEqual(missing, [], 'keys used but not in both catalogues');
  });

  test('i18n: no hard-coded visible text in the HTML', () => {
    for (const f of ['signatory.html', 'officer.html', 'index.html']) {
      const html = read(f)
        .replace(/<!--[\s\S]*?-->/g, '')
        .replace(/<(script|style|title)\b[\s\S]*?<\/\1>/g, '');
      const text = html.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ').trim();
      assert.equal(text, '', `${f} has text outside the catalogues: ${text.slice(0, 80)}`);
      for (const m of html.matchAll(/\s(placeholder|aria-label|title|alt)="([^"]*)"/g)) {
        assert.fail(`${f}: literal ${m[1]}="${m[2]}" (use data-i18n-attr)`);
      }
    }
  });

  test('i18n: consent items fit the protocol (1 to 256 characters each)', () => {
    for (const cat of [es, en]) {
      for (const k of Object.keys(cat).filter((x) => x.startsWith('consent.info.'))) {
        const s = fill(cat[k], { years: 15 });
        assert.ok(s.length >= 1 && s.length <= 256, `${k}: ${s.length} characters`);
      }
    }
  });
}

{ // checklist rules (js/checklist.js)
  const goodDoc = { type: 'id-card', issuer: 'VEN', number: 'V12345678', expiry: '2030-01-31', comparison: [{ field: 'name', match: true }, { field: 'national_id', match: true }] };
  const feats = (n, ov, result = 'pass') => Array.from({ length: n }, (_, i) => ({ name: `f${i}`, optically_variable: i < ov, result }));
  const facts = { stills: [{ kind: 'doc-front' }, { kind: 'face' }], instructions: [{}], consent: true };

  test('checklist: approved needs the whole proof', () => {
    const ok = checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(3, 2), face: 'match' }, facts);
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.body.checklist.document.data_matches_case, true);
    assert.equal(ok.body.checklist.security_features.length, 3);
    assert.deepEqual(ok.body.checklist.face_comparison, { method: 'officer-visual', result: 'match' });
    assert.equal('notes' in ok.body, false);
    const keys = (r) => r.problems.map((p) => p.key);
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(2, 2), face: 'match' }, facts)).includes('ck.err.features-min'));
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(3, 1), face: 'match' }, facts)).includes('ck.err.features-ov'));
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(3, 2, 'fail'), face: 'match' }, facts)).includes('ck.err.approve-features'));
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(3, 2), face: 'match' }, { ...facts, stills: [] })).includes('ck.err.approve-still-front'));
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: goodDoc, features: feats(3, 2), face: 'match' }, { ...facts, instructions: [] })).includes('ck.err.approve-instructions'));
    const mism = { ...goodDoc, comparison: [{ field: 'name', match: false }] };
    assert.ok(keys(checklist.buildClose({ outcome: 'approved', notes: '', document: mism, features: feats(3, 2), face: 'match' }, facts)).includes('ck.err.approve-data'));
  });

  test('checklist: rejected and aborted need notes and send only complete sections', () => {
    const r = checklist.buildClose({ outcome: 'rejected', notes: '', document: { ...goodDoc, number: '' }, features: feats(3, 1), face: 'no-match' }, facts);
    assert.deepEqual(r.problems.map((p) => p.key), ['ck.err.notes']);
    const r2 = checklist.buildClose({ outcome: 'rejected', notes: 'photo differs', document: { ...goodDoc, number: '' }, features: feats(3, 1), face: 'no-match' }, facts);
    assert.deepEqual(r2.problems, []);
    assert.deepEqual(Object.keys(r2.body.checklist), ['face_comparison']);
    assert.equal(r2.body.notes, 'photo differs');
    const a = checklist.buildClose({ outcome: 'aborted', notes: 'left', document: { ...goodDoc, type: '' }, features: [], face: '' }, facts);
    assert.deepEqual(a.problems, []);
    assert.equal('checklist' in a.body, false);
  });

  test('checklist: random features: at least 2 optically variable of 3, no repeats', () => {
    for (let i = 0; i < 50; i++) {
      const f = checklist.randomFeatures();
      assert.equal(f.length, 3);
      assert.ok(f.filter((x) => x.ov).length >= 2);
      assert.equal(new Set(f.map((x) => x.key)).size, 3);
    }
  });
}

/* ------------------------------------------------------------ in Chromium */

{ // pages in Chromium
  let srv;
  before(async () => {
    assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: apt-get install chromium (see .ci/debian-packages.txt)`);
    srv = await startServer(WEB);
  });
  after(async () => { if (srv) await srv.close(); });

  const visibleStep = (page) => page.evaluate(() => [...document.querySelectorAll('.step')].filter((s) => !s.hidden).map((s) => s.id).join(','));
  const text = (page, sel) => page.evaluate((s) => document.querySelector(s)?.textContent.trim(), sel);

  async function consent(page) {
    await page.check('#consent-check');
    await page.click('#consent-accept');
    await until(page, () => !document.getElementById('step-devices').hidden, null, { what: 'device step' });
  }

  test('page: language follows the browser, switches, and is remembered', async () => {
    const b = await launch({ lang: 'en-US' });
    try {
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.documentElement.lang === 'en' && document.getElementById('consent-title').textContent, null, { what: 'English page' });
      assert.equal(await text(b.page, '#consent-title'), en['consent.title']);
      assert.equal(await b.page.title(), en['sig.title']);
      await b.page.selectOption('#lang', 'es');
      await until(b.page, () => document.documentElement.lang === 'es', null, { what: 'switch to Spanish' });
      assert.equal(await text(b.page, '#consent-title'), es['consent.title']);
      assert.equal(await text(b.page, '#consent-statement'), fill(es['consent.statement'], { years: 15 }));
      assert.equal(await text(b.page, '#consent-info li'), es['consent.info.purpose']);
      await b.page.reload();
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'reload' });
      assert.equal(await text(b.page, '#consent-title'), es['consent.title'], 'the choice is remembered');
      await b.page.goto(`${srv.url}/officer.html`);
      await until(b.page, () => !document.getElementById('view-login').hidden, null, { what: 'login view' });
      assert.equal(await text(b.page, '#login-title'), es['login.title'], 'remembered on the other page too');
      await b.page.selectOption('#lang', 'en');
      await until(b.page, () => document.documentElement.lang === 'en', null, { what: 'switch to English' });
      assert.equal(await text(b.page, '#login-title'), en['login.title']);
      assert.deepEqual(b.errors.filter((e) => !/401/.test(e)), []);
    } finally { await b.close(); }
  });

  test('page: Spanish by default for a Spanish browser; / leads to the console', async () => {
    const b = await launch({ lang: 'es-VE' });
    try {
      await b.page.goto(`${srv.url}/`);
      await b.page.waitForURL(/\/officer\.html$/);
      await until(b.page, () => !document.getElementById('view-login').hidden, null, { what: 'login view' });
      assert.equal(await b.page.evaluate(() => document.documentElement.lang), 'es');
      assert.equal(await text(b.page, '#login-title'), es['login.title']);
    } finally { await b.close(); }
  });

  test('page: signatory page at 360x740: consent first, and no way round it', async () => {
    const b = await launch({ lang: 'es-VE', viewport: { width: 360, height: 740 } });
    try {
      const before = srv.log.messages.length;
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      assert.equal(await visibleStep(b.page), 'step-consent');
      assert.ok(await b.page.isVisible('#consent-check'));
      assert.ok(await b.page.isDisabled('#consent-accept'), 'continue is disabled until the box is ticked');
      const layout = await b.page.evaluate(() => {
        const targets = [...document.querySelectorAll('button, select, input[type=checkbox]')]
          .filter((e) => e.offsetParent !== null)
          .map((e) => ({ id: e.id, h: e.getBoundingClientRect().height, w: e.getBoundingClientRect().width }));
        return { scrollWidth: document.documentElement.scrollWidth, targets, font: parseFloat(getComputedStyle(document.body).fontSize) };
      });
      assert.ok(layout.scrollWidth <= 360, `no horizontal scrolling (scrollWidth ${layout.scrollWidth})`);
      assert.ok(layout.font >= 16, 'body text at least 16 px');
      for (const tg of layout.targets) assert.ok(tg.h >= 28 && tg.w >= 28, `touch target ${tg.id} is ${tg.w}x${tg.h}`);
      assert.ok(layout.targets.find((x) => x.id === 'consent-accept').h >= 44);
      // submitting without the box: refused, with a message, nothing sent
      await b.page.evaluate(() => document.getElementById('consent-form').requestSubmit());
      await until(b.page, () => !document.getElementById('alert').hidden, null, { what: 'refusal message' });
      assert.equal(await text(b.page, '#alert-text'), es['consent.required']);
      assert.equal(await visibleStep(b.page), 'step-consent');
      assert.equal(srv.log.messages.slice(before).filter((m) => m.type === 'hello' || m.type === 'consent').length, 0);
      // with the box ticked: hello with the token, then the consent with version and hash
      await consent(b.page);
      const sent = srv.log.messages.slice(before);
      const hello = sent.find((m) => m.type === 'hello');
      assert.deepEqual({ role: hello.role, token: hello.token }, { role: 'signatory', token: 'goodtoken_abcdefghijklmnop' });
      const c = sent.find((m) => m.type === 'consent');
      assert.equal(c.text_version, 'consent-1.es');
      const expected = [es['consent.title'], ...Object.keys(es).filter((k) => k.startsWith('consent.info.')).map((k) => fill(es[k], { years: 15 })), fill(es['consent.statement'], { years: 15 })].join('\n').normalize('NFC');
      assert.equal(c.text_sha256, crypto.createHash('sha256').update(expected, 'utf8').digest('hex'), 'hash of the exact text shown');
      assert.equal(c.shown_information.length, 7);
      assert.deepEqual(Object.keys(c).sort(), ['shown_information', 'socket', 'text_sha256', 'text_version', 'type']);
    } finally { await b.close(); }
  });

  test('page: device check: camera frames, moving level meter, test tone, then the call and a rejoin', async () => {
    const b = await launch({ lang: 'en-US', viewport: { width: 360, height: 740 } });
    try {
      srv.state.consent = null;
      const before = srv.log.messages.length;
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      await consent(b.page);
      assert.ok(await b.page.isDisabled('#join'), 'join waits for the checks');
      await b.page.click('#devices-start');
      // camera: decoded frames in the preview
      const frames = await until(b.page, () => new Promise((resolve) => {
        const v = document.getElementById('preview');
        if (!v.videoWidth) { resolve(null); return; }
        let n = 0;
        const cb = () => { if (++n >= 5) resolve({ w: v.videoWidth, h: v.videoHeight, q: v.getVideoPlaybackQuality().totalVideoFrames }); else v.requestVideoFrameCallback(cb); };
        v.requestVideoFrameCallback(cb);
        setTimeout(() => resolve(null), 3000);
      }), null, { what: 'camera frames' });
      assert.ok(frames.w > 0 && frames.h > 0 && frames.q > 0, JSON.stringify(frames));
      await until(b.page, () => document.getElementById('camera-result').classList.contains('ok'), null, { what: 'camera ok' });
      // microphone: the meter moves (the fake microphone beeps)
      const levels = await b.page.evaluate(async () => {
        const out = [];
        for (let i = 0; i < 30; i++) {
          out.push(Number(document.getElementById('mic-meter').getAttribute('aria-valuenow')));
          await new Promise((r) => setTimeout(r, 100));
        }
        return out;
      });
      assert.ok(Math.max(...levels) > 20, `level rises: ${levels}`);
      assert.ok(new Set(levels).size >= 3, `level moves: ${levels}`);
      await until(b.page, () => document.getElementById('mic-result').classList.contains('ok'), null, { what: 'microphone ok' });
      assert.equal(await text(b.page, '#mic-result'), en['devices.microphone.ok']);
      // speaker: tone, then "I heard it"
      assert.ok(await b.page.isDisabled('#tone-heard'));
      await b.page.click('#tone-play');
      await until(b.page, () => !document.getElementById('tone-heard').disabled, null, { what: 'tone played' });
      await b.page.click('#tone-heard');
      assert.equal(await text(b.page, '#speaker-result'), en['devices.speaker.ok']);
      assert.ok(await b.page.isEnabled('#join'));
      await b.page.click('#join');
      await until(b.page, () => !document.getElementById('step-call').hidden, null, { what: 'call step' });
      const sentOffer = () => srv.log.messages.slice(before).filter((m) => m.type === 'offer');
      const waitNode = async (fn, what, timeout = 15000) => {
        const end = Date.now() + timeout;
        while (Date.now() < end) { const v = fn(); if (v) return v; await new Promise((r) => setTimeout(r, 100)); }
        throw new Error(`timed out waiting for ${what}`);
      };
      await waitNode(() => sentOffer().length === 1, 'first offer');
      const dc = srv.log.messages.slice(before).find((m) => m.type === 'device-check');
      assert.deepEqual([dc.camera, dc.microphone, dc.speaker], [true, true, true]);
      assert.match(sentOffer()[0].sdp, /^v=0/);
      assert.match(sentOffer()[0].sdp, /m=audio[\s\S]*m=video|m=video[\s\S]*m=audio/);
      // the network drops: the page says so and rejoins with the secret, as a new peer connection
      const sock = srv.log.sockets.length - 1;
      srv.log.sockets[sock].drop();
      await until(b.page, () => !document.getElementById('alert').hidden && document.getElementById('alert-text').textContent, null, { what: 'lost-connection message' });
      assert.match(await text(b.page, '#alert-text'), /^Connection lost\. Trying again in \d+ s \(attempt 1\)\.$/);
      await waitNode(() => sentOffer().length === 2, 'offer after rejoin');
      const rejoinHello = srv.log.messages.slice(before).filter((m) => m.type === 'hello').pop();
      assert.equal(rejoinHello.rejoin, srv.state.rejoinSecret);
      assert.equal(rejoinHello.token, undefined);
      const ufrag = (sdp) => sdp.match(/a=ice-ufrag:(\S+)/)[1];
      assert.notEqual(ufrag(sentOffer()[0].sdp), ufrag(sentOffer()[1].sdp), 'a new RTCPeerConnection');
      // the officer closes: the page ends and lets go of the camera
      srv.push('signatory', { type: 'closed', outcome: 'approved' });
      await until(b.page, () => !document.getElementById('step-end').hidden, null, { what: 'end step' });
      assert.equal(await text(b.page, '#end-text'), en['end.done']);
      assert.deepEqual(b.errors.filter((e) => !/favicon/.test(e)), []);
    } finally { await b.close(); }
  });

  test('page: a used link says so', async () => {
    const b = await launch({ lang: 'es-VE' });
    try {
      await b.page.goto(`${srv.url}/join/usedtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      await b.page.check('#consent-check');
      await b.page.click('#consent-accept');
      await until(b.page, () => !document.getElementById('step-end').hidden, null, { what: 'end step' });
      assert.equal(await text(b.page, '#end-text'), es['link.link-used']);
    } finally { await b.close(); }
  });

  test('page: denied camera permission gives the denied message (NotAllowedError)', async () => {
    const b = await launch({ lang: 'es-VE', fakeUi: false, denyPrompts: true });
    try {
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      srv.state.consent = null;
      await consent(b.page);
      await b.page.click('#devices-start');
      await until(b.page, () => !document.getElementById('alert').hidden, null, { what: 'error message' });
      assert.equal(await b.page.evaluate(() => document.body.dataset.mediaError), 'NotAllowedError');
      assert.equal(await text(b.page, '#alert-text'), es['media.error.denied']);
      assert.ok(await b.page.isVisible('#alert-retry'), 'a way to try again');
      assert.equal(await b.page.evaluate(() => document.getElementById('alert').getAttribute('role')), 'alert');
    } finally { await b.close(); }
  });

  test('page: no camera or microphone gives the missing-device message (NotFoundError)', async () => {
    const b = await launch({ lang: 'en-US', fakeDevices: false, fakeUi: true });
    try {
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      srv.state.consent = null;
      await consent(b.page);
      await b.page.click('#devices-start');
      await until(b.page, () => !document.getElementById('alert').hidden, null, { what: 'error message' });
      assert.equal(await b.page.evaluate(() => document.body.dataset.mediaError), 'NotFoundError');
      assert.equal(await text(b.page, '#alert-text'), en['media.error.missing']);
    } finally { await b.close(); }
  });

  test('page: officer console: login, CSRF, case rules, checklist rules, close', async () => {
    const b = await launch({ lang: 'en-US' });
    const p = b.page;
    try {
      await p.goto(`${srv.url}/officer.html`);
      await until(p, () => !document.getElementById('view-login').hidden, null, { what: 'login view' });
      await p.fill('#login-user', 'ana');
      await p.fill('#login-password', 'wrong password!');
      await p.click('#login-submit');
      await until(p, () => document.getElementById('login-error').textContent, null, { what: 'login error' });
      assert.equal(await text(p, '#login-error'), en['login.failed']);
      await p.fill('#login-password', 'correct horse battery');
      await p.click('#login-submit');
      await until(p, () => !document.getElementById('view-cases').hidden, null, { what: 'cases view' });

      // suspension days only for a suspension, and at most 15
      assert.equal(await p.isVisible('#case-days'), false);
      await p.selectOption('#case-action', 'renewal');
      assert.equal(await p.isVisible('#case-days'), false);
      await p.selectOption('#case-action', 'suspension');
      assert.equal(await p.isVisible('#case-days'), true);
      await p.fill('#case-holder', 'María Pérez');
      await p.fill('#case-nid', 'V-12345678');
      await p.fill('#case-email', 'maria@example.com');
      await p.fill('#case-serial', '1A2B3C');
      await p.fill('#case-reason', 'Lost token');
      await p.fill('#case-days', '16');
      const nreq = srv.log.requests.length;
      await p.click('#case-submit');
      await until(p, () => document.getElementById('case-days-error').textContent, null, { what: 'days error' });
      assert.equal(await text(p, '#case-days-error'), en['case.err.suspension_days']);
      assert.equal(await p.getAttribute('#case-days', 'aria-invalid'), 'true');
      assert.equal(srv.log.requests.slice(nreq).filter((r) => r.method === 'POST').length, 0, 'nothing sent');
      await p.selectOption('#case-action', 'renewal');
      assert.equal(await p.isVisible('#case-days'), false);
      await p.click('#case-submit');
      await until(p, () => !document.getElementById('view-case').hidden, null, { what: 'case view' });
      const create = srv.log.requests.find((r) => r.method === 'POST' && r.path === '/api/cases');
      assert.equal(create.csrf, 'csrf-1', 'state changes carry the CSRF token');
      assert.equal('suspension_days' in create.body, false);
      assert.deepEqual(create.body, { holder_name: 'María Pérez', national_id: 'V-12345678', email: 'maria@example.com', serial: '1A2B3C', action: 'renewal', reason: 'Lost token' });

      // a session: join link, then the checklist
      await p.click('#session-start');
      await until(p, () => !document.getElementById('view-session').hidden && document.getElementById('join-url').value, null, { what: 'session view' });
      assert.match(await p.inputValue('#join-url'), /\/join\/tok_/);
      await until(p, () => window.testigo.session && window.testigo.session.sig, null, { what: 'officer signaling' });
      assert.equal(await p.locator('#feature-rows tr').count(), 3);
      await until(p, () => document.querySelectorAll('#session-case dd').length >= 4, null, { what: 'case data in the session view' });
      assert.equal(await text(p, '#session-case dd'), 'María Pérez');

      // the console's connection drops: it reconnects as a new connection with a new offer
      const offers = () => srv.log.messages.filter((m) => m.type === 'offer' && srv.log.sockets[m.socket].role === 'officer');
      const waitNode = async (fn, what) => {
        const end = Date.now() + 15000;
        while (Date.now() < end) { if (fn()) return; await new Promise((r) => setTimeout(r, 100)); }
        throw new Error(`timed out waiting for ${what}`);
      };
      await waitNode(() => offers().length === 1, 'officer offer');
      srv.log.sockets[offers()[0].socket].drop();
      await waitNode(() => offers().length === 2, 'officer offer after reconnecting');
      const hellos = srv.log.messages.filter((m) => m.type === 'hello' && m.role === 'officer');
      assert.deepEqual(hellos.map((h) => h.session), ['ses-test1', 'ses-test1']);
      assert.notEqual(offers()[0].socket, offers()[1].socket);
      await p.check('input[name=outcome][value=approved]');
      await p.click('#close-submit');
      await until(p, () => document.getElementById('close-errors').children.length > 0, null, { what: 'problems' });
      const problems = await p.evaluate(() => [...document.querySelectorAll('#close-errors li')].map((li) => li.lastElementChild ? li.lastElementChild.textContent : li.textContent));
      for (const k of ['ck.err.features-min', 'ck.err.features-ov', 'ck.err.approve-still-front', 'ck.err.approve-still-face', 'ck.err.approve-instructions']) {
        assert.ok(problems.includes(en[k]), `${k} in ${JSON.stringify(problems)}`);
      }
      assert.equal(srv.log.requests.filter((r) => r.path.endsWith('/close')).length, 0, 'nothing sent');
      // three features, one optically variable: still refused
      const rows = p.locator('#feature-rows tr');
      for (let i = 0; i < 3; i++) {
        await rows.nth(i).locator('.feature-name').fill(`feature ${i}`);
        await rows.nth(i).locator('.feature-result').selectOption('pass');
      }
      await rows.nth(0).locator('.feature-ov').check();
      assert.match(await text(p, '#feature-count'), /^3 features, 1 optically variable/);
      assert.equal(await p.evaluate(() => document.getElementById('feature-count').classList.contains('bad')), true);
      await p.click('#close-submit');
      await until(p, () => [...document.querySelectorAll('#close-errors li')].length > 0, null, { what: 'problems' });
      let list = await p.evaluate(() => [...document.querySelectorAll('#close-errors li')].map((li) => li.lastElementChild ? li.lastElementChild.textContent : li.textContent));
      assert.ok(list.includes(en['ck.err.features-ov']) && !list.includes(en['ck.err.features-min']), JSON.stringify(list));
      await rows.nth(1).locator('.feature-ov').check();
      assert.equal(await p.evaluate(() => document.getElementById('feature-count').classList.contains('ok')), true);

      // the signatory joins and is recorded: stills and instructions become possible
      assert.ok(await p.isDisabled('button.still[data-kind="doc-front"]'));
      srv.push('officer', { type: 'peer-joined', peer: 'signatory', rejoin: false });
      srv.push('officer', { type: 'consent', text_version: 'consent-1.es', text_sha256: 'a'.repeat(64), accepted_at: new Date().toISOString() });
      srv.push('officer', { type: 'part-started', part: 0, file: 'recording-0.mkv' });
      await until(p, () => !document.getElementById('instr-give').disabled, null, { what: 'instructions enabled' });
      assert.ok(await p.isDisabled('button.still[data-kind="face"]'), 'no stills before the signatory video is recorded');
      srv.push('officer', { type: 'first-keyframe', peer: 'signatory', part: 0, delay_ms: 120 });
      await until(p, () => !document.querySelector('button.still[data-kind="doc-front"]').disabled, null, { what: 'stills enabled' });
      for (const k of ['doc-front', 'doc-back', 'face']) await p.click(`button.still[data-kind="${k}"]`);
      await until(p, () => document.querySelectorAll('#gallery li[data-saved="true"]').length === 3, null, { what: 'three stills saved' });
      await p.selectOption('#instr-kind', 'tilt');
      await p.selectOption('#instr-target', 'doc-front');
      await p.click('#instr-give');
      await until(p, () => document.querySelectorAll('#instr-list li').length === 1, null, { what: 'instruction recorded' });
      assert.deepEqual(srv.log.messages.filter((m) => m.type === 'still').map((m) => m.kind), ['doc-front', 'doc-back', 'face']);
      assert.deepEqual(srv.log.messages.filter((m) => m.type === 'instruction').map((m) => [m.kind, m.target]), [['tilt', 'doc-front']]);

      // document and face, then approve
      await p.selectOption('#doc-type', 'id-card');
      await p.fill('#doc-number', 'V12345678');
      await p.fill('#doc-expiry', '2031-05-31');
      await p.selectOption('#cmp-name', 'match');
      await p.selectOption('#cmp-national_id', 'match');
      assert.equal(await text(p, '#doc-matches'), en['ck.compare.all']);
      await p.check('input[name=face][value=match]');
      await p.click('#close-submit');
      await until(p, () => !document.getElementById('result').hidden, null, { what: 'result' });
      const close = srv.log.requests.find((r) => r.path.endsWith('/close'));
      assert.equal(close.csrf, 'csrf-1');
      assert.equal(close.body.outcome, 'approved');
      assert.deepEqual(close.body.checklist.document, { type: 'id-card', issuer: 'VEN', number: 'V12345678', expiry: '2031-05-31', data_matches_case: true, comparison: [{ field: 'name', match: true }, { field: 'national_id', match: true }] });
      assert.equal(close.body.checklist.security_features.filter((f) => f.optically_variable).length, 2);
      assert.deepEqual(close.body.checklist.face_comparison, { method: 'officer-visual', result: 'match' });
      assert.equal(await text(p, '#result-verdict'), en['verdict.TOTAL-PASSED']);
      assert.match(await p.getAttribute('#result-download', 'href'), /\/api\/sessions\/ses-test1\/bundle$/);
    } finally { await b.close(); }
  });

  test('page: accessibility basics: every control has a name, status regions are live', async () => {
    const b = await launch({ lang: 'es-VE' });
    try {
      const audit = () => {
        for (const e of document.querySelectorAll('[hidden]')) e.hidden = false; // every step and view
        const problems = [];
        const name = (e) => {
          if (e.getAttribute('aria-label')) return e.getAttribute('aria-label');
          if (e.getAttribute('aria-labelledby')) return e.getAttribute('aria-labelledby').split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' ');
          if (e.labels && e.labels.length) return [...e.labels].map((l) => l.textContent).join(' ');
          return '';
        };
        for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
          if (!name(e).trim()) problems.push(`${e.tagName.toLowerCase()}#${e.id || e.className} has no label`);
        }
        for (const e of document.querySelectorAll('button, a[href]')) {
          if (!(e.textContent.trim() || e.getAttribute('aria-label'))) problems.push(`${e.tagName.toLowerCase()}#${e.id} has no text`);
        }
        for (const e of document.querySelectorAll('video')) if (!e.getAttribute('aria-label')) problems.push(`video#${e.id} has no label`);
        for (const e of document.querySelectorAll('img')) if (!e.hasAttribute('alt')) problems.push('img without alt');
        const status = document.getElementById('status');
        if (status.getAttribute('role') !== 'status' || status.getAttribute('aria-live') !== 'polite') problems.push('#status is not a live region');
        if (document.getElementById('alert').getAttribute('role') !== 'alert') problems.push('#alert is not an alert');
        if (!document.documentElement.lang) problems.push('no lang on html');
        return problems;
      };
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'signatory page' });
      assert.deepEqual(await b.page.evaluate(audit), [], 'signatory page');
      await b.page.goto(`${srv.url}/officer.html`);
      await until(b.page, () => !document.getElementById('view-login').hidden, null, { what: 'console' });
      await b.page.evaluate(() => document.getElementById('feature-add').click());
      assert.deepEqual(await b.page.evaluate(audit), [], 'officer console');
    } finally { await b.close(); }
  });

  test('page: a reload after consent goes back to the device check, not the consent', async () => {
    const b = await launch({ lang: 'es-VE', viewport: { width: 360, height: 740 } });
    try {
      srv.state.consent = null;
      await b.page.goto(`${srv.url}/join/goodtoken_abcdefghijklmnop`);
      await until(b.page, () => document.getElementById('consent-title').textContent.length > 0, null, { what: 'page' });
      await consent(b.page);
      const n = srv.log.messages.length;
      await b.page.reload();
      await until(b.page, () => !document.getElementById('step-devices').hidden, null, { what: 'device step after reload' });
      assert.equal(await visibleStep(b.page), 'step-devices');
      assert.equal(srv.log.messages.slice(n).filter((m) => m.type === 'consent').length, 0, 'consent is not asked twice');
    } finally { await b.close(); }
  });
}
