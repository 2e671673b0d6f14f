// static-server.mjs — a tiny stand-in for testigod for the browser tests of
// suite "web": serves web-client/ with testigod's routes and security headers
// (so a CSP violation fails here too), mocks the officer API and speaks enough
// of the WebSocket signaling (docs/protocol.md) to drive the pages. Every
// request and message is recorded for the tests to inspect.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
};
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; frame-ancestors 'none'";

/* ------------------------------------------------------------ WebSocket (RFC 6455, text frames only) */

class Socket {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.onmessage = () => {};
    this.onclose = () => {};
    this.open = true;
    sock.on('data', (d) => this.data(d));
    sock.on('close', () => { if (this.open) { this.open = false; this.onclose(); } });
    sock.on('error', () => {});
  }

  data(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const op = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      const masked = (this.buf[1] & 0x80) !== 0;
      const need = off + (masked ? 4 : 0) + len;
      if (this.buf.length < need) return;
      const mask = masked ? this.buf.subarray(off, off + 4) : null;
      const payload = Buffer.from(this.buf.subarray(off + (masked ? 4 : 0), need));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      this.buf = this.buf.subarray(need);
      if (op === 0x1) this.onmessage(payload.toString('utf8'));
      else if (op === 0x8) { this.close(1000); return; }
      else if (op === 0x9) this.frame(0xa, payload);
    }
  }

  frame(op, payload) {
    if (!this.open) return;
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | op, len])
      : len < 65536 ? Buffer.from([0x80 | op, 126, len >> 8, len & 0xff])
        : (() => { const b = Buffer.alloc(10); b[0] = 0x80 | op; b[1] = 127; b.writeBigUInt64BE(BigInt(len), 2); return b; })();
    this.sock.write(Buffer.concat([head, payload]));
  }

  send(obj) { this.frame(0x1, Buffer.from(JSON.stringify(obj))); }

  close(code = 1000, reason = '') {
    if (!this.open) return;
    const r = Buffer.from(reason);
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(code, 0);
    r.copy(p, 2);
    this.frame(0x8, p);
    this.open = false;
    this.sock.end();
    this.onclose();
  }

  /** Drops the TCP connection without a close frame (a lost network). */
  drop() { this.sock.destroy(); }
}

/* ------------------------------------------------------------ the server */

