// evidence.mjs — what the e2e tests check on a sealed bundle with stock tools
// only: the auditor guide's stock-tool recipe (extracted from
// docs/auditor-guide.md exactly as tests/integration/test-stock-recipe.py
// does), and the media through GStreamer's command-line tools
// (gstreamer1.0-tools, gstreamer1.0-plugins-base-apps: gst-discoverer-1.0
// lists the streams, gst-launch-1.0 decodes each to EOS).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const GST_LAUNCH = process.env.GST_LAUNCH || 'gst-launch-1.0';
const GST_DISCOVERER = process.env.GST_DISCOVERER || 'gst-discoverer-1.0';
const MAX_OUTPUT = 256 * 1024 * 1024;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: MAX_OUTPUT, timeout: 180000, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return r;
}

/* ------------------------------------------------------------ stock recipe */

/** The ```sh recipe block of docs/auditor-guide.md (same rule as test-stock-recipe.py). */
export function recipeText(root) {
  const lines = [];
  let on = false;
  for (const line of fs.readFileSync(path.join(root, 'docs', 'auditor-guide.md'), 'utf8').split('\n')) {
    if (line === '```sh recipe') { on = true; continue; }
    if (on && line === '```') break;
    if (on) lines.push(line);
  }
  assert.ok(lines.length > 0, 'no ```sh recipe block in docs/auditor-guide.md');
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the auditor's stock-tool recipe on @bundle with @caRoot as both the RA
 * and the TSA root (testigod's development PKI), in an empty folder under
 * @tmp. Returns {status, stdout, stderr}.
 */
export function stockRecipe(root, tmp, bundle, caRoot) {
  const work = fs.mkdtempSync(path.join(tmp, 'recipe-'));
  const script = path.join(tmp, 'recipe.sh');
  fs.writeFileSync(script, recipeText(root));
  const r = run('bash', [script], {
    cwd: work,
    env: { ...process.env, BUNDLE: bundle, RA_ROOT: caRoot, TSA_ROOT: caRoot, LC_ALL: 'C' },
  });
  run('chmod', ['-R', 'u+w', work]);
  if (r.status === 0) fs.rmSync(work, { recursive: true, force: true });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Extracts @bundle into a new folder under @tmp (left writable); returns the bag directory. */
export function extractBundle(tmp, bundle, caseId) {
  const dir = fs.mkdtempSync(path.join(tmp, 'bundle-'));
  const r = run('tar', ['-xf', bundle, '-C', dir, '--no-same-owner']);
  assert.equal(r.status, 0, `tar -xf ${bundle}: ${r.stderr}`);
  run('chmod', ['-R', 'u+w', dir]);
  return path.join(dir, caseId);
}

/* ------------------------------------------------------------ media */

/** Streams of @file as gst-discoverer-1.0 lists them: [{type: 'video'|'audio', codec}]. */
export function discover(file) {
  const r = run(GST_DISCOVERER, [file]);
  assert.equal(r.status, 0, `gst-discoverer-1.0 ${file}: ${r.stdout}\n${r.stderr}`);
  const streams = [];
  for (const m of r.stdout.matchAll(/^\s+(video|audio) #\d+: (.+)$/gm)) streams.push({ type: m[1], codec: m[2].trim() });
  const d = r.stdout.match(/^\s+Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/m);
  return { streams, declaredMs: d ? Math.round(((+d[1] * 60 + +d[2]) * 60 + +d[3]) * 1000) : null };
}

const clockNs = (s) => {
  const m = s.match(/^(\d+):(\d+):(\d+)\.(\d{9})$/);
  return m ? ((+m[1] * 60 + +m[2]) * 60 + +m[3]) * 1e9 + +m[4] : null;
};

/**
 * Decodes every stream of the Matroska @file to EOS in one gst-launch-1.0
 * pipeline (matroskademux, then queue ! decodebin ! fakesink per stream) and
 * reads each stream's decoded timestamps from the sinks' debug log
 * (GST_DEBUG=basesink:5, written synchronously by the streaming threads, so
 * no buffer and no EOS goes unreported; gst-launch -v's last-message
 * notifications would be dropped at EOS). Returns {status, eos, error,
 * tracks: [{pad, type, buffers, eos, firstMs, endMs, spanMs}]}: endMs is the
 * end (pts + duration, or pts without one) of the stream's last frame.
 */
export function decodeTracks(file, streams) {
  const args = ['filesrc', `location=${file}`, '!', 'matroskademux', 'name=d'];
  const n = { video: 0, audio: 0 };
  const pads = [];
  for (const s of streams) {
    const pad = `${s.type}_${n[s.type]++}`;
    const sink = `sink${pad.replace('_', '')}`;
    pads.push({ pad, type: s.type, sink });
    args.push(`d.${pad}`, '!', 'queue', 'max-size-time=0', 'max-size-bytes=0', 'max-size-buffers=0', '!', 'decodebin', '!',
      'fakesink', `name=${sink}`, 'sync=false');
  }
  const r = run(GST_LAUNCH, args, { env: { ...process.env, GST_DEBUG: 'basesink:5', GST_DEBUG_NO_COLOR: '1' } });
  const out = `${r.stdout}\n${r.stderr}`;
  const tracks = pads.map(({ pad, type, sink }) => {
    let buffers = 0, first = null, end = null;
    const re = new RegExp(`gst_base_sink_chain_unlocked:<${sink}> got times start: ([0-9:.]+), end: ([0-9:.]+)`, 'g');
    for (const m of out.matchAll(re)) {
      const pts = clockNs(m[1]);
      if (pts === null || m[1].startsWith('99:99:99')) continue;
      const stop = m[2].startsWith('99:99:99') ? pts : clockNs(m[2]);
      buffers++;
      if (first === null || pts < first) first = pts;
      if (end === null || stop > end) end = stop;
    }
    const eos = new RegExp(`gst_base_sink_event:<${sink}> received event \\S+ eos event`).test(out);
    return { pad, type, buffers, eos, firstMs: first === null ? null : Math.round(first / 1e6),
      endMs: end === null ? null : Math.round(end / 1e6), spanMs: first === null ? 0 : Math.round((end - first) / 1e6) };
  });
  const error = (out.match(/^ERROR: .*$/m) || [null])[0];
  return { status: r.status, eos: r.status === 0 && !error, error, tracks };
}

/**
 * Checks that the recording @file holds @want streams ({video, audio}) and
 * that each decodes to EOS with frames and without an error. Returns
 * {streams, declaredMs, tracks}.
 */
export function checkRecording(file, want = { video: 2, audio: 2 }) {
  const { streams, declaredMs } = discover(file);
  const count = (t) => streams.filter((s) => s.type === t).length;
  assert.deepEqual({ video: count('video'), audio: count('audio') }, want, `${path.basename(file)} streams: ${JSON.stringify(streams)}`);
  const d = decodeTracks(file, streams);
  assert.equal(d.status, 0, `${path.basename(file)} decodes without error: ${d.error}`);
  for (const t of d.tracks) {
    assert.ok(t.eos, `${path.basename(file)} ${t.pad} decodes to EOS`);
    assert.ok(t.buffers > 0 && t.spanMs > 0, `${path.basename(file)} ${t.pad} decodes frames: ${JSON.stringify(t)}`);
  }
  return { streams, declaredMs, tracks: d.tracks };
}

/** Checks that @file is a PNG (signature, IHDR) that pngdec decodes into one frame; returns {width, height}. */
export function checkPng(file) {
  const b = fs.readFileSync(file);
  assert.ok(b.length > 33 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${file} has the PNG signature`);
  assert.equal(b.subarray(12, 16).toString('latin1'), 'IHDR', `${file} starts with IHDR`);
  const width = b.readUInt32BE(16), height = b.readUInt32BE(20);
  assert.ok(width > 0 && height > 0, `${file} is ${width}x${height}`);
  const r = run(GST_LAUNCH, ['-v', 'filesrc', `location=${file}`, '!', 'pngdec', '!', 'fakesink', 'name=png', 'silent=false']);
  assert.equal(r.status, 0, `pngdec ${file}: ${r.stderr}`);
  const caps = r.stdout.match(/GstFakeSink:png\.GstPad:sink: caps = video\/x-raw, .*width=\(int\)(\d+), height=\(int\)(\d+)/);
  assert.ok(caps && +caps[1] === width && +caps[2] === height, `pngdec gives a ${width}x${height} frame of ${file}`);
  assert.match(r.stdout, /\(png:sink\) \(\d+ bytes/, `pngdec decodes ${file}`);
  return { width, height };
}
