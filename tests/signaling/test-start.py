#!/usr/bin/env python3
"""testigod start-up: TLS required off loopback, configuration file,
recorder missing, restart recovery of unfinished sessions."""
import http.client, json, os, shutil, signal, ssl, subprocess, sys, tempfile, time, unittest
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(__file__))
from sigtest import Server, TESTIGO, TESTIGOD, add_officer, main, PASSWORD

CONSENT = {"type": "consent", "text_version": "consent-v1", "text_sha256": "b" * 64,
           "shown_information": ["Purpose"]}
OFFER = {"type": "offer", "sdp": "v=0\r\n"}


class Start(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="testigod-start-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_testigod(self, *args):
        return subprocess.run([TESTIGOD, "--state-dir", os.path.join(self.tmp, "state")] + list(args),
                              capture_output=True, text=True, timeout=60)

    def test_non_loopback_without_tls_refuses_to_start(self):
        r = self.run_testigod("--listen", "0.0.0.0:0")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("without TLS", r.stderr)
        self.assertIn("tls-cert", r.stderr)
        r = self.run_testigod("--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent")
        self.assertEqual(r.returncode, 3, r.stderr)
        conf = os.path.join(self.tmp, "t.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten=192.0.2.1:8443\n")
        r = self.run_testigod("--config", conf)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("without TLS", r.stderr)

    def test_bad_flags_and_config(self):
        self.assertEqual(self.run_testigod("--listen", "localhost:80x").returncode, 3)
        self.assertEqual(self.run_testigod("--heartbeat-interval", "30", "--heartbeat-timeout", "10").returncode, 3)
        self.assertEqual(self.run_testigod("--turn", "turn:x:3478").returncode, 3)  # no credentials
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[sessions]\njoin-ttl=forever\n")
        r = self.run_testigod("--config", conf)
        self.assertEqual(r.returncode, 3)
        self.assertIn("join-ttl", r.stderr)
        for bad in ("2001", "-1", "200ms"):
            with open(conf, "w") as f:
                f.write("[recorder]\njitter-buffer-ms=%s\n" % bad)
            r = self.run_testigod("--config", conf)
            self.assertEqual(r.returncode, 3, bad)
            self.assertIn("[recorder] jitter-buffer-ms: an integer from 0 to 2000", r.stderr)

    def test_tls_off_loopback(self):
        key, cert = os.path.join(self.tmp, "k.pem"), os.path.join(self.tmp, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        add_officer(state)
        p = subprocess.Popen([TESTIGOD, "--state-dir", state, "--listen", "0.0.0.0:0", "--tls-cert", cert,
                              "--tls-key", key], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = p.stdout.readline().decode()
            self.assertIn("https://", line)
            port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
            c.request("POST", "/api/login", body=json.dumps({"username": "ro.lopez", "password": PASSWORD}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertIn("Secure", r.getheader("Set-Cookie"))
            self.assertIn("max-age", r.getheader("Strict-Transport-Security"))
            c.close()
        finally:
            p.terminate()
            p.wait()
            p.stdout.close()

    def test_without_recorder_sessions_are_refused(self):
        srv = Server(tmp=self.tmp, recorder="/nonexistent/testigo-recorder")
        try:
            self.assertEqual(srv.login()[0], 200)
            case = srv.new_case()
            st, _, doc = srv.request("POST", "/api/cases/%s/sessions" % case["id"])
            self.assertEqual(st, 503, doc)
            self.assertIn("recording not available", doc["error"])
        finally:
            srv.stop()

    def test_config_file_and_flags(self):
        conf = os.path.join(self.tmp, "testigo.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten=127.0.0.1:1\n[sessions]\njoin-ttl=600\n"
                    "[ice]\nstun=stun:a.example:3478;stun:b.example:3478;\n")
        srv = Server(tmp=self.tmp, args=("--config", conf, "--listen", "127.0.0.1:0"))  # the flag wins
        try:
            self.assertEqual(srv.login()[0], 200)
            s = srv.new_session(srv.new_case()["id"])
            created = time.strptime(s["created_at"], "%Y-%m-%dT%H:%M:%SZ")
            expires = time.strptime(s["link_expires_at"], "%Y-%m-%dT%H:%M:%SZ")
            self.assertEqual(time.mktime(expires) - time.mktime(created), 600)
            w = srv.ws(officer=True)
            w.send({"type": "hello", "role": "officer", "session": s["id"]})
            self.assertEqual(w.expect("hello")["ice_servers"][0]["urls"],
                             ["stun:a.example:3478", "stun:b.example:3478"])
            w.kill()
        finally:
            srv.stop()

    def test_recorder_jitter_buffer_reaches_the_recorder(self):
        conf = os.path.join(self.tmp, "testigo.conf")
        with open(conf, "w") as f:
            f.write("[recorder]\njitter-buffer-ms=150\n")
        srv = Server(tmp=self.tmp, args=("--config", conf))
        try:
            self.assertEqual(srv.login()[0], 200)
            s = srv.new_session(srv.new_case()["id"])
            w = srv.ws(officer=True)
            w.send({"type": "hello", "role": "officer", "session": s["id"]})
            w.expect("hello")
            args = srv.recorder_args(s["id"])
            i = args.index("--jitter-buffer-ms")
            self.assertEqual(args[i + 1], "150")
            w.kill()
        finally:
            srv.stop()

    def test_officer_add(self):
        state = os.path.join(self.tmp, "state")
        run = lambda *a, **kw: subprocess.run([TESTIGO, "officer", "add"] + list(a) + ["--state-dir", state],
                                              capture_output=True, text=True, timeout=60, **kw)
        r = run("ana.perez", input="a long enough password\n")  # no terminal: one line from stdin
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("ana.perez", input="another long password\n")
        self.assertEqual(r.returncode, 7, r.stderr)  # exists
        self.assertIn("already exists", r.stderr)
        r = run("bob", input="short\n")
        self.assertEqual(r.returncode, 4, r.stderr)
        r = run("bad id!", input="a long enough password\n")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(state, "testigo.db")).st_mode & 0o777, 0o600)
        srv = Server(tmp=self.tmp, officer=False)
        try:
            self.assertEqual(srv.login("ana.perez", "a long enough password")[0], 200)
        finally:
            srv.stop()

    def test_restart_finds_unfinished_session(self):
        srv = Server(tmp=self.tmp)
        try:
            self.assertEqual(srv.login()[0], 200)
            case = srv.new_case(action="suspension", suspension_days=15)
            s = srv.new_session(case["id"])
            w = srv.ws()
            w.send({"type": "hello", "role": "signatory", "token": s["join_path"].rsplit("/", 1)[1]})
            w.expect("hello")
            w.send(CONSENT)
            w.expect("consent")
            w.send(OFFER)
            w.expect("answer")
            srv.stop(signal.SIGKILL)  # the whole process group: testigod and its recorder
            w.kill()
        finally:
            srv.stop()
        srv = Server(tmp=self.tmp)
        try:
            self.assertEqual(srv.login()[0], 200)
            st, _, doc = srv.request("GET", "/api/sessions?state=unfinished")
            self.assertEqual(st, 200)
            found = [x for x in doc["sessions"] if x["id"] == s["id"]]
            self.assertEqual(len(found), 1, doc)
            self.assertEqual(found[0]["state"], "interrupted")
            st, _, doc = srv.request("POST", "/api/sessions/%s/close" % s["id"],
                                     {"outcome": "aborted", "notes": "Server restarted during the session."})
            self.assertEqual(st, 200, doc)
            self.assertEqual(doc["indication"], "TOTAL-PASSED", doc)
            st, _, doc = srv.request("GET", "/api/sessions?state=unfinished")
            self.assertEqual([x for x in doc["sessions"] if x["id"] == s["id"]], [])
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
