#!/usr/bin/env python3
"""testigod WebSocket signaling: join links, roles, message validation,
heartbeats, relay to the recorder (tests/signaling/fake-recorder.py), close
and sealing, recorder death."""
import json, os, signal, sqlite3, subprocess, sys, tarfile, time
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(__file__))
from sigtest import Server, ServerTest, main, TESTIGO

CONSENT = {"type": "consent", "text_version": "consent-v1", "text_sha256": "a" * 64,
           "shown_information": ["Purpose of the session and of the recording", "Retention: 15 years"]}
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
CHECKLIST = {
    "document": {"type": "id-card", "issuer": "VEN", "number": "V12345678", "expiry": "2030-06-14",
                 "data_matches_case": True,
                 "comparison": [{"field": "name", "match": True}, {"field": "national_id", "match": True}]},
    "security_features": [{"name": "hologram", "optically_variable": True, "result": "pass"},
                          {"name": "OVI", "optically_variable": True, "result": "pass"},
                          {"name": "guilloche", "optically_variable": False, "result": "pass"}],
    "face_comparison": {"method": "officer-visual", "result": "match"},
}


class Signaling(ServerTest):
    def setUp(self):
        super().setUp()
        self.open_case()

    def open_case(self):
        self.assertEqual(self.srv.login()[0], 200)
        self.case = self.srv.new_case()
        self.session = self.srv.new_session(self.case["id"])
        self.token = self.session["join_path"].rsplit("/", 1)[1]
        self.sid = self.session["id"]

    def db(self, sql, *args):
        db = sqlite3.connect(os.path.join(self.srv.state, "testigo.db"))
        try:
            rows = db.execute(sql, args).fetchall()
            db.commit()
            return rows
        finally:
            db.close()

    def signatory(self):
        w = self.ws()
        w.send({"type": "hello", "role": "signatory", "token": self.token})
        hello = w.expect("hello")
        self.assertEqual(hello["role"], "signatory")
        self.assertIn("ice_servers", hello)
        self.assertGreaterEqual(len(hello["rejoin"]), 22)
        return w, hello

    def officer(self):
        w = self.ws(officer=True)
        w.send({"type": "hello", "role": "officer", "session": self.sid})
        hello = w.expect("hello")
        self.assertEqual(hello["case"], self.case["id"])
        return w

    def assert_alive(self, w):
        w.send({"type": "ping"})
        self.assertEqual(w.expect("pong")["type"], "pong")

    def test_join_token_single_use(self):
        w, hello = self.signatory()
        second = self.ws()
        second.send({"type": "hello", "role": "signatory", "token": self.token})
        self.assertEqual(second.expect("error")["code"], "link-used")
        self.assertEqual(second.expect("CLOSED")["code"], 4409)
        # a second signatory with the rejoin secret while the first is connected
        third = self.ws()
        third.send({"type": "hello", "role": "signatory", "rejoin": hello["rejoin"]})
        self.assertEqual(third.expect("error")["code"], "already-connected")
        self.assert_alive(w)
        # after a drop the rejoin secret works, the link still does not
        w.close()
        time.sleep(0.5)
        again = self.ws()
        again.send({"type": "hello", "role": "signatory", "rejoin": hello["rejoin"]})
        h2 = again.expect("hello")
        self.assertNotIn("rejoin", h2)
        bad = self.ws()
        bad.send({"type": "hello", "role": "signatory", "rejoin": "x" * 43})
        self.assertEqual(bad.expect("error")["code"], "invalid-link")

    def test_join_token_expired(self):
        self.db("update sessions set token_expires_at = 1 where id = ?", self.sid)
        w = self.ws()
        w.send({"type": "hello", "role": "signatory", "token": self.token})
        self.assertEqual(w.expect("error")["code"], "link-expired")
        self.assertEqual(w.expect("CLOSED")["code"], 4410)
        w2 = self.ws()
        w2.send({"type": "hello", "role": "signatory", "token": "A" * 43})
        self.assertEqual(w2.expect("error")["code"], "invalid-link")

    def test_officer_needs_cookie(self):
        w = self.ws(officer=False)
        w.send({"type": "hello", "role": "officer", "session": self.sid})
        self.assertEqual(w.expect("error")["code"], "unauthorized")
        w2 = self.ws(officer=True, origin="http://evil.example")
        self.assertEqual(w2.next()["type"], "CLOSED")

    def test_bad_messages_get_errors_and_the_connection_survives(self):
        w = self.ws()
        for text, code in [("{not json", "bad-json"), ("[1,2]", "bad-message"), ('{"type": 5}', "bad-message"),
                           ('{"a":1}', "bad-message"), ('{"type":"x","type":"y"}', "bad-json"),
                           ('{"type":"teleport"}', "unknown-type"), ('{"type":"answer","sdp":"v=0"}', "out-of-order"),
                           (json.dumps(OFFER), "out-of-order"), ('{"type":"still","kind":"face"}', "out-of-order"),
                           ('"\\ud800"', "bad-json"), ("#binary hello", "bad-message"),
                           (json.dumps({"type": "hello", "role": "king"}), "bad-message"),
                           (json.dumps({"type": "ping", "pad": "x" * 70000}), "too-big")]:
            w.send(text)
            m = w.expect("error")
            self.assertEqual(m["code"], code, (text[:40], m))
            self.assert_alive(w)
        s, _ = self.signatory()
        for msg, code in [(OFFER, "out-of-order"),                                    # offer before consent
                          ({"type": "still", "kind": "face"}, "forbidden"),           # signatory asks a still
                          ({"type": "instruction", "kind": "tilt", "target": "face"}, "forbidden"),
                          ({"type": "ice", "candidate": "candidate:1", "sdpMLineIndex": 0}, "out-of-order"),
                          ({"type": "hello", "role": "signatory", "token": self.token}, "out-of-order"),
                          (dict(CONSENT, text_sha256="XYZ"), "bad-message"),
                          (dict(CONSENT, extra=1), "bad-message"),
                          ({"type": "offer", "sdp": "hello"}, "bad-message"),
                          ({"type": "device-check", "camera": "yes", "microphone": True, "speaker": True},
                           "bad-message")]:
            s.send(msg)
            self.assertEqual(s.expect("error")["code"], code, msg)
        self.assert_alive(s)
        s.send(CONSENT)
        self.assertEqual(s.expect("consent")["text_version"], "consent-v1")
        s.send(CONSENT)
        self.assertEqual(s.expect("error")["code"], "out-of-order")
        # the server is still serving HTTP
        self.assertEqual(self.srv.request("GET", "/api/health")[0], 200)

    def test_random_messages_never_crash(self):
        import random
        rnd = random.Random(20261125)
        s, _ = self.signatory()
        o = self.officer()
        samples = [CONSENT, OFFER, {"type": "ice", "candidate": "candidate:1 1 UDP 1 1.2.3.4 5 typ host",
                                    "sdpMLineIndex": 0}, {"type": "still", "kind": "face"},
                   {"type": "instruction", "kind": "tilt", "target": "face", "text": "x"},
                   {"type": "device-check", "camera": True, "microphone": False, "speaker": True},
                   {"type": "hello", "role": "officer", "session": self.sid}]
        junk = [None, True, 1.5, -1, 2 ** 70, "", "\u00e9" * 300, [], {}, [[[[]]]], "x" * 40000]
        for i in range(300):
            m = dict(rnd.choice(samples))
            for _ in range(rnd.randint(1, 3)):
                key = rnd.choice(list(m.keys()) + ["extra", "type"])
                m[key] = rnd.choice(junk + [rnd.choice(["offer", "ice", "consent", "still", "leave2"])])
            text = json.dumps(m)
            if rnd.random() < 0.3:  # truncate or corrupt the text itself
                cut = rnd.randint(0, len(text))
                text = text[:cut] + rnd.choice(["", "\\", "\"", "{", "]", "\u0000"])
            text = text.replace("\n", " ")
            if not text.strip() or text.startswith("#"):
                continue
            (s if i % 2 else o).send(text)
        for w in (s, o):
            w.send({"type": "ping"})
            while True:  # errors and relayed messages first, then our pong
                m = w.next(timeout=30)
                self.assertNotIn(m["type"], ("CLOSED", "EOF"), m)
                if m["type"] == "pong":
                    break
        self.assertEqual(self.srv.request("GET", "/api/health")[0], 200)

    def test_heartbeat_drops_a_dead_peer(self):
        o = self.officer()
        s, _ = self.signatory()
        self.assertEqual(o.expect("peer-joined", skip=())["peer"], "signatory")
        s.answer_pings = False
        t0 = time.time()
        m = s.next(timeout=15)
        while m["type"] != "CLOSED":
            m = s.next(timeout=15)
        self.assertEqual(m["code"], 4408)
        self.assertLess(time.time() - t0, 12)
        left = o.expect("peer-left")
        self.assertEqual((left["peer"], left["reason"]), ("signatory", "heartbeat timeout"))
        self.assert_alive(o)  # the officer, who answered pings, stays

    def test_no_hello_is_dropped(self):
        w = self.ws()  # answers pings but never says hello
        m = w.next(timeout=30)  # 3 x heartbeat-timeout (4 s here)
        self.assertEqual((m["type"], m.get("code")), ("error", "out-of-order"))
        self.assertEqual(w.next(timeout=15)["code"], 4408)

    def call(self):
        o = self.officer()
        s, hello = self.signatory()
        s.send({"type": "device-check", "camera": True, "microphone": True, "speaker": True})
        s.send(CONSENT)
        s.expect("consent")
        s.send(OFFER)
        self.assertTrue(s.expect("answer")["sdp"].startswith("v=0"))
        s.send({"type": "ice", "candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMLineIndex": 0})
        o.send(OFFER)
        self.assertTrue(o.expect("answer")["sdp"].startswith("v=0"))
        return o, s, hello

    def test_call_stills_close_and_seal(self):
        o, s, _ = self.call()
        for kind in ["doc-front", "doc-back", "face"]:
            o.send({"type": "still", "kind": kind})
            saved = o.expect("still-saved")
            self.assertEqual(saved["kind"], kind)
        o.send({"type": "instruction", "kind": "tilt", "target": "doc-front", "text": "Incline el documento."})
        self.assertEqual(o.expect("instruction-recorded")["part"], 0)
        # a checklist that does not satisfy the schema is refused before anything stops
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "approved", "checklist": {"document": {"type": "id-card"}}})
        self.assertEqual(st, 422, doc)
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "approved", "checklist": {"holder": {}}})
        self.assertEqual(st, 400, doc)
        self.assert_alive(o)
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "approved", "notes": "", "checklist": CHECKLIST})
        self.assertEqual(st, 200, doc)
        self.assertTrue(doc["sealed"])
        self.assertEqual(doc["indication"], "TOTAL-PASSED", doc)
        bundle = doc["bundle"]
        self.assertTrue(bundle.endswith("/evidence/V-12_345_678/%s.tar" % self.case["id"]), bundle)
        self.assertEqual(os.stat(bundle).st_mode & 0o777, 0o444)
        self.assertEqual(os.stat(os.path.dirname(bundle)).st_mode & 0o777, 0o700)
        self.assertEqual(o.expect("closed")["outcome"], "approved")
        st, r, body = self.srv.request("GET", doc["download"])
        self.assertEqual((st, r.getheader("Content-Type")), (200, "application/x-tar"))
        with open(bundle, "rb") as f:
            self.assertEqual(body, f.read())
        root = os.path.join(self.srv.state, "keys", "root.pem")
        v = subprocess.run([TESTIGO, "verify", "--ca-file", root, "--for-case", self.case["id"], "--action",
                            "renewal", "--serial", "4F1A9C0B7D22E36A", bundle], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        with tarfile.open(bundle) as t:
            rec = json.load(t.extractfile("%s/data/record.json" % self.case["id"]))
        self.assertEqual(rec["officer"]["id"], "ro.lopez")
        self.assertEqual(rec["consent"]["text_version"], "consent-v1")
        self.assertEqual(len(rec["signatory"]["joins"]), 1)
        self.assertEqual(len(rec["stills"]), 3)
        self.assertEqual(rec["instructions"][0]["kind"], "tilt")
        self.assertEqual(rec["recording"]["parts"][0]["file"], "recording-0.mkv")
        st, _, s2 = self.srv.request("GET", "/api/sessions/" + self.sid)
        self.assertEqual((s2["state"], s2["outcome"]), ("sealed", "approved"))
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid, {"outcome": "aborted", "notes": "x"})
        self.assertEqual(st, 409)
        # the spent session cannot be joined again
        w = self.ws()
        w.send({"type": "hello", "role": "signatory", "token": self.token})
        self.assertEqual(w.expect("error")["code"], "link-used")

    def test_per_track_recording_files_are_sealed(self):
        # a recorder that writes one file per track: restart the server so
        # that its (fake) recorder inherits FAKE_RECORDER_PER_TRACK=1
        self.srv.cleanup()
        os.environ["FAKE_RECORDER_PER_TRACK"] = "1"
        try:
            self.srv = Server(args=self.server_args)
        finally:
            del os.environ["FAKE_RECORDER_PER_TRACK"]
        self.open_case()
        o, s, _ = self.call()
        # a track file left empty (a recorder killed before its first buffer): not sealed
        empty = os.path.join(self.srv.state, "sessions", self.sid, "recording-7-officer-video.mkv")
        open(empty, "wb").close()
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "rejected", "notes": "Documento ilegible."})
        self.assertEqual(st, 200, doc)
        self.assertTrue(doc["sealed"])
        self.assertEqual(doc["indication"], "TOTAL-PASSED", doc)
        root = os.path.join(self.srv.state, "keys", "root.pem")
        v = subprocess.run([TESTIGO, "verify", "--ca-file", root, doc["bundle"]], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        with tarfile.open(doc["bundle"]) as t:
            names = t.getnames()
            rec = json.load(t.extractfile("%s/data/record.json" % self.case["id"]))
        for kind in ("video", "audio"):
            self.assertIn("%s/data/recording-0-signatory-%s.mkv" % (self.case["id"], kind), names)
        self.assertNotIn("%s/data/recording-0.mkv" % self.case["id"], names)
        self.assertNotIn("%s/data/recording-7-officer-video.mkv" % self.case["id"], names)
        part = rec["recording"]["parts"][0]
        self.assertNotIn("file", part)
        self.assertEqual(sorted(t["file"] for t in part["tracks"]),
                         ["recording-0-signatory-audio.mkv", "recording-0-signatory-video.mkv"])

    def test_signatory_drop_and_rejoin_is_a_new_part(self):
        o, s, hello = self.call()
        s.proc.kill()  # the tab dies without a close frame
        left = o.expect("peer-left", skip=("part-started", "track", "first-keyframe", "device-check", "consent",
                                           "peer-joined", "ice"), timeout=20)
        self.assertEqual(left["peer"], "signatory")
        s2 = self.ws()
        s2.send({"type": "hello", "role": "signatory", "rejoin": hello["rejoin"]})
        h2 = s2.expect("hello")
        self.assertTrue(h2["consent_given"])
        s2.send(OFFER)
        s2.expect("answer")
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "rejected", "notes": "Documento ilegible."})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["indication"], "TOTAL-PASSED", doc)
        with tarfile.open(doc["bundle"]) as t:
            names = t.getnames()
            rec = json.load(t.extractfile("%s/data/record.json" % self.case["id"]))
        self.assertIn("%s/data/recording-1.mkv" % self.case["id"], names)
        self.assertEqual(len(rec["signatory"]["joins"]), 2)
        self.assertEqual(len(rec["recording"]["parts"]), 2)
        self.assertEqual(rec["interruptions"][0]["cause"], "signatory-network")
        self.assertIn("resumed_at", rec["interruptions"][0])

    def test_recorder_killed_marks_interrupted_and_seals(self):
        o, s, _ = self.call()
        with open(os.path.join(self.srv.state, "sessions", self.sid, "recorder.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        m = o.expect("session-interrupted", skip=("part-started", "track", "first-keyframe", "device-check",
                                                  "consent", "peer-joined", "ice"))
        self.assertIn("signal 9", m["reason"])
        st, _, doc = self.srv.request("GET", "/api/sessions/" + self.sid)
        self.assertEqual(doc["state"], "interrupted")
        self.assert_alive(o)
        # another session is unaffected and can still be created
        self.srv.new_session(self.srv.new_case()["id"])
        st, _, doc = self.srv.request("POST", "/api/sessions/%s/close" % self.sid,
                                      {"outcome": "aborted", "notes": "Recorder crashed."})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["indication"], "TOTAL-PASSED", doc)
        with tarfile.open(doc["bundle"]) as t:
            rec = json.load(t.extractfile("%s/data/record.json" % self.case["id"]))
        self.assertEqual(rec["interruptions"][-1]["cause"], "server")


class IceConfig(ServerTest):
    server_args = ("--stun", "stun:stun.example.org:3478", "--turn", "turn:turn.example.org:3478?transport=udp",
                   "--turn-username", "u@x", "--turn-credential", "p:w")

    def test_ice_servers_reach_browsers_and_recorder(self):
        self.assertEqual(self.srv.login()[0], 200)
        sess = self.srv.new_session(self.srv.new_case()["id"])
        w = self.ws(officer=True)
        w.send({"type": "hello", "role": "officer", "session": sess["id"]})
        hello = w.expect("hello")
        self.assertEqual(hello["ice_servers"], [
            {"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "u@x", "credential": "p:w"}])
        args = self.srv.recorder_args(sess["id"])
        self.assertIn("stun://stun.example.org:3478", args)
        self.assertIn("turn://u%40x:p%3Aw@turn.example.org:3478?transport=udp", args)
        self.assertNotIn("--jitter-buffer-ms", args)  # default: packets go on as they arrive


if __name__ == "__main__":
    main()
