#!/usr/bin/env python3
"""test-recorder.py — testigo-recorder between two rtc-peer participants,
over its stdin/stdout protocol, as testigod drives it. TAP output.

  test-recorder.py call   two-way call, relay both ways, still, bad control
                          lines, signatory leaves and rejoins (part 2), stop;
                          every track decodes, events.jsonl validates, and the
                          sealed bundle verifies (TOTAL-PASSED)
  test-recorder.py kill   SIGKILL mid-call: the partial recording decodes and
                          its sealed bundle verifies (unchained tail allowed)
  test-recorder.py jitter  where received packets wait: by default nowhere
                          (no rtpjitterbuffer thread, packets go on as they
                          arrive); with --jitter-buffer-ms 200 in rtpbin's jitter
                          buffer; both relay and record all four tracks
  test-recorder.py keyframe
                          keyframe-request forwarding alone: a receiving peer's
                          PLI reaches the sending peer, with the sender's own
                          SSRC, within a bound; nothing reaches it otherwise

Environment (set by meson): TESTIGO, TESTIGO_RECORDER, RTC_PEER, EVENTS_CHECK,
TESTIGO_SOURCE_ROOT.
"""
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TESTIGO = os.environ["TESTIGO"]
RECORDER = os.environ["TESTIGO_RECORDER"]
PEER = os.environ["RTC_PEER"]
EVENTS_CHECK = os.environ["EVENTS_CHECK"]
ROOT = os.environ["TESTIGO_SOURCE_ROOT"]
RECORD = os.path.join(ROOT, "evidence-schema", "examples", "valid", "approved-teleconference.json")

n = 0
failed = 0


def ok(cond, what, detail=""):
    global n, failed
    n += 1
    if cond:
        print("ok %d - %s" % (n, what))
    else:
        failed += 1
        print("not ok %d - %s" % (n, what))
        for line in str(detail).splitlines():
            print("#   " + line)
    sys.stdout.flush()
    return cond


def diag(msg):
    print("# " + msg)
    sys.stdout.flush()


def check_recording(path):
    r = subprocess.run([PEER, "--check-recording", path], capture_output=True, text=True, timeout=120)
    try:
        info = json.loads(r.stdout)
    except ValueError:
        info = {}
    return r.returncode, info, r.stderr


def part_files(sdir, part):
    """The files of recording part @part: one per track, recording-N-<party>-<kind>.mkv."""
    pre = "recording-%d-" % part
    return sorted(f for f in os.listdir(sdir) if f.startswith(pre) and f.endswith(".mkv"))


def check_part(sdir, part):
    """check_recording over every track file of @part, summed: the worst exit
    status, the track counts added up, the frames of every video track, and
    the longest duration (the files share the part's timeline)."""
    files = part_files(sdir, part)
    total = {"files": files, "video_tracks": 0, "audio_tracks": 0, "video_frames": [], "duration_ms": 0}
    worst, errs = (1 if not files else 0), []
    for f in files:
        rc, info, err = check_recording(os.path.join(sdir, f))
        worst = max(worst, rc)
        errs.append(err)
        for k in ("video_tracks", "audio_tracks"):
            total[k] += info.get(k, 0)
        total["video_frames"] += info.get("video_frames", [])
        total["duration_ms"] = max(total["duration_ms"], info.get("duration_ms", 0))
    return worst, total, "".join(errs)


def all_files(sdir):
    return sorted(f for f in os.listdir(sdir) if f.startswith("recording-") and f.endswith(".mkv"))


def seal_and_verify(w, sdir, recordings, stills):
    keys = os.path.join(w, "keys")
    if not os.path.isdir(keys):
        subprocess.run([TESTIGO, "keys", "init", keys], check=True, capture_output=True, timeout=120)
    out = os.path.join(w, "bundle-%d.tar" % int(time.time() * 1000))
    args = [TESTIGO, "seal", "--keys", keys, "--record", RECORD, "--events", os.path.join(sdir, "events.jsonl"),
            "--out", out]
    for r in recordings:
        args += ["--recording", os.path.join(sdir, r)]
    for s in stills:
        args += ["--still", "%s=%s" % (s, os.path.join(sdir, "stills", s))]
    seal = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if seal.returncode != 0:
        return seal.returncode, "seal: " + seal.stdout + seal.stderr
    ver = subprocess.run([TESTIGO, "verify", "--ca-file", os.path.join(keys, "root.pem"), "-q", out],
                         capture_output=True, text=True, timeout=120)
    return ver.returncode, ver.stdout + ver.stderr


def is_type(t, **kw):
    return lambda m: m.get("type") == t and all(m.get(k) == v for k, v in kw.items())


