#!/usr/bin/env python3
"""A stand-in for testigo-recorder that speaks its control protocol (one JSON
object per line on stdin/stdout) without GStreamer, so that testigod's side
can be tested alone: it answers offers with a fixed SDP, writes a few bytes
as recording-N.mkv with a valid segment hash chain in events.jsonl, saves
stills, appends log-event events and stops on {"type":"stop"}.
With FAKE_RECORDER_PER_TRACK=1 in the environment it writes one file per
track instead, like the current recorder: recording-N-signatory-video.mkv and
recording-N-signatory-audio.mkv, their segments interleaved in one chain, the
files named by the track events and not by part-start.
It writes its pid to SESSION_DIR/recorder.pid so a test can kill it."""
import argparse, datetime, hashlib, json, os, sys

ap = argparse.ArgumentParser()
ap.add_argument("--session-dir", required=True)
ap.add_argument("--session-id", required=True)
ap.add_argument("--stun", action="append", default=[])
ap.add_argument("--turn", action="append", default=[])
ap.add_argument("--loopback", action="store_true")
ap.add_argument("--jitter-buffer-ms", type=int, choices=range(0, 2001), metavar="0..2000")
args = ap.parse_args()
d = args.session_dir
with open(os.path.join(d, "recorder.pid"), "w") as f:
    f.write(str(os.getpid()))
with open(os.path.join(d, "recorder.args"), "w") as f:
    json.dump(sys.argv[1:], f)

events = os.path.join(d, "events.jsonl")
seq = 0
if os.path.exists(events):
    with open(events) as f:
        seq = sum(1 for line in f if line.strip())
chain = b"\0" * 32
part = -1
rt = 0
per_track = os.environ.get("FAKE_RECORDER_PER_TRACK") == "1"
written = []


def now():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def log(ev):
    global seq
    line = {"seq": seq, "time": ev.pop("time", now())}
    line.update(ev)
    seq += 1
    with open(events, "a") as f:
        f.write(json.dumps(line, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def write_segment(name, data, step=500_000_000):
    global chain, rt
    path = os.path.join(d, name)
    offset = os.path.getsize(path) if name in written else 0
    with open(path, "ab" if name in written else "wb") as f:
        f.write(data)
    if name not in written:
        written.append(name)
    h = hashlib.sha256(data).digest()
    chain = hashlib.sha256(chain + h).digest()
    rt += step
    log({"type": "segment", "file": name, "offset": offset, "length": len(data), "sha256": h.hex(),
         "chain": chain.hex(), "running_time_ns": rt})


def start_part():
    global part
    part += 1
    name = "recording-%d.mkv" % part
    video = "recording-%d-signatory-video.mkv" % part if per_track else None
    audio = "recording-%d-signatory-audio.mkv" % part if per_track else None
    if per_track:
        log({"type": "part-start", "part": part, "running_time_ns": rt})
        say({"type": "part-started", "part": part, "running_time_ns": rt})
    else:
        log({"type": "part-start", "part": part, "file": name, "running_time_ns": rt})
        say({"type": "part-started", "part": part, "file": name})
    log(dict({"type": "track", "part": part, "party": "signatory", "kind": "video"},
             **({"file": video} if per_track else {}), codec="vp8", width=640, height=480, framerate=20))
    log(dict({"type": "track", "part": part, "party": "signatory", "kind": "audio"},
             **({"file": audio} if per_track else {}), codec="opus", sample_rate=48000, channels=2))
    say(dict({"type": "track", "part": part, "party": "signatory", "kind": "video"},
             **({"file": video} if per_track else {}), codec="vp8"))
    log({"type": "keyframe", "part": part, "party": "signatory", "running_time_ns": rt + 60_000_000,
         "requested": True})
    say({"type": "first-keyframe", "part": part, "party": "signatory", "offset_ms": 60})
    if per_track:
        # two segments per file, interleaved across the files in one chain
        for i in range(2):
            write_segment(video, b"\x1aE\xdf\xa3" * (1 - i) + b"fake video bytes %d of part %d\n" % (i, part))
            write_segment(audio, b"\x1aE\xdf\xa3" * (1 - i) + b"fake audio bytes %d of part %d\n" % (i, part))
    else:
        write_segment(name, b"\x1aE\xdf\xa3fake matroska bytes for part %d\n" % part, 1_000_000_000)


say({"type": "ready"})
for raw in sys.stdin:
    try:
        m = json.loads(raw)
    except ValueError:
        say({"type": "error", "message": "bad json"})
        continue
    t = m.get("type")
    if t == "offer":
        if m["peer"] == "signatory":
            start_part()
        say({"type": "answer", "peer": m["peer"], "sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=fake\r\n"})
        say({"type": "ice", "peer": m["peer"], "candidate": "candidate:1 1 UDP 1 127.0.0.1 9 typ host",
             "sdpMLineIndex": 0})
    elif t == "still":
        os.makedirs(os.path.join(d, "stills"), exist_ok=True)
        with open(os.path.join(d, "stills", m["name"]), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nfake")
        log({"type": "still", "name": m["name"], "kind": m["kind"], "part": max(part, 0), "offset_ms": 1234})
        say({"type": "still-saved", "name": m["name"], "kind": m["kind"], "part": max(part, 0), "offset_ms": 1234})
    elif t == "log-event":
        log(dict(m["event"]))
    elif t == "stop":
        say({"type": "stopped", "parts": written, "next_seq": seq})
        sys.exit(0)
