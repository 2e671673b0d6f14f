"""Helpers for testigod's protocol tests: start the server on a free port
with a temporary state directory (always killed), HTTP requests with the
officer's cookie and CSRF token, and a WebSocket peer driven through
ws-client (tests/signaling/ws-client.c)."""
import http.client, json, os, queue, shutil, signal, subprocess, sys, tempfile, threading, time, unittest

TESTIGOD = os.environ.get("TESTIGOD", "build/signaling/testigod")
TESTIGO = os.environ.get("TESTIGO", "build/cli/testigo")
WS_CLIENT = os.environ.get("WS_CLIENT", "build/tests/signaling/ws-client")
FAKE_RECORDER = os.environ.get("FAKE_RECORDER", os.path.join(os.path.dirname(__file__), "fake-recorder.py"))
PASSWORD = "correct horse battery staple"


def add_officer(state, officer="ro.lopez", name="Andrés López", password=PASSWORD):
    pw = os.path.join(state, "..", "pw-" + officer)
    with open(pw, "w") as f:
        f.write(password + "\n")
    subprocess.run([TESTIGO, "officer", "add", officer, "--name", name, "--password-file", pw,
                    "--state-dir", state], check=True, stdout=subprocess.DEVNULL)


class Server:
    def __init__(self, tmp=None, args=(), officer=True, recorder=FAKE_RECORDER):
        self.tmp = tmp or tempfile.mkdtemp(prefix="testigod-")
        self.own_tmp = tmp is None
        self.state = os.path.join(self.tmp, "state")
        if officer and not os.path.exists(os.path.join(self.state, "testigo.db")):
            os.makedirs(self.state, exist_ok=True)
            add_officer(self.state)
        cmd = [TESTIGOD, "--state-dir", self.state, "--listen", "127.0.0.1:0",
               "--heartbeat-interval", "1", "--heartbeat-timeout", "4"]
        if recorder:
            cmd += ["--recorder", recorder]
        cmd += list(args)
        self.log = open(os.path.join(self.tmp, "testigod.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if "listening on " not in line:
            self.stop()
            raise RuntimeError("testigod did not start: %r (see %s)" % (line, self.log.name))
        url = line.split("listening on ", 1)[1].strip().rstrip("/")
        self.host, self.port = url.split("//", 1)[1].split(":")
        self.port = int(self.port)
        self.cookie = None
        self.csrf = None

    def recorder_args(self, session_id, timeout=5.0):
        """The command-line arguments testigod gave the (fake) recorder of a session."""
        path = os.path.join(self.state, "sessions", session_id, "recorder.args")
        end = time.monotonic() + timeout
        while not os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.1)
        with open(path) as f:
            return json.load(f)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.close()

    def sanitizer_report(self):
        """The first AddressSanitizer/LeakSanitizer/UBSan report in testigod's log, if any."""
        with open(os.path.join(self.tmp, "testigod.log"), errors="replace") as f:
            text = f.read()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return None

    def cleanup(self):
        self.stop()
        report = self.sanitizer_report()
        if self.own_tmp and report is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if report is not None:
            raise AssertionError("sanitizer report in %s/testigod.log:\n%s" % (self.tmp, report))

    def request(self, method, path, body=None, headers=None, auth=True, csrf=True, raw=None):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        if auth and self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        try:
            doc = json.loads(payload) if r.getheader("Content-Type", "").startswith("application/json") else payload
        except ValueError:
            doc = payload
        return r.status, r, doc

    def login(self, user="ro.lopez", password=PASSWORD):
        st, r, doc = self.request("POST", "/api/login", {"username": user, "password": password}, auth=False)
        if st == 200:
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
            self.csrf = doc["csrf_token"]
        return st, r, doc

    def new_case(self, **over):
        case = {"holder_name": "María José García-Núñez", "national_id": "V-12.345.678", "email": "mj@example.org",
                "serial": "4f1a9c0b7d22e36a", "action": "renewal", "reason": "Certificate expires soon."}
        case.update(over)
        st, _, doc = self.request("POST", "/api/cases", case)
        assert st == 201, (st, doc)
        return doc

    def new_session(self, case_id):
        st, _, doc = self.request("POST", "/api/cases/%s/sessions" % case_id)
        assert st == 201, (st, doc)
        return doc

    def ws(self, officer=False, origin=None):
        return WS("ws://%s:%d/ws" % (self.host, self.port), cookie=self.cookie if officer else None, origin=origin)


class WS:
    def __init__(self, url, cookie=None, origin=None):
        cmd = [WS_CLIENT, url]
        if cookie:
            cmd += ["--cookie", cookie]
        if origin:
            cmd += ["--origin", origin]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        self.q = queue.Queue()
        self.closed = None
        self.answer_pings = True  # like a browser page; a test sets False to play dead
        self.lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()
        first = self.q.get(timeout=20)
        if first != "OPEN":
            raise RuntimeError("ws-client: %s" % first)

    def _reader(self):
        for line in self.proc.stdout:
            text = line.decode().rstrip("\n")
            if text == '{"type":"ping"}':
                if self.answer_pings:
                    try:
                        self.send({"type": "pong"})
                    except (BrokenPipeError, ValueError):
                        pass
                continue
            self.q.put(text)
        self.q.put(None)

    def send(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        with self.lock:
            self.proc.stdin.write(text.encode() + b"\n")
            self.proc.stdin.flush()

    def next(self, timeout=15):
        """The next message (pings skipped), a dict; or {"type": "CLOSED", code, reason}."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise AssertionError("no message within %s s" % timeout)
            line = self.q.get(timeout=left)
            if line is None:
                return {"type": "EOF"}
            if line.startswith("CLOSED "):
                parts = line.split(" ", 2)
                self.closed = int(parts[1])
                return {"type": "CLOSED", "code": int(parts[1]), "reason": parts[2] if len(parts) > 2 else ""}
            return json.loads(line)

    def expect(self, type_, timeout=15, skip=("peer-joined", "peer-left", "device-check", "track",
                                               "first-keyframe", "part-started", "consent", "ice")):
        while True:
            m = self.next(timeout)
            if m["type"] == type_:
                return m
            if m["type"] in skip and m["type"] != type_:
                continue
            raise AssertionError("expected %s, got %r" % (type_, m))

    def close(self):
        try:
            self.send("#close")
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


class ServerTest(unittest.TestCase):
    server_args = ()

    def setUp(self):
        self.srv = Server(args=self.server_args)
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.kill()
        self.srv.cleanup()

    def ws(self, officer=False, **kw):
        w = self.srv.ws(officer=officer, **kw)
        self.peers.append(w)
        return w


def main():
    unittest.main(verbosity=2)