def start(w, order=("officer", "signatory")):
    media = harness.make_media(os.path.join(w, "media.webm"))
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-test-1")
    ok(s.wait_for(is_type("ready"), 10) is not None, "recorder says ready")
    s.log_event({"type": "session-start", "version": 1, "session_id": "s-test-1", "case_id": "RA-2025-000123",
                 "officer_id": "ro.lopez"})
    for i, party in enumerate(order):
        if i:
            time.sleep(0.5)
        s.log_event({"type": "join", "party": party, "user_agent": "rtc-peer"})
        s.join(party)
    return s


def test_call(w):
    s = start(w)
    sdir = s.dir
    try:
        fk = s.wait_for(is_type("first-keyframe", peer="signatory", part=1), 15)
        ok(fk is not None, "first signatory keyframe recorded in part 1",
           "\n".join(json.dumps(m) for m in s.msgs if m.get("type") not in ("ice", "answer")))
        if fk:
            diag("join to first recorded keyframe: %d ms" % fk["delay_ms"])
            # The goal is 1 s (bench/recorder measures it); 3 s here, on a loaded CI machine.
            ok(fk["delay_ms"] <= 3000, "first keyframe within 3 s of the offer (%d ms)" % fk["delay_ms"])
        ok(s.wait_for(is_type("track", peer="signatory", kind="video"), 5) is not None, "track message for signatory video")

        # Bad control lines get an error; the recorder keeps running.
        m = s.mark()
        s.rec.send(b"{this is not json")
        e1 = s.wait_for(is_type("error"), 5, m)
        ok(e1 is not None and e1.get("code") == "invalid", "malformed line gets an error", e1)
        m = s.mark()
        s.rec.send(json.dumps({"type": "offer", "peer": "notary", "sdp": "x"}))
        ok(s.wait_for(is_type("error"), 5, m) is not None, "unknown peer gets an error")
        m = s.mark()
        s.rec.send(b'{"type":"stop","x":' + b"1" * (70 * 1024) + b"}")
        e2 = s.wait_for(is_type("error"), 5, m)
        ok(e2 is not None and e2.get("code") == "too-big", "a line over 64 KiB gets too-big", e2)
        m = s.mark()
        s.log_event({"type": "segment", "file": "recording-1-signatory-video.mkv"})
        ok(s.wait_for(is_type("error", request="log-event"), 5, m) is not None,
           "log-event refuses a segment the recorder did not write")
        ok(s.rec.alive(), "recorder still running after bad lines")

        # A still from the signatory's next keyframe.
        m = s.mark()
        s.rec.send({"type": "still", "kind": "doc-front", "name": "doc-front.png"})
        st = s.wait_for(lambda x: x.get("type") in ("still-saved", "error") and
                        x.get("request", "still") == "still", 10, m)
        ok(st is not None and st.get("type") == "still-saved" and st.get("part") == 1,
           "still saved with its part and offset", st)
        png = os.path.join(sdir, "stills", "doc-front.png")
        r = subprocess.run([PEER, "--check-png", png], capture_output=True, text=True, timeout=60)
        ok(r.returncode == 0, "the still decodes as a PNG (%s)" % r.stdout.strip(), r.stderr)
        m = s.mark()
        s.rec.send({"type": "still", "kind": "doc-front", "name": "doc-front.png"})
        ok(s.wait_for(is_type("error", request="still"), 5, m) is not None, "a still name is not reused")

        time.sleep(3)
        for party in harness.PARTIES:
            st = s.peer_stats(party)
            ok(st.get("video_frames", 0) > 0 and st.get("audio_buffers", 0) > 0,
               "%s receives the other's video and audio (%s frames, %s audio buffers)"
               % (party, st.get("video_frames"), st.get("audio_buffers")), st)

        # The signatory drops: a new PeerConnection is part 2 of the same session.
        p1 = s.wait_for(is_type("part-started", part=1), 0)
        part1_wall = time.monotonic() - p1["_rx"] if p1 else 0
        s.leave("signatory")
        s.log_event({"type": "leave", "party": "signatory", "reason": "test"})
        s.log_event({"type": "rejoin", "party": "signatory", "user_agent": "rtc-peer"})
        m = s.mark()
        s.join("signatory")
        ok(s.wait_for(is_type("part-started", part=2), 10, m) is not None, "rejoin starts part 2")
        ok(s.wait_for(is_type("first-keyframe", peer="signatory", part=2), 15, m) is not None,
           "signatory keyframe recorded in part 2")
        time.sleep(3)
        st = s.peer_stats("signatory")
        ok(st.get("video_frames", 0) > 0, "rejoined signatory receives the officer's video (%s frames)"
           % st.get("video_frames"), st)

        # The officer drops and comes back: the part goes on without the
        # officer's tracks, and the officer's return starts part 3.
        s.leave("officer")
        s.log_event({"type": "leave", "party": "officer"})
        time.sleep(1)
        m = s.mark()
        s.join("officer")
        ok(s.wait_for(is_type("part-started", part=3), 10, m) is not None, "officer rejoin starts part 3")
        ok(s.wait_for(is_type("first-keyframe", peer="officer", part=3), 15, m) is not None,
           "officer keyframe recorded in part 3")
        before = s.peer_stats("signatory").get("video_frames", 0)
        time.sleep(3)
        after = s.peer_stats("signatory").get("video_frames", 0)
        ok(after > before, "signatory receives the rejoined officer's video (%d -> %d frames)" % (before, after))

        stopped, rc = s.stop()
        ok(stopped is not None and rc == 0, "stop: stopped and exit 0", stopped)
        files = sorted(p["file"] for p in (stopped or {}).get("parts", []))
        want = sorted("recording-%d-%s-%s.mkv" % (i, p, k) for i in (1, 2, 3)
                      for p in ("signatory", "officer") for k in ("audio", "video"))
        ok(files == want, "stopped lists a file per track of parts 1, 2 and 3", files)
    finally:
        s.kill_all()

    for part in (1, 2, 3):
        rc, info, err = check_part(sdir, part)
        ok(rc == 0 and info.get("video_tracks") == 2 and info.get("audio_tracks") == 2,
           "part %d decodes to EOS on four tracks %s" % (part, json.dumps(info)), err)
        if part == 1:
            got = info.get("duration_ms", 0) / 1000.0
            ok(abs(got - part1_wall) <= 0.1 * part1_wall + 0.5,
               "part 1 lasts as long as the call did (%.2f s recorded, %.2f s wall)" % (got, part1_wall))
    r = subprocess.run([EVENTS_CHECK, os.path.join(sdir, "events.jsonl")], capture_output=True, text=True)
    ok(r.returncode == 0, "events.jsonl validates line by line (%s)" % r.stdout.strip(), r.stderr)
    with open(os.path.join(sdir, "events.jsonl")) as fp:
        types = [json.loads(line)["type"] for line in fp]
    for t in ("session-start", "part-start", "track", "keyframe", "still", "segment", "leave", "rejoin"):
        ok(t in types, "events.jsonl has a %s entry" % t)
    with open(os.path.join(sdir, "events.jsonl")) as fp:
        vtracks = [e for e in map(json.loads, fp) if e["type"] == "track" and e["kind"] == "video"]
    ok(len(vtracks) == 6 and all(5 <= v.get("framerate", 0) <= 30 for v in vtracks),
       "six video track entries with their measured frame rate", vtracks)
    with open(os.path.join(sdir, "events.jsonl")) as fp:
        tracks = [e for e in map(json.loads, fp) if e["type"] == "track"]
    ok(sorted(t.get("file", "") for t in tracks) == want,
       "each track event names its file", [t.get("file") for t in tracks])
    rc, out = seal_and_verify(w, sdir, all_files(sdir), ["doc-front.png"])
    ok(rc == 0 and "TOTAL-PASSED" in out, "sealed bundle verifies: TOTAL-PASSED", out)


