// signaling.js — the WebSocket signaling of testigod (docs/protocol.md,
// "WebSocket") and the browser side of a call: one RTCPeerConnection per
// connection. A rejoin is always a new WebSocket and a new RTCPeerConnection:
// the recorder makes each one a new recording part (webrtcbin has no ICE
// restart), so nothing here renegotiates an old connection.

/** Error codes after which trying again cannot help. */
export const FATAL_CODES = new Set([
  'invalid-link', 'link-used', 'link-expired', 'session-closed', 'unauthorized', 'not-found', 'forbidden',
]);
/** WebSocket close codes that mean the same. */
const FATAL_CLOSE = new Set([4401, 4403, 4404, 4410]);

export class SignalingError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
    this.fatal = FATAL_CODES.has(code);
  }
}

/** Delay before reconnection attempt @attempt (0-based): 1, 2, 4, 8, 16, 30, 30… s, ±20 %. */
export function backoffDelay(attempt, { base = 1000, max = 30000, jitter = 0.2, random = Math.random } = {}) {
  const d = Math.min(max, base * 2 ** Math.min(attempt, 16));
  return Math.round(d * (1 - jitter + 2 * jitter * random()));
}

export function wsUrl(path = '/ws') {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/**
 * One signaling connection. connect() resolves with the server's hello reply.
 * Events: "message" (detail: the message), "close" (detail: {code, reason, error}).
 * Pings are answered; silence for longer than the server's heartbeat_timeout
 * closes the socket so the caller can reconnect.
 */
export class Signaling extends EventTarget {
  constructor(hello, { url = wsUrl() } = {}) {
    super();
    this.hello = hello;
    this.url = url;
    this.ws = null;
    this.closed = false;
    this.lastError = null;
    this.watchdog = null;
    this.timeoutMs = 30000;
  }

  connect() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.addEventListener('open', () => {
        this.kick();
        ws.send(JSON.stringify({ type: 'hello', ...this.hello }));
      });
      ws.addEventListener('message', (ev) => {
        this.kick();
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        if (!msg || typeof msg.type !== 'string') return;
        if (msg.type === 'ping') { this.send({ type: 'pong' }); return; }
        if (msg.type === 'pong') return;
        if (!settled) {
          if (msg.type === 'hello') {
            settled = true;
            if (msg.heartbeat_timeout > 0) this.timeoutMs = msg.heartbeat_timeout * 1000;
            this.kick();
            resolve(msg);
            return;
          }
          if (msg.type === 'error') {
            settled = true;
            this.lastError = new SignalingError(msg.code, msg.message);
            reject(this.lastError);
            this.close();
            return;
          }
        }
        if (msg.type === 'error') this.lastError = new SignalingError(msg.code, msg.message);
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      });
      ws.addEventListener('close', (ev) => {
        clearTimeout(this.watchdog);
        const wasClosed = this.closed;
        this.closed = true;
        let error = this.lastError;
        if (!error && FATAL_CLOSE.has(ev.code)) error = new SignalingError('closed-' + ev.code, ev.reason);
        if (!settled) {
          settled = true;
          reject(error || new SignalingError('connection-failed', `WebSocket closed (${ev.code})`));
        }
        if (!wasClosed) this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason, error } }));
      });
    });
  }

  kick() {
    clearTimeout(this.watchdog);
    if (this.closed) return;
    this.watchdog = setTimeout(() => {
      // silent server: drop the socket, the caller reconnects
      try { this.ws.close(4408, 'heartbeat timeout'); } catch { /* already closing */ }
    }, this.timeoutMs + 5000);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  /** Leaves on purpose: the server logs a voluntary leave, not an interruption. */
  leave() {
    this.send({ type: 'leave' });
    this.close();
  }

  close() {
    clearTimeout(this.watchdog);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      try { this.ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
  }
}

/** Puts VP8 first where the browser lets us choose (webrtcbin answers the first payload type). */
function preferVp8(transceiver) {
  if (typeof transceiver.setCodecPreferences !== 'function' || !window.RTCRtpReceiver?.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities('video');
  if (!caps) return;
  const vp8 = caps.codecs.filter((c) => /\/vp8$/i.test(c.mimeType));
  const rest = caps.codecs.filter((c) => !/\/vp8$/i.test(c.mimeType));
  if (vp8.length) {
    try { transceiver.setCodecPreferences([...vp8, ...rest]); } catch { /* keep the default */ }
  }
}

/**
 * The browser side of one recording part: sends @stream, receives the other
 * party through testigod's recorder. Events: "remote" (detail: MediaStream),
 * "state" (detail: RTCPeerConnection connectionState).
 */
export class Call extends EventTarget {
  constructor(signaling, stream, iceServers = []) {
    super();
    this.sig = signaling;
    this.stream = stream;
    this.pc = new RTCPeerConnection({ iceServers });
    this.remote = new MediaStream();
    this.offerSent = false;
    this.pendingLocal = [];
    this.pendingRemote = [];
    this.onMessage = (ev) => this.handle(ev.detail);
    signaling.addEventListener('message', this.onMessage);
    this.pc.addEventListener('track', (ev) => {
      if (!this.remote.getTracks().includes(ev.track)) this.remote.addTrack(ev.track);
      this.dispatchEvent(new CustomEvent('remote', { detail: this.remote }));
    });
    this.pc.addEventListener('icecandidate', (ev) => {
      if (!ev.candidate || !ev.candidate.candidate) return; // end of candidates: nothing to send
      const m = {
        type: 'ice',
        candidate: ev.candidate.candidate,
        sdpMLineIndex: ev.candidate.sdpMLineIndex ?? 0,
      };
      if (ev.candidate.sdpMid) m.sdpMid = ev.candidate.sdpMid;
      if (this.offerSent) this.sig.send(m);
      else this.pendingLocal.push(m);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      this.dispatchEvent(new CustomEvent('state', { detail: this.pc.connectionState }));
    });
  }

  async start() {
    const kinds = ['audio', 'video'];
    for (const kind of kinds) {
      const track = this.stream?.getTracks().find((tr) => tr.kind === kind);
      const tx = track
        ? this.pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.stream] })
        : this.pc.addTransceiver(kind, { direction: 'recvonly' });
      if (kind === 'video') preferVp8(tx);
    }
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.sig.send({ type: 'offer', sdp: this.pc.localDescription.sdp });
    this.offerSent = true;
    for (const m of this.pendingLocal.splice(0)) this.sig.send(m);
  }

  async handle(msg) {
    try {
      if (msg.type === 'answer' && typeof msg.sdp === 'string') {
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        for (const c of this.pendingRemote.splice(0)) await this.addCandidate(c);
      } else if (msg.type === 'ice') {
        if (!this.pc.remoteDescription) this.pendingRemote.push(msg);
        else await this.addCandidate(msg);
      }
    } catch (e) {
      console.warn('signaling:', msg.type, e);
    }
  }

  async addCandidate(msg) {
    if (!msg.candidate) return;
    const init = { candidate: msg.candidate, sdpMLineIndex: msg.sdpMLineIndex ?? 0 };
    if (msg.sdpMid) init.sdpMid = msg.sdpMid;
    await this.pc.addIceCandidate(init);
  }

  /** Inbound RTP totals by kind: {audio: {...}, video: {...}} (framesDecoded, totalAudioEnergy, …). */
  async inboundStats() {
    const out = {};
    const stats = await this.pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && (s.kind === 'audio' || s.kind === 'video')) out[s.kind] = s;
    });
    return out;
  }

  close() {
    this.sig.removeEventListener('message', this.onMessage);
    try { this.pc.close(); } catch { /* already closed */ }
  }
}