export async function startServer(webRoot) {
  const log = { requests: [], messages: [], sockets: [] };
  const state = { cases: [], consent: null, rejoinSecret: 'rejoin-secret-0000000000000000' };

  const json = (res, status, obj) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(obj));
  };
  const body = (req) => new Promise((resolve) => {
    let s = '';
    req.on('data', (d) => { s += d; });
    req.on('end', () => { try { resolve(s ? JSON.parse(s) : null); } catch { resolve(undefined); } });
  });

  async function api(req, res, url) {
    const b = req.method === 'POST' ? await body(req) : null;
    log.requests.push({ method: req.method, path: url.pathname, body: b, csrf: req.headers['x-csrf-token'] || null });
    const loggedIn = /testigo_session=ok/.test(req.headers.cookie || '');
    if (url.pathname === '/api/login' && req.method === 'POST') {
      if (b && b.username === 'ana' && b.password === 'correct horse battery') {
        res.setHeader('Set-Cookie', 'testigo_session=ok; Path=/; HttpOnly; SameSite=Strict');
        return json(res, 200, { officer: { id: 'ana', name: 'Ana Officer', role: 'registration officer' }, csrf_token: 'csrf-1' });
      }
      return json(res, 401, { error: 'wrong user name or password' });
    }
    if (!loggedIn) return json(res, 401, { error: 'log in first (no valid session)' });
    if (url.pathname === '/api/me') return json(res, 200, { officer: 'ana', csrf_token: 'csrf-1' });
    if (req.method === 'POST' && req.headers['x-csrf-token'] !== 'csrf-1') return json(res, 403, { error: 'missing or wrong X-CSRF-Token header' });
    if (url.pathname === '/api/cases' && req.method === 'GET') return json(res, 200, { cases: state.cases });
    if (url.pathname === '/api/cases' && req.method === 'POST') {
      if (b.action !== 'suspension' && 'suspension_days' in b) return json(res, 400, { error: 'suspension_days: only for a suspension', field: 'suspension_days' });
      const c = { id: `RA-2026-00000${state.cases.length + 1}`, ...b, channel: 'teleconference', state: 'open', created_by: 'ana', created_at: new Date().toISOString() };
      state.cases.unshift(c);
      return json(res, 201, c);
    }
    if (url.pathname === '/api/sessions' && req.method === 'GET') return json(res, 200, { sessions: state.unfinished || [] });
    let m;
    if ((m = url.pathname.match(/^\/api\/cases\/([^/]+)$/))) {
      const c = state.cases.find((x) => x.id === m[1]);
      return c ? json(res, 200, { ...c, sessions: [] }) : json(res, 404, { error: 'no case' });
    }
    if ((m = url.pathname.match(/^\/api\/cases\/([^/]+)\/sessions$/))) {
      return json(res, 201, { id: 'ses-test1', case_id: m[1], state: 'created', join_path: '/join/tok_abcdefghijklmnopqrstuvwxyz0123', link_expires_at: new Date(Date.now() + 1800e3).toISOString() });
    }
    if ((m = url.pathname.match(/^\/api\/sessions\/([^/]+)$/))) {
      return json(res, 200, { id: m[1], case_id: 'RA-2026-000001', officer_id: 'ana', state: 'active', link_used: false, bundle: false, live: true });
    }
    if ((m = url.pathname.match(/^\/api\/sessions\/([^/]+)\/close$/))) {
      return json(res, 200, { session: m[1], outcome: b.outcome, sealed: true, indication: 'TOTAL-PASSED', download: `/api/sessions/${m[1]}/bundle`, verdict: { indication: 'TOTAL-PASSED', subIndication: null } });
    }
    return json(res, 404, { error: 'no such API' });
  }

  async function file(req, res, url) {
    let p = url.pathname;
    if (p === '/') p = '/index.html';
    else if (p.startsWith('/join/')) p = '/signatory.html';
    if (!/^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/.test(p) || p.includes('..')) { res.writeHead(404); res.end(); return; }
    try {
      const data = await fs.readFile(path.join(webRoot, p));
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(p)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
      res.end(data);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('404 not found\n');
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (url.pathname.startsWith('/api/')) api(req, res, url);
    else file(req, res, url);
  });

  function onHello(ws, m) {
    if (m.role === 'officer') {
      ws.role = 'officer';
      return ws.send({ type: 'hello', role: 'officer', session: m.session, case: 'RA-2026-000001', ice_servers: [], heartbeat_interval: 10, heartbeat_timeout: 30, max_message: 65536, consent_given: false, peer_present: false });
    }
    if (m.token && m.token.startsWith('used')) {
      ws.send({ type: 'error', code: 'link-used', message: 'this join link was already used' });
      return ws.close(4409, 'link used');
    }
    if (m.rejoin && m.rejoin !== state.rejoinSecret) {
      ws.send({ type: 'error', code: 'invalid-link', message: 'this rejoin secret is not valid' });
      return ws.close(4404, 'invalid rejoin secret');
    }
    ws.role = 'signatory';
    const reply = { type: 'hello', role: 'signatory', session: 'ses-test1', ice_servers: [], heartbeat_interval: 10, heartbeat_timeout: 30, max_message: 65536, consent_given: !!state.consent, peer_present: false };
    if (m.token) reply.rejoin = state.rejoinSecret;
    ws.send(reply);
  }

  server.on('upgrade', (req, sock) => {
    const key = req.headers['sec-websocket-key'];
    if (new URL(req.url, 'http://x').pathname !== '/ws' || !key) { sock.destroy(); return; }
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const ws = new Socket(sock);
    log.sockets.push(ws);
    ws.onmessage = (text) => {
      let m;
      try { m = JSON.parse(text); } catch { return ws.send({ type: 'error', code: 'bad-json', message: 'bad JSON' }); }
      log.messages.push({ socket: log.sockets.indexOf(ws), ...m });
      if (m.type === 'hello') onHello(ws, m);
      else if (m.type === 'consent') {
        state.consent = m;
        ws.send({ type: 'consent', text_version: m.text_version, text_sha256: m.text_sha256, accepted_at: new Date().toISOString() });
      } else if (m.type === 'instruction') {
        ws.send({ type: 'instruction-recorded', kind: m.kind, target: m.target, time: new Date().toISOString(), part: 0, offset_ms: 1234 });
      } else if (m.type === 'still') {
        ws.send({ type: 'still-saved', kind: m.kind, name: `${m.kind}-1.png`, part: 0, offset_ms: 2345 });
      }
    };
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    state,
    /** Sends @obj to every open socket of @role. */
    push(role, obj) { for (const s of log.sockets) if (s.open && s.role === role) s.send(obj); },
    async close() {
      for (const s of log.sockets) s.drop();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