def test_kill(w):
    # The signatory first this time: the officer's tracks join the part.
    s = start(w, order=("signatory", "officer"))
    sdir = s.dir
    try:
        ok(s.wait_for(is_type("first-keyframe", peer="signatory"), 15) is not None, "recording started")
        ok(s.wait_for(is_type("first-keyframe", peer="officer"), 15) is not None, "officer recorded too")
        time.sleep(5)
        s.rec.kill(signal.SIGKILL)
        s.rec.wait(10)
        diag("recorder killed")
    finally:
        s.kill_all()
        s.close_peers()
    parts = all_files(sdir)
    diag("files: %s" % parts)
    last = max(int(f.split("-")[1]) for f in parts) if parts else 0
    rc, info, err = check_part(sdir, last)
    ok(rc == 0 and info.get("video_tracks") == 2 and info.get("audio_tracks") == 2
       and min(info.get("video_frames", [0])) > 0,
       "the killed recording decodes on four tracks %s" % json.dumps(info), err)
    r = subprocess.run([EVENTS_CHECK, os.path.join(sdir, "events.jsonl")], capture_output=True, text=True)
    ok(r.returncode == 0, "events.jsonl is a valid prefix (%s)" % r.stdout.strip(), r.stderr)
    with open(os.path.join(sdir, "events.jsonl")) as fp:
        segs = [json.loads(line) for line in fp if '"segment"' in line]
    size = sum(os.path.getsize(os.path.join(sdir, f)) for f in part_files(sdir, last))
    covered = sum(x["length"] for x in segs if x["file"] in part_files(sdir, last))
    ok(len(segs) >= 1, "segments were chained before the kill (%d bytes of %d)" % (covered, size))
    rc, out = seal_and_verify(w, sdir, parts, [])
    ok(rc == 0 and "PASSED" in out, "the sealed partial recording verifies", out)
    diag(out.strip().replace("\n", " | ")[:400])

    # A recorder restarted for the same session continues seq and chain.
    s2 = harness.Session(RECORDER, PEER, s.media, w, session_id="s-test-1")
    ok(s2.wait_for(is_type("ready"), 10) is not None, "a restarted recorder continues the session")
    stopped, rc = s2.stop()
    r = subprocess.run([EVENTS_CHECK, os.path.join(sdir, "events.jsonl")], capture_output=True, text=True)
    ok(r.returncode == 0 and stopped is not None, "events.jsonl still valid after the restart", r.stderr)


