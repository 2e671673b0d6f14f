"""harness.py — drives testigo-recorder and two rtc-peer participants over the
recorder's stdin/stdout line protocol, as testigod would (tests and
bench/recorder share it)."""
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time

PARTIES = ("signatory", "officer")


def make_media(path, seconds=10, width=640, height=480, fps=20, pattern="ball", speed=0):
    """Pre-encodes VP8 + Opus once (no encoder in the call's loop)."""
    frames = seconds * fps
    subprocess.run(
        ["gst-launch-1.0", "-q",
         "videotestsrc", "num-buffers=%d" % frames, "pattern=%s" % pattern, "horizontal-speed=%d" % speed, "!",
         "video/x-raw,width=%d,height=%d,framerate=%d/1" % (width, height, fps), "!",
         "vp8enc", "deadline=1", "cpu-used=8", "keyframe-max-dist=%d" % (2 * fps),
         "target-bitrate=800000", "!", "queue", "!", "webmmux", "name=m", "!",
         "filesink", "location=%s" % path,
         "audiotestsrc", "num-buffers=%d" % (seconds * 50), "samplesperbuffer=960", "wave=ticks", "!",
         "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!", "queue", "!", "m."],
        check=True, timeout=120)
    return path


class Proc:
    """A child speaking JSON lines; every line read goes to on_message."""

    def __init__(self, name, argv, on_message, stderr_path=None):
        self.name = name
        self.err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, start_new_session=True)
        self.on_message = on_message
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = {"type": "unparsable", "raw": raw[:200].decode("utf-8", "replace")}
            self.on_message(self, msg)

    def send(self, obj_or_line):
        line = obj_or_line if isinstance(obj_or_line, (bytes, str)) else json.dumps(obj_or_line)
        if isinstance(line, str):
            line = line.encode()
        with self.lock:
            try:
                self.p.stdin.write(line + b"\n")
                self.p.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def close_stdin(self):
        with self.lock:
            try:
                self.p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.p.wait(10)


class Session:
    """One recorder and its (up to two) peers, wired like testigod would."""

    def __init__(self, recorder, peer_bin, media, workdir, session_id="s-test", extra_args=(), wrap=()):
        self.peer_bin = peer_bin
        self.media = media
        self.workdir = workdir
        self.dir = os.path.join(workdir, "session")
        os.makedirs(self.dir, exist_ok=True)
        self.msgs = []
        self.cond = threading.Condition()
        self.peers = {}
        self.stats = {}
        self.join_time = {}
        self.peer_msgs = []  # (party, message) for every line a peer printed, with "_rx"
        self.rec = Proc("recorder",
                        [*wrap, recorder, "--session-dir", self.dir, "--session-id", session_id, "--loopback",
                         *extra_args],
                        self._from_recorder, os.path.join(workdir, "recorder.stderr"))

    # recorder → server / peers
    def _from_recorder(self, proc, msg):
        msg["_rx"] = time.monotonic()  # when it arrived (not part of the protocol)
        t = msg.get("type")
        if t == "answer" and msg.get("peer") in self.peers:
            self.peers[msg["peer"]].send({"type": "answer", "sdp": msg["sdp"]})
        elif t == "ice" and msg.get("peer") in self.peers:
            self.peers[msg["peer"]].send({"type": "ice", "candidate": msg["candidate"],
                                          "sdpMLineIndex": msg["sdpMLineIndex"]})
        with self.cond:
            self.msgs.append(msg)
            self.cond.notify_all()

    def _from_peer(self, party):
        def cb(proc, msg):
            if self.peers.get(party) is not proc:
                return
            msg["_rx"] = time.monotonic()
            with self.cond:
                self.peer_msgs.append((party, msg))
                self.cond.notify_all()
            t = msg.get("type")
            if t == "offer":
                self.rec.send({"type": "offer", "peer": party, "sdp": msg["sdp"]})
            elif t == "ice":
                self.rec.send({"type": "ice", "peer": party, "candidate": msg["candidate"],
                               "sdpMLineIndex": msg["sdpMLineIndex"]})
            elif t == "stats":
                with self.cond:
                    self.stats[party] = msg
                    self.cond.notify_all()
        return cb

    def wait_for(self, pred, timeout=15, start=0):
        """The first recorder message (from index start) matching pred, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.msgs[start:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.msgs)

    def peer_mark(self):
        with self.cond:
            return len(self.peer_msgs)

    def peer_messages(self, party, pred, start=0):
        """Every message of party (from index start of peer_msgs) matching pred."""
        with self.cond:
            return [m for p, m in self.peer_msgs[start:] if p == party and pred(m)]

    def wait_peer(self, party, pred, timeout=15, start=0):
        """The first message of party (from index start of peer_msgs) matching pred, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for p, m in self.peer_msgs[start:]:
                    if p == party and pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def join(self, party, no_decode=False, no_video=False, extra_args=()):
        args = [self.peer_bin, "--media", self.media, "--loopback", *extra_args]
        if no_decode:
            args.append("--no-decode")
        if no_video:
            args.append("--no-video")
        self.stats.pop(party, None)
        self.join_time[party] = time.monotonic()
        self.peers[party] = Proc(party, args, self._from_peer(party),
                                 os.path.join(self.workdir, "%s.stderr" % party))

    def leave(self, party):
        proc = self.peers.pop(party)
        proc.send({"type": "bye"})
        proc.wait(10)
        self.rec.send({"type": "peer-left", "peer": party})

    def pause(self, party, kind, ms):
        """@party's @kind track sends nothing for @ms (rtc-peer's "pause")."""
        self.peers[party].send({"type": "pause", "kind": kind, "ms": ms})

    def peer_stats(self, party, timeout=5):
        deadline = time.monotonic() + timeout
        with self.cond:
            while party not in self.stats and time.monotonic() < deadline:
                self.cond.wait(0.5)
            return dict(self.stats.get(party, {}))

    def log_event(self, event):
        self.rec.send({"type": "log-event", "event": event})

    def stop(self, timeout=30):
        m = self.mark()
        self.rec.send({"type": "stop"})
        stopped = self.wait_for(lambda x: x.get("type") == "stopped", timeout, m)
        rc = self.rec.wait(15)
        self.close_peers()
        return stopped, rc

    def close_peers(self):
        for party, proc in list(self.peers.items()):
            proc.send({"type": "bye"})
            proc.wait(10)
        self.peers.clear()

    def kill_all(self):
        self.rec.kill()
        for proc in self.peers.values():
            proc.kill()


def tempdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def tempdir_in(parent, prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=parent)
