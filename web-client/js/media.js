// media.js — camera and microphone access, with errors turned into message
// keys a signatory can act on, a microphone level meter (AnalyserNode) and a
// speaker test tone (OscillatorNode).

export const CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: 'user' },
};

/** The catalogue key explaining a getUserMedia failure. */
export function mediaErrorKey(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'media.error.denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'media.error.missing';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'media.error.busy';
    case 'TypeError':
      return 'media.error.insecure';
    default:
      return 'media.error.other';
  }
}

export class MediaAccessError extends Error {
  constructor(cause, key) {
    super(cause?.message || key);
    this.name = 'MediaAccessError';
    this.cause = cause;
    this.key = key;
    this.errorName = cause?.name || 'Error';
  }
}

/** Camera and microphone, or a MediaAccessError whose key names the problem. */
export async function openCameraAndMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new MediaAccessError(null, 'media.error.unsupported');
  }
  try {
    return await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
  } catch (e) {
    throw new MediaAccessError(e, mediaErrorKey(e));
  }
}

let sharedContext = null;
/** One AudioContext per page, resumed (needs a user gesture on phones). */
export async function audioContext() {
  if (!sharedContext) sharedContext = new (window.AudioContext || window.webkitAudioContext)();
  if (sharedContext.state === 'suspended') {
    try { await sharedContext.resume(); } catch { /* resumed by the next gesture */ }
  }
  return sharedContext;
}

/**
 * Calls @onLevel(level 0..1, peak 0..1) about 20 times a second from the
 * stream's microphone. Returns a stop function.
 */
export async function startLevelMeter(stream, onLevel) {
  const ctx = await audioContext();
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  analyser.smoothingTimeConstant = 0.3;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let peak = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    const rms = Math.sqrt(sum / buf.length);
    // map about -60..0 dBFS onto 0..1
    const db = 20 * Math.log10(rms + 1e-9);
    const level = Math.max(0, Math.min(1, (db + 60) / 60));
    peak = Math.max(peak * 0.95, level);
    onLevel(level, peak);
  }, 50);
  return () => {
    clearInterval(timer);
    try { source.disconnect(); analyser.disconnect(); } catch { /* gone */ }
  };
}

/** Plays a soft two-tone chime for @seconds through the default speaker. */
export async function playTestTone(seconds = 1.5) {
  const ctx = await audioContext();
  const gain = ctx.createGain();
  gain.connect(ctx.destination);
  const t0 = ctx.currentTime;
  gain.gain.setValueAtTime(0, t0);
  gain.gain.linearRampToValueAtTime(0.25, t0 + 0.05);
  gain.gain.setValueAtTime(0.25, t0 + seconds - 0.1);
  gain.gain.linearRampToValueAtTime(0, t0 + seconds);
  const osc = ctx.createOscillator();
  osc.type = 'sine';
  osc.frequency.setValueAtTime(660, t0);
  osc.frequency.setValueAtTime(880, t0 + seconds / 2);
  osc.connect(gain);
  osc.start(t0);
  osc.stop(t0 + seconds);
  await new Promise((resolve) => { osc.onended = resolve; });
  gain.disconnect();
}

/**
 * Resolves once @video shows decoded frames (videoWidth > 0 and a frame
 * callback or a growing decoded-frame count), or rejects after @timeoutMs.
 */
export function waitForFrames(video, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('no video frames')), timeoutMs);
    const done = () => { clearTimeout(deadline); resolve({ width: video.videoWidth, height: video.videoHeight }); };
    if (typeof video.requestVideoFrameCallback === 'function') {
      const cb = () => (video.videoWidth > 0 ? done() : video.requestVideoFrameCallback(cb));
      video.requestVideoFrameCallback(cb);
    } else {
      const poll = setInterval(() => {
        const q = video.getVideoPlaybackQuality?.();
        if (video.videoWidth > 0 && (!q || q.totalVideoFrames > 0)) { clearInterval(poll); done(); }
      }, 100);
    }
  });
}

/** Attaches @stream to @video and starts it; resolves false when autoplay was refused. */
export async function attach(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  try {
    await video.play();
    return true;
  } catch {
    return false;
  }
}

export function stopStream(stream) {
  if (stream) for (const tr of stream.getTracks()) tr.stop();
}