def test_protocol(w):
    """Control-protocol validation and teardown in odd moments, no media needed."""
    media = harness.make_media(os.path.join(w, "media.webm"), seconds=2)
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-proto")
    try:
        ok(s.wait_for(is_type("ready"), 10) is not None, "ready")
        bad = [
            (b"[1,2]", "invalid"),
            (b'{"type":"offer","peer":"signatory"}', "invalid"),
            (b'{"type":"offer","peer":"signatory","sdp":"v=0","x":1}', "invalid"),
            (b'{"type":"offer","peer":"signatory","sdp":"not sdp"}', "invalid"),
            (b'{"type":"offer","peer":"signatory","sdp":5}', "invalid"),
            (b'{"type":"ice","peer":"officer","candidate":"c","sdpMLineIndex":0}', "state"),
            (b'{"type":"ice","peer":"officer","candidate":"c","sdpMLineIndex":-1}', "invalid"),
            (b'{"type":"ice","peer":"officer","candidate":"c","sdpMLineIndex":"0"}', "invalid"),
            (b'{"type":"peer-left","peer":"officer"}', "state"),
            (b'{"type":"still","kind":"face","name":"../x.png"}', "invalid"),
            (b'{"type":"still","kind":"passport","name":"x.png"}', "invalid"),
            (b'{"type":"still","kind":"face","name":"face.png"}', "state"),
            (b'{"type":"log-event","event":{"type":"leave"}}', "invalid"),
            (b'{"type":"log-event","event":{"seq":3,"type":"leave","party":"officer"}}', "invalid"),
            (b'{"type":"log-event","event":{"type":"keyframe","part":1,"running_time_ns":0}}', "invalid"),
            (b'{"type":"stop","type":"stop"}', "invalid"),
            (b'{"type":"stop"} trailing', "invalid"),
            ('{"type":"st\u0000op"}'.encode(), "invalid"),
            (b'\xff\xfe', "invalid"),
            (b"x" * (64 * 1024 + 1), "too-big"),
        ]
        for line, code in bad:
            m = s.mark()
            s.rec.send(line)
            e = s.wait_for(is_type("error"), 5, m)
            ok(e is not None and e.get("code") == code, "%r... -> error %s" % (line[:40], code), e)
        m = s.mark()
        s.log_event({"type": "leave", "party": "officer", "reason": "test"})
        time.sleep(0.5)
        ok(s.wait_for(is_type("error"), 0.1, m) is None, "a valid log-event is taken silently")

        # Closing during negotiation (recording.md fact 12): offer, then leave at once.
        offers = {}

        def grab(proc, msg):
            if msg.get("type") == "offer":
                offers[proc.name] = msg["sdp"]
        peer = harness.Proc("signatory", [PEER, "--media", media, "--loopback"], grab)
        deadline = time.monotonic() + 10
        while "signatory" not in offers and time.monotonic() < deadline:
            time.sleep(0.1)
        peer.kill()
        ok("signatory" in offers, "got an offer from a test peer")
        for i in range(3):
            m = s.mark()
            s.rec.send({"type": "offer", "peer": "signatory", "sdp": offers.get("signatory", "")})
            s.rec.send({"type": "peer-left", "peer": "signatory"})
            time.sleep(0.3 * i)
        m = s.mark()
        s.rec.send({"type": "offer", "peer": "officer", "sdp": offers.get("signatory", "")})
        ok(s.wait_for(is_type("answer", peer="officer"), 10, m) is not None, "still answers after fast leaves")
        stopped, rc = s.stop(timeout=20)
        ok(stopped is not None and rc == 0, "stop during negotiation: stopped, exit 0", stopped)
    finally:
        s.kill_all()
    r = subprocess.run([EVENTS_CHECK, os.path.join(s.dir, "events.jsonl")], capture_output=True, text=True)
    ok(r.returncode == 0, "events.jsonl valid (%s)" % r.stdout.strip(), r.stderr)

    # SIGTERM and end of stdin finalise like stop.
    for how in ("sigterm", "eof"):
        wd = harness.tempdir_in(w, how + "-")
        s = harness.Session(RECORDER, PEER, media, wd, session_id="s-" + how)
        ok(s.wait_for(is_type("ready"), 10) is not None, "%s: ready" % how)
        if how == "sigterm":
            s.rec.kill(signal.SIGTERM)
        else:
            s.rec.close_stdin()
        ok(s.wait_for(is_type("stopped"), 10) is not None and s.rec.wait(10) == 0, "%s: stopped, exit 0" % how)


