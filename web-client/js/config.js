// config.js — client-side defaults. The server's values win where it sends them.

/** Years the evidence is kept (testigod's [record] retention-years default). */
export const RETENTION_YEARS = 15;
/** Reconnection: first delay, cap (ms), and attempts before asking the person to reload. */
export const RECONNECT = { base: 1000, max: 30000, attempts: 12 };
/** A peer connection "disconnected" this long (ms) counts as lost. */
export const DISCONNECTED_GRACE_MS = 5000;
/** Microphone level (0..1) that counts as "we hear you". */
export const MIC_OK_LEVEL = 0.25;
/** After this long (ms) without hearing the microphone, the call may start anyway. */
export const MIC_GRACE_MS = 20000;