KEYFRAME_BOUND_MS = 1000   # loopback: ~1-5 ms measured; generous for a loaded CI machine


def test_keyframe(w):
    """Keyframe-request forwarding in isolation (issue 3: "keyframe requests
    forwarded between them"). The recorder's own periodic requests are off
    (--keyframe-ms), so after the start-up requests the only way a request can
    reach a sending peer is a PLI of the other peer forwarded by the recorder:
    rtc-peer --report-keyframe-requests prints every request its webrtcbin's
    RTP session turns into an upstream GstForceKeyUnit, which it only does for a
    PLI/FIR naming one of its own SSRCs."""
    media = harness.make_media(os.path.join(w, "media.webm"))
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-keyframe", extra_args=["--keyframe-ms", "600000"])
    rep = ["--report-keyframe-requests"]
    is_req = lambda kind: (lambda m: m.get("type") == "keyframe-request" and m.get("kind") == kind)
    is_any_req = lambda m: m.get("type") == "keyframe-request"
    try:
        ok(s.wait_for(is_type("ready"), 10) is not None, "ready")
        s.join("officer", no_decode=True, extra_args=rep)
        time.sleep(0.5)
        s.join("signatory", no_decode=True, extra_args=rep)
        for party in harness.PARTIES:
            ok(s.wait_for(is_type("first-keyframe", peer=party), 15) is not None, "%s video recorded" % party)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
                s.peer_stats(p).get("video_frames", 0) > 0 for p in harness.PARTIES):
            time.sleep(0.2)
        ok(all(s.peer_stats(p).get("video_frames", 0) > 0 for p in harness.PARTIES),
           "both peers receive the other's video")
        time.sleep(2)  # the start-up requests (relay linked, recording gate) are over

        # Without a PLI nothing reaches a sender: the requests below are forwarded ones.
        m = s.peer_mark()
        time.sleep(3)
        quiet = [(p, msg) for p in harness.PARTIES for msg in s.peer_messages(p, is_any_req, m)]
        ok(not quiet, "no keyframe request reaches either sender in 3 s without a PLI", quiet)

        for receiver, sender in (("officer", "signatory"), ("officer", "signatory"), ("signatory", "officer")):
            m = s.peer_mark()
            s.peers[receiver].send({"type": "request-keyframe"})
            sent = s.wait_peer(receiver, is_type("keyframe-request-sent"), 5, m)
            ok(sent is not None and sent.get("ok"), "the %s's webrtcbin takes the keyframe request" % receiver, sent)
            got = s.wait_peer(sender, is_req("video"), KEYFRAME_BOUND_MS / 1000.0 + 0.5, m)
            delay = (got["_rx"] - sent["_rx"]) * 1000 if got and sent else None
            ok(got is not None and delay <= KEYFRAME_BOUND_MS,
               "the %s's PLI reaches the %s's video sender in %s ms (bound %d ms)"
               % (receiver, sender, "%.0f" % delay if delay is not None else "-", KEYFRAME_BOUND_MS), got)
            if got and sent:
                ok(got["ssrc"] == got["own_ssrc"] != -1 and sent.get("remote_ssrc") not in (-1, got["own_ssrc"]),
                   "it names the %s's own SSRC %s, not the relayed stream's %s (rewritten by the recorder)"
                   % (sender, got["own_ssrc"], sent.get("remote_ssrc")), (sent, got))
            time.sleep(1)
            back = s.peer_messages(receiver, is_any_req, m) + s.peer_messages(sender, is_req("audio"), m)
            ok(not back, "no request reaches the %s's own senders or the %s's audio" % (receiver, sender), back)
        stopped, rc = s.stop()
        ok(stopped is not None and rc == 0, "stopped, exit 0", stopped)
    finally:
        s.kill_all()


def test_recvonly(w):
    """An officer without a camera: video recvonly. The part records the three
    tracks that are sent, a file each."""
    media = harness.make_media(os.path.join(w, "media.webm"))
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-recvonly")
    try:
        ok(s.wait_for(is_type("ready"), 10) is not None, "ready")
        s.join("officer", no_video=True)
        time.sleep(0.5)
        s.join("signatory")
        ok(s.wait_for(is_type("first-keyframe", peer="signatory"), 15) is not None, "signatory video recorded")
        time.sleep(4)
        off, sig = s.peer_stats("officer"), s.peer_stats("signatory")
        ok(off.get("video_frames", 0) > 0 and off.get("audio_buffers", 0) > 0,
           "the camera-less officer receives the signatory's video and audio", off)
        ok(sig.get("video_frames", 0) == 0 and sig.get("audio_buffers", 0) > 0,
           "the signatory receives the officer's audio (and no video)", sig)
        stopped, rc = s.stop()
        ok(stopped is not None and rc == 0, "stopped, exit 0", stopped)
    finally:
        s.kill_all()
    rc, info, err = check_part(s.dir, 1)
    ok(rc == 0 and info.get("video_tracks") == 1 and info.get("audio_tracks") == 2,
       "part 1 holds 1 video + 2 audio tracks, all decoding %s" % json.dumps(info), err)
    rc, out = seal_and_verify(w, s.dir, all_files(s.dir), [])
    ok(rc == 0 and "PASSED" in out, "the sealed recording verifies", out)


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def receive_queue_switches(pid):
    """Context switches so far of webrtcbin's receive queue threads (the
    recording's own threads are recbatchN:src)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if not re.match(r"^queue\d+:src$", f.read().strip()):
                    continue
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def test_jitter(w):
    """The default relays and records packets as they arrive (rec-forward.c in
    place of rtpbin's jitter buffer); --jitter-buffer-ms N brings the jitter
    buffer back. Either way both directions are relayed and the four tracks
    recorded, decoding to EOS over about the length of the call. By default
    received packets skip webrtcbin's receive queue once the transport is up
    (rec-receive.c): its threads stay asleep; --receive-queue keeps them in
    the path (the check can fail). Relayed packets skip webrtcbin's idle RTP
    elements (rec-shortcut.c: aux receiver and sender, payload demuxer,
    DTLS's clocksync, runs of ghost pads, capsfilters) and its funnel sends no segment or TOS event at switches
    (rec-send.c): the recorder's log says so for each, on these webrtcbins;
    --receive-queue --send-encoders --rtp-elements (webrtcbin's own path) has
    none of it."""
    r = subprocess.run([RECORDER, "--session-dir", w, "--session-id", "x", "--jitter-buffer-ms", "2001"],
                       capture_output=True, text=True, timeout=30)
    ok(r.returncode == 2 and "--jitter-buffer-ms 0..2000" in r.stderr, "--jitter-buffer-ms 2001: usage error",
       r.stderr)
    media = harness.make_media(os.path.join(w, "media.webm"))
    own_path = ("--receive-queue", "--send-encoders", "--rtp-elements")
    for label, extra, want_jb in (("default", (), False), ("jitter buffer 200 ms", ("--jitter-buffer-ms", "200"), True),
                                  ("webrtcbin's own path", own_path, False)):
        wd = harness.tempdir_in(w, "jb-")
        s = harness.Session(RECORDER, PEER, media, wd, session_id="s-jb", extra_args=extra,
                            wrap=("env", "GST_DEBUG=testigo-recorder:4", "GST_DEBUG_NO_COLOR=1"))
        try:
            ok(s.wait_for(is_type("ready"), 10) is not None, "%s: ready" % label)
            s.join("officer")
            time.sleep(0.5)
            s.join("signatory")
            ok(s.wait_for(is_type("first-keyframe", peer="signatory"), 15) is not None,
               "%s: signatory video recorded" % label)
            t0 = time.monotonic()
            time.sleep(1)
            sw0 = receive_queue_switches(s.rec.p.pid)
            time.sleep(2)
            sw = receive_queue_switches(s.rec.p.pid) - sw0
            # ~85 packets a second come in from each peer
            if label == "webrtcbin's own path":
                ok(sw > 60, "%s: webrtcbin's receive queue threads woke for the packets (%d times in 2 s)"
                   % (label, sw))
            else:
                ok(sw < 30, "%s: packets skip webrtcbin's receive queue threads (%d wake-ups in 2 s)" % (label, sw))
            time.sleep(1)
            names = thread_names(s.rec.p.pid)
            jb = [x for x in names if x.startswith("rtpjitterbuffer")]
            ok(bool(jb) == want_jb, "%s: %s rtpjitterbuffer threads" % (label, len(jb) if jb else "no"),
               " ".join(sorted(names)))
            off, sig = s.peer_stats("officer"), s.peer_stats("signatory")
            ok(min(off.get("video_frames", 0), sig.get("video_frames", 0)) > 20
               and min(off.get("audio_buffers", 0), sig.get("audio_buffers", 0)) > 50,
               "%s: both directions relayed (officer %s, signatory %s)" % (label, off, sig))
            stopped, rc = s.stop()
            call_ms = (time.monotonic() - t0) * 1000
            ok(stopped is not None and rc == 0, "%s: stopped, exit 0" % label, stopped)
        finally:
            s.kill_all()
        rc, info, err = check_part(s.dir, 1)
        ok(rc == 0 and info.get("video_tracks") == 2 and info.get("audio_tracks") == 2
           and min(info.get("video_frames", [0])) > 20,
           "%s: the four tracks decode to EOS %s" % (label, json.dumps(info)), err)
        # timestamps: arrival times (default) or the jitter buffer's, the part
        # lasts from the first keyframe to the stop: more than the 4 s waited,
        # less what the jitter buffer still holds at the stop (its 200 ms are
        # not recorded: the recording branches get EOS below it), and a frame
        # or two in the queues
        held_ms = 300 if want_jb else 0
        ok(4000 - held_ms <= info.get("duration_ms", 0) <= call_ms + 2000,
           "%s: recorded %s ms for a call of %d ms after the first keyframe" % (label, info.get("duration_ms"), call_ms))
        with open(os.path.join(wd, "recorder.stderr"), errors="replace") as f:
            log = f.read()
        # two webrtcbins: an aux receiver, an aux sender, a DTLS clocksync and
        # a funnel each, a payload demuxer per received track
        skips = {what: log.count("%s: packets go straight to" % what)
                 for what in ("aux receiver", "aux sender", "DTLS clocksync", "payload demuxer", "ghost pads",
                              "capsfilter")}
        funnel = {what: log.count("%s replaced by the one sent already" % what)
                  for what in ("segment", "custom-downstream-sticky")}
        if label == "webrtcbin's own path":
            ok(sum(skips.values()) == 0 and sum(funnel.values()) == 0,
               "%s: packets through every RTP element, funnel events as webrtcbin sends them (%s %s)"
               % (label, skips, funnel))
        else:
            # and four runs of ghost pads each: srtpdec → rtpsession, rtpfunnel
            # → aux sender, rtpsession → srtpenc, DTLS's funnel → nicesink; a
            # capsfilter on the way in (webrtcbin's) and one per relayed track
            ok(skips == {"aux receiver": 2, "aux sender": 2, "DTLS clocksync": 2, "payload demuxer": 4,
                         "ghost pads": 8, "capsfilter": 6},
               "%s: packets skip the idle RTP elements of both webrtcbins (%s)" % (label, skips))
            # (webrtcbin gives a track no TOS event at all when its caps come
            # before its mid is known: then there is none to replace)
            ok(funnel["segment"] == 2 and 1 <= funnel["custom-downstream-sticky"] <= 2,
               "%s: both funnels send switches no segment or TOS event (%s)" % (label, funnel))


def test_stall(w):
    """A track that stops sending for longer than the recording queues hold
    (a phone's camera paused while the page is in the background: 14 s) holds
    nothing else back: the other tracks are recorded whole, and the paused
    track goes on when its media comes back."""
    PAUSE_MS = 14000
    media = harness.make_media(os.path.join(w, "media.webm"))
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-stall")
    try:
        ok(s.wait_for(is_type("ready"), 10) is not None, "ready")
        s.join("officer")
        time.sleep(0.5)
        s.join("signatory")
        ok(s.wait_for(is_type("first-keyframe", peer="signatory"), 15) is not None, "signatory video recorded")
        ok(s.wait_for(is_type("first-keyframe", peer="officer"), 15) is not None, "officer video recorded")
        time.sleep(2)
        s.pause("signatory", "video", PAUSE_MS)
        time.sleep(2)  # stats come every second: a 2 s margin
        f0 = s.peer_stats("officer").get("video_frames", 0)
        time.sleep(3)
        f1 = s.peer_stats("officer").get("video_frames", 0)
        ok(f1 - f0 <= 5, "the signatory's video paused (the officer got %d frames in 3 s)" % (f1 - f0))
        time.sleep(PAUSE_MS / 1000.0 - 1)
        sig = s.peer_stats("officer")
        ok(s.rec.alive() and sig.get("audio_buffers", 0) > 0, "the call went on through the pause", sig)
        stopped, rc = s.stop()
        ok(stopped is not None and rc == 0, "stopped, exit 0", stopped)
    finally:
        s.kill_all()
    rc, info, err = check_part(s.dir, 1)
    ok(rc == 0 and info.get("video_tracks") == 2 and info.get("audio_tracks") == 2,
       "part 1: four tracks, each decoding to EOS %s" % json.dumps(info), err)
    # Opus: a buffer per 20 ms. Each audio file holds its whole span, the
    # pause included (a stalled muxer would have dropped the queues' oldest).
    for party in ("signatory", "officer"):
        rc, a, err = check_recording(os.path.join(s.dir, "recording-1-%s-audio.mkv" % party))
        got = sum(a.get("audio_buffers", []))
        span_s = a.get("duration_ms", 0) / 1000.0
        ok(rc == 0 and span_s > PAUSE_MS / 1000.0 and got >= 0.9 * span_s * 50,
           "%s audio recorded through the pause: %d buffers over %.1f s (%.0f expected)"
           % (party, got, span_s, span_s * 50), err)
    rc, v, err = check_recording(os.path.join(s.dir, "recording-1-officer-video.mkv"))
    got = sum(v.get("video_frames", []))
    span_s = v.get("duration_ms", 0) / 1000.0
    ok(rc == 0 and got >= 0.8 * span_s * 20, "officer video recorded through the signatory's pause: %d frames over %.1f s"
       % (got, span_s), err)
    rc, v, err = check_recording(os.path.join(s.dir, "recording-1-signatory-video.mkv"))
    span_s = v.get("duration_ms", 0) / 1000.0
    got = sum(v.get("video_frames", []))
    ok(rc == 0 and span_s > PAUSE_MS / 1000.0 + 2 and 60 < got < (span_s - PAUSE_MS / 1000.0 + 2) * 20,
       "the signatory's video goes on after the pause, with the gap (%d frames over %.1f s)" % (got, span_s), err)
    rc, out = seal_and_verify(w, s.dir, all_files(s.dir), [])
    ok(rc == 0 and "PASSED" in out, "the sealed recording verifies", out)


# Runs the recorder with its session directory on a tiny tmpfs in a private
# mount namespace; when it exits, the directory is copied out for the checks.
DISKFULL_WRAP = 'mount -t tmpfs -o size=%dk tmpfs "$0" || exit 97; "$@"; rc=$?; cp -a "$0/." "$0.out/"; exit $rc'


def test_diskfull(w):
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        print("ok 1 # SKIP no private mount namespace here (needs root): %s" % probe.stderr.decode()[:100])
        global n
        n = 1
        return
    media = harness.make_media(os.path.join(w, "media.webm"))
    sdir = os.path.join(w, "session")
    os.makedirs(sdir + ".out")
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", DISKFULL_WRAP % 160, sdir]
    s = harness.Session(RECORDER, PEER, media, w, session_id="s-full", wrap=wrap)
    try:
        ok(s.wait_for(is_type("ready"), 10) is not None, "recorder says ready on a 160 KiB disk")
        s.log_event({"type": "session-start", "version": 1, "session_id": "s-full", "case_id": "RA-2025-000123",
                     "officer_id": "ro.lopez"})
        s.join("officer")
        time.sleep(0.5)
        s.join("signatory")
        full = s.wait_for(is_type("disk-full"), 40)
        ok(full is not None and full.get("bytes", 0) > 0, "disk-full reported with the bytes kept", full)
        before = s.peer_stats("officer").get("video_frames", 0)
        time.sleep(2.5)
        after = s.peer_stats("officer").get("video_frames", 0)
        ok(s.rec.alive() and after > before, "the call goes on after disk-full (%d -> %d frames)" % (before, after))
        stopped, rc = s.stop()
        ok(stopped is not None and rc == 0, "stop after disk-full: stopped, exit 0", stopped)
    finally:
        s.kill_all()
    out = sdir + ".out"
    rc, info, err = check_part(out, 1)
    ok(info.get("video_tracks") == 2 and min(info.get("video_frames", [0]) or [0]) > 0,
       "what was written before the disk filled decodes %s" % json.dumps(info), err)
    r = subprocess.run([EVENTS_CHECK, os.path.join(out, "events.jsonl")], capture_output=True, text=True)
    ok(r.returncode == 0, "events.jsonl is valid, no torn line (%s)" % r.stdout.strip(), r.stderr)
    rc, vout = seal_and_verify(w, out, all_files(out), [])
    ok(rc == 0 and "PASSED" in vout, "the sealed disk-full recording verifies", vout)
    diag(vout.strip().replace("\n", " | ")[:300])


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "call"
    w = harness.tempdir("testigo-rec-%s-" % which)
    try:
        {"call": test_call, "kill": test_kill, "diskfull": test_diskfull, "protocol": test_protocol,
         "recvonly": test_recvonly, "keyframe": test_keyframe,
         "jitter": test_jitter, "stall": test_stall}[which](w)
    except Exception as e:  # report, do not hide
        import traceback
        ok(False, "test ran to the end", traceback.format_exc() + str(e))
    print("1..%d" % n)
    if failed == 0:
        shutil.rmtree(w, ignore_errors=True)
    else:
        diag("kept %s" % w)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
