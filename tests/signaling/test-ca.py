#!/usr/bin/env python3
"""testigod and the CA core over HTTP: CRLs and the OCSP responder checked
with stock openssl, admin-only actions through the evidence gate, in-person
visits, the API-token endpoints (gate check, step-ca webhook, signed e-mail
intake), the holder portal (login rate limit, isolation, revocation,
renewal from a CSR) and the audit log of logins."""
import base64, hashlib, hmac, http.client, json, os, re, subprocess, sys, tempfile, time, unittest
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(__file__))
from sigtest import Server, ServerTest, main, PASSWORD, TESTIGO

TOKEN = "t0k3n-" + "a1b2c3d4" * 6
STEP_SECRET = base64.b64encode(b"step-ca webhook secret, 32 bytes!").decode()
# a 1x1 PNG, the "scan" of an in-person visit
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Client:
    """One browser: its own cookie (officer or holder) and CSRF token."""

    def __init__(self, srv):
        self.srv = srv
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, raw=None, csrf=True):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf
        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=60)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        doc = payload
        if r.getheader("Content-Type", "").startswith("application/json"):
            doc = json.loads(payload)
        return r.status, r, doc

    def login(self, user, password=PASSWORD):
        st, r, doc = self.request("POST", "/api/login", {"username": user, "password": password})
        if st == 200:
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
            self.csrf = doc["csrf_token"]
        return st, doc

    def holder_login(self, nid, password=PASSWORD):
        st, r, doc = self.request("POST", "/api/holder/login", {"national_id": nid, "password": password})
        if st == 200:
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
            self.csrf = doc["csrf_token"]
        return st, doc


class CaTest(ServerTest):
    """A server with an officer (ro.lopez), a CA administrator (admin.root),
    two holders with a certificate each, the API token and the step-ca secret."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="testigod-ca-")
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        pw = os.path.join(self.tmp, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        run([TESTIGO, "officer", "add", "ro.lopez", "--name", "Andrés López", "--password-file", pw, "--state-dir", state])
        run([TESTIGO, "officer", "add", "admin.root", "--role", "admin", "--name", "Carla Admin", "--password-file", pw,
             "--state-dir", state])
        for nid, name, mail in (("V-12.345.678", "Ana Pérez", "ana@example.org"),
                                ("V-87654321", "Beto Ruiz", "beto@example.org")):
            run([TESTIGO, "holder", "add", nid, "--name", name, "--email", mail, "--password-file", pw, "--state-dir", state])
        self.token_file = os.path.join(self.tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        conf = os.path.join(self.tmp, "testigod.conf")
        with open(conf, "w") as f:
            f.write("[ca]\nsweep-interval=1\nstep-ca-webhook-secret=%s\n" % STEP_SECRET)
        self.srv = Server(tmp=self.tmp, officer=False,
                          args=["--config", conf, "--api-token-file", self.token_file])
        self.peers = []
        self.state = state
        self.ca_pem = os.path.join(state, "ca", "ca.pem")
        self.admin = Client(self.srv)
        self.assertEqual(self.admin.login("admin.root")[0], 200)
        self.officer = Client(self.srv)
        self.assertEqual(self.officer.login("ro.lopez")[0], 200)
        self.ana_key, self.ana = self.issue("Ana Pérez", "V-12345678", "ana@example.org")
        self.beto_key, self.beto = self.issue("Beto Ruiz", "V-87654321", "beto@example.org")

    def tearDown(self):
        self.srv.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    # ---- helpers

    def csr(self, name, nid, key=None):
        key = key or os.path.join(self.tmp, "key-%s-%d.pem" % (nid, time.monotonic_ns()))
        out = key + ".csr"
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-utf8",
             "-keyout", key, "-subj", "/CN=%s/serialNumber=%s" % (name, nid), "-out", out])
        with open(out) as f:
            return key, f.read()

    def issue(self, name, nid, mail):
        key, csr = self.csr(name, nid)
        st, _, doc = self.admin.request("POST", "/api/ca/certificates",
                                        {"name": name, "national_id": nid, "email": mail, "csr": csr})
        self.assertEqual(st, 201, doc)
        with open(key + ".crt", "w") as f:
            f.write(doc["pem"])
        return key, doc

    def case(self, client, cert, action, **extra):
        body = {"holder_name": cert["name"], "national_id": cert["national_id"], "email": cert["email"],
                "serial": cert["serial"], "action": action, "reason": "Asked at the counter."}
        body.update(extra)
        st, _, doc = client.request("POST", "/api/cases", body)
        self.assertEqual(st, 201, doc)
        return doc

    def visit(self, client, case, outcome="approved"):
        body = {"outcome": outcome, "attestation": "Holder came in person; ID card checked against the case.",
                "consent": True,
                "document": {"type": "id-card", "issuer": "VEN", "number": "V12345678", "expiry": "2031-01-31",
                             "comparison": [{"field": "name", "match": True}, {"field": "national_id", "match": True}]},
                "face_comparison": "match",
                "documents": [{"name": "cedula.png", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}]}
        if outcome != "approved":
            body["notes"] = "Document expired."
        st, _, doc = client.request("POST", "/api/cases/%s/visit" % case["id"], body)
        self.assertEqual(st, 201, doc)
        return doc

    def ocsp(self, serial):
        r = subprocess.run(["openssl", "ocsp", "-url", "http://127.0.0.1:%d/ocsp" % self.srv.port, "-issuer", self.ca_pem,
                            "-serial", "0x" + serial, "-CAfile", self.ca_pem, "-no_nonce"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Response verify OK", r.stdout + r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith("0x")][0]
        return line.split(":", 1)[1].strip(), r.stdout

    def crl_text(self, which="full"):
        st, r, der = Client(self.srv).request("GET", "/crl/%s.crl" % which)
        self.assertEqual(st, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/pkix-crl")
        path = os.path.join(self.tmp, "%s.crl" % which)
        with open(path, "wb") as f:
            f.write(der)
        out = run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile", self.ca_pem, "-noout", "-text"])
        self.assertIn("verify OK", out.stderr + out.stdout)
        return out.stdout

    def audit(self):
        with open(os.path.join(self.state, "audit.jsonl")) as f:
            return [json.loads(l) for l in f if l.strip()]


class Publication(CaTest):
    def test_crl_and_ocsp_over_http(self):
        status, _ = self.ocsp(self.ana["serial"])
        self.assertEqual(status, "good")
        text = self.crl_text("full")
        self.assertIn("Certificate Revocation List", text)
        self.assertNotIn(self.ana["serial"], text.replace(":", "").upper())
        self.crl_text("delta")
        # RFC 6960 appendix A.1: GET with the URL-encoded base64 request
        req = os.path.join(self.tmp, "req.der")
        run(["openssl", "ocsp", "-issuer", self.ca_pem, "-serial", "0x" + self.ana["serial"], "-reqout", req, "-no_nonce"])
        with open(req, "rb") as f:
            b64 = base64.b64encode(f.read()).decode()
        from urllib.parse import quote
        st, r, body = Client(self.srv).request("GET", "/ocsp/" + quote(b64, safe=""))
        self.assertEqual(st, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/ocsp-response")
        resp = os.path.join(self.tmp, "resp.der")
        with open(resp, "wb") as f:
            f.write(body)
        out = run(["openssl", "ocsp", "-respin", resp, "-issuer", self.ca_pem, "-serial", "0x" + self.ana["serial"],
                   "-CAfile", self.ca_pem, "-no_nonce"])
        self.assertIn(": good", out.stdout)

    def test_ocsp_caps_and_types(self):
        c = Client(self.srv)
        st, _, _ = c.request("POST", "/ocsp", raw=b"\x30" * (17 * 1024), headers={"Content-Type": "application/ocsp-request"})
        self.assertEqual(st, 413)
        st, _, _ = c.request("POST", "/ocsp", raw=b"\x30\x00", headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)
        st, r, body = c.request("POST", "/ocsp", raw=b"\x30\x03\x02\x01\x00", headers={"Content-Type": "application/ocsp-request"})
        self.assertEqual(st, 200)  # an OCSP error response (malformedRequest), not an HTTP error
        self.assertEqual(r.getheader("Content-Type"), "application/ocsp-response")
        st, _, _ = c.request("GET", "/crl/other.crl")
        self.assertEqual(st, 404)


class Actions(CaTest):
    def test_suspension_is_admin_only_then_reactivation(self):
        case = self.case(self.officer, self.ana, "suspension", suspension_days=7)
        v = self.visit(self.officer, case)
        self.assertEqual(v["indication"], "TOTAL-PASSED", v)
        # the bundle verifies with the CLI too, bound to the case
        out = subprocess.run([TESTIGO, "verify", "--ca-file", os.path.join(self.state, "keys", "root.pem"),
                              "--for-case", case["id"], "--action", "suspension", "--serial", self.ana["serial"],
                              v["bundle"]], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # an officer cannot apply, with the reason
        st, _, doc = self.officer.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 403, doc)
        self.assertTrue(doc["refused"])
        self.assertIn("may validate but not apply", doc["error"])
        self.assertEqual(self.ocsp(self.ana["serial"])[0], "good")
        # without the CSRF token: refused before anything
        st, _, _ = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {}, csrf=False)
        self.assertEqual(st, 403)
        # the admin sees the verdict, then applies
        st, _, verdict = self.admin.request("GET", "/api/cases/%s/gate" % case["id"])
        self.assertEqual(st, 200)
        self.assertTrue(verdict["allowed"], verdict)
        st, _, res = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 200, res)
        status, text = self.ocsp(self.ana["serial"])
        self.assertEqual(status, "revoked")
        self.assertIn("certificateHold", text)
        self.assertIn("Certificate Hold", self.crl_text("full"))
        # the same bundle is accepted once
        st, _, doc = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 403, doc)
        st, _, c = self.admin.request("GET", "/api/cases/%s" % case["id"])
        self.assertTrue(c["applied"])
        # reactivation, validated by the officer in person, applied by the admin
        case2 = self.case(self.officer, self.ana, "reactivation")
        self.visit(self.officer, case2)
        st, _, res = self.admin.request("POST", "/api/cases/%s/apply" % case2["id"], {})
        self.assertEqual(st, 200, res)
        self.assertEqual(self.ocsp(self.ana["serial"])[0], "good")
        self.assertIn("Remove From CRL", self.crl_text("delta"))
        # the sweep timer runs (every second here) without harm
        time.sleep(1.5)
        self.assertEqual(self.ocsp(self.ana["serial"])[0], "good")

    def test_sweep_timer_revokes_at_the_deadline(self):
        case = self.case(self.officer, self.beto, "suspension", suspension_days=1)
        self.visit(self.officer, case)
        st, _, res = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 200, res)
        self.assertEqual(self.ocsp(self.beto["serial"])[0], "revoked")
        # bring the deadline to the past: the timer (every second here) revokes it, once
        import sqlite3
        db = sqlite3.connect(os.path.join(self.state, "ca.db"))
        db.execute("UPDATE certs SET hold_deadline = ? WHERE serial = ?", (int(time.time()) - 5, self.beto["serial"]))
        db.commit()
        db.close()
        end = time.time() + 30
        while time.time() < end:
            status, text = self.ocsp(self.beto["serial"])
            if "cessationOfOperation" in text:
                break
            time.sleep(0.5)
        self.assertIn("cessationOfOperation", text)
        time.sleep(2.5)  # more ticks: nothing more happens
        sweeps = [e for e in self.audit() if e["kind"] == "action" and e["details"].get("action") == "automatic-revocation"]
        self.assertEqual(len(sweeps), 1, sweeps)
        self.assertTrue(os.listdir(os.path.join(self.state, "evidence", "system")))

    def test_rejected_visit_and_checks(self):
        case = self.case(self.officer, self.beto, "revocation")
        # approving needs the face match; a scan must be a real image
        body = {"outcome": "approved", "attestation": "x", "consent": True, "face_comparison": "no-match",
                "documents": [{"name": "a.png", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}]}
        st, _, doc = self.officer.request("POST", "/api/cases/%s/visit" % case["id"], body)
        self.assertEqual(st, 400, doc)
        body["documents"][0]["data"] = base64.b64encode(b"not a png").decode()
        body["outcome"] = "rejected"
        body["notes"] = "Face does not match."
        st, _, doc = self.officer.request("POST", "/api/cases/%s/visit" % case["id"], body)
        self.assertEqual((st, doc.get("field")), (400, "documents[0]"), doc)
        v = self.visit(self.officer, case, outcome="rejected")
        self.assertEqual(v["outcome"], "rejected")
        st, _, verdict = self.admin.request("GET", "/api/cases/%s/gate" % case["id"])
        self.assertFalse(verdict["allowed"])
        st, _, doc = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 409, doc)  # no approved bundle
        st, r, tar = self.officer.request("GET", "/api/visits/%s/bundle" % v["visit"])
        self.assertEqual((st, r.getheader("Content-Type")), (200, "application/x-tar"))
        st, _, _ = Client(self.srv).request("GET", "/api/ca/certificates")
        self.assertEqual(st, 401)
        st, _, doc = self.officer.request("POST", "/api/ca/certificates", {"name": "x", "national_id": "V-1",
                                                                          "email": "x@example.org", "csr": "x"})
        self.assertEqual(st, 403)


class Token(CaTest):
    def test_gate_check_endpoint(self):
        case = self.case(self.officer, self.beto, "revocation")
        v = self.visit(self.officer, case)
        body = {"case_id": case["id"], "action": "revocation", "serial": self.beto["serial"],
                "actor": {"role": "admin", "id": "admin.root"}}
        c = Client(self.srv)
        st, _, doc = c.request("POST", "/api/gate/check", body)
        self.assertEqual(st, 401, doc)
        st, _, doc = c.request("POST", "/api/gate/check", body, headers={"Authorization": "Bearer wrong-" + TOKEN})
        self.assertEqual(st, 401, doc)
        auth = {"Authorization": "Bearer " + TOKEN}
        st, _, doc = c.request("POST", "/api/gate/check", body, headers=auth)
        self.assertEqual(st, 200, doc)
        self.assertTrue(doc["allowed"], doc)
        # the bundle uploaded, bound to another serial: refused with the reason
        with open(v["bundle"], "rb") as f:
            tar = f.read()
        q = "/api/gate/check?case_id=%s&action=revocation&serial=%s&actor_role=admin&actor_id=admin.root" % (
            case["id"], self.ana["serial"])
        st, _, doc = c.request("POST", q, raw=tar, headers=dict(auth, **{"Content-Type": "application/x-tar"}))
        self.assertEqual(st, 200, doc)
        self.assertFalse(doc["allowed"], doc)
        self.assertTrue(doc["reason"], doc)
        # a path outside the evidence directory is refused
        body["bundle"] = "/etc/passwd"
        st, _, doc = c.request("POST", "/api/gate/check", body, headers=auth)
        self.assertEqual(st, 400, doc)

    def test_step_ca_webhook(self):
        payload = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "provisionerName": "testigo",
                              "x509CertificateRequest": {"subject": {"commonName": "Ana Pérez",
                                                                     "serialNumber": "V-12345678"}}}).encode()
        mac = hmac.new(base64.b64decode(STEP_SECRET), payload, hashlib.sha256).hexdigest()
        c = Client(self.srv)
        st, _, doc = c.request("POST", "/api/gate/step-ca", raw=payload,
                               headers={"Content-Type": "application/json", "X-Smallstep-Signature": "00" * 32})
        self.assertEqual(st, 401, doc)
        st, _, doc = c.request("POST", "/api/gate/step-ca", raw=payload,
                               headers={"Content-Type": "application/json", "X-Smallstep-Signature": mac})
        self.assertEqual((st, doc["allow"]), (200, False), doc)
        # an applied renewal waiting for its certificate: step-ca may issue it
        case = self.case(self.officer, self.ana, "renewal")
        self.visit(self.officer, case)
        st, _, res = self.admin.request("POST", "/api/cases/%s/apply" % case["id"], {})
        self.assertEqual(st, 200, res)
        st, _, doc = c.request("POST", "/api/gate/step-ca", raw=payload,
                               headers={"Content-Type": "application/json", "X-Smallstep-Signature": mac})
        self.assertEqual((st, doc["allow"]), (200, True), doc)
        # once the holder completed it, no more
        ana = Client(self.srv)
        self.assertEqual(ana.holder_login("V-12345678")[0], 200)
        _, csr = self.csr("Ana Pérez", "V-12345678")
        st, _, done = ana.request("POST", "/api/holder/cases/%s/renew" % case["id"], {"csr": csr})
        self.assertEqual(st, 200, done)
        st, _, doc = c.request("POST", "/api/gate/step-ca", raw=payload,
                               headers={"Content-Type": "application/json", "X-Smallstep-Signature": mac})
        self.assertEqual((st, doc["allow"]), (200, False), doc)

    def signed_mail(self, key, body_text):
        body = os.path.join(self.tmp, "body-%d.txt" % time.monotonic_ns())
        with open(body, "w") as f:
            f.write(body_text)
        out = body + ".eml"
        run(["openssl", "cms", "-sign", "-in", body, "-signer", key + ".crt", "-inkey", key, "-text",
             "-from", "ana@example.org", "-to", "ra@example.org", "-subject", "Solicitud", "-out", out])
        with open(out, "rb") as f:
            return f.read()

    def test_intake_endpoint(self):
        mail = self.signed_mail(self.ana_key, "Nombre: Ana Pérez\nCédula: V-12345678\nCorreo: ana@example.org\n"
                                              "Solicitud: suspensión\nMotivo: viaje\nDuración: 5 días\n")
        c = Client(self.srv)
        hdr = {"Content-Type": "message/rfc822"}
        st, _, doc = c.request("POST", "/api/intake", raw=mail, headers=dict(hdr, Authorization="Bearer nope"))
        self.assertEqual(st, 401)
        auth = dict(hdr, Authorization="Bearer " + TOKEN)
        st, _, doc = c.request("POST", "/api/intake", raw=mail, headers=dict(auth, **{"Content-Type": "text/plain"}))
        self.assertEqual(st, 415)
        st, _, doc = c.request("POST", "/api/intake", raw=mail, headers=auth)
        self.assertEqual(st, 201, doc)
        self.assertEqual((doc["action"], doc["suspension_days"]), ("suspension", 5))
        # the console lists the case; the admin applies it with the e-mail's bundle
        st, _, listed = self.admin.request("GET", "/api/cases/%s" % doc["case_id"])
        self.assertEqual((st, listed["channel"]), (200, "signed-email"), listed)
        st, _, res = self.admin.request("POST", "/api/cases/%s/apply" % doc["case_id"], {})
        self.assertEqual(st, 200, res)
        self.assertEqual(self.ocsp(self.ana["serial"])[0], "revoked")
        # the same message again is a replay
        st, _, again = c.request("POST", "/api/intake", raw=mail, headers=auth)
        self.assertEqual(st, 422, again)
        self.assertTrue(again["refused"])
        # over the cap: refused from Content-Length
        st, _, _ = c.request("POST", "/api/intake", raw=b"x" * (4 * 1024 * 1024 + 1), headers=auth)
        self.assertEqual(st, 413)


class Holders(CaTest):
    def test_login_rate_limited_and_audited(self):
        bad = Client(self.srv)
        self.assertEqual(bad.login("ro.lopez", "not the password")[0], 401)
        c = Client(self.srv)
        for i in range(4):
            st, doc = c.holder_login("V-12345678", "wrong password %d" % i)
            self.assertEqual(st, 401, doc)
        # five failures from this address (officer and holder logins count together): refused
        st, doc = c.holder_login("V-12345678")
        self.assertEqual(st, 429, doc)
        kinds = [(e["kind"], e["actor"]) for e in self.audit()]
        self.assertIn(("login-failed", "holder:V-12345678"), kinds)
        self.assertIn(("login", "officer:ro.lopez"), kinds)
        self.assertIn(("login", "officer:admin.root"), kinds)
        with open(os.path.join(self.state, "audit.jsonl")) as f:
            text = f.read()
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("wrong password", text)
        st, _, _ = self.officer.request("POST", "/api/logout", {})
        self.assertEqual(st, 200)
        kinds = [(e["kind"], e["actor"]) for e in self.audit()]
        self.assertIn(("logout", "officer:ro.lopez"), kinds)
        self.assertEqual(sum(1 for k in kinds if k == ("login-failed", "officer:ro.lopez")), 1)
        # the first sweep tick time-stamped the head, and the chain verifies
        self.assertIn("timestamp", [e["kind"] for e in self.audit()])
        out = subprocess.run([TESTIGO, "audit", "verify", os.path.join(self.state, "audit.jsonl"), "--ca-file",
                              os.path.join(self.state, "keys", "root.pem")],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_holder_sees_only_own(self):
        ana = Client(self.srv)
        self.assertEqual(ana.holder_login("v-12.345.678")[0], 200)  # normalised
        st, _, doc = ana.request("GET", "/api/holder/certificates")
        self.assertEqual(st, 200)
        self.assertEqual([c["serial"] for c in doc["certificates"]], [self.ana["serial"]])
        st, _, _ = ana.request("GET", "/api/holder/certificates/%s/pem" % self.beto["serial"])
        self.assertEqual(st, 404)
        st, _, doc = ana.request("POST", "/api/holder/certificates/%s/revoke" % self.beto["serial"],
                                 {"reason": "key-compromise", "details": "not mine"})
        self.assertEqual(st, 404, doc)
        self.assertEqual(self.ocsp(self.beto["serial"])[0], "good")
        beto_case = self.case(self.officer, self.beto, "renewal")
        st, _, doc = ana.request("GET", "/api/holder/cases/%s" % beto_case["id"])
        self.assertEqual(st, 404)
        st, _, doc = ana.request("GET", "/api/holder/cases")
        self.assertEqual(doc["cases"], [])
        # an officer's cookie is no holder session, and the reverse
        st, _, _ = self.officer.request("GET", "/api/holder/certificates")
        self.assertEqual(st, 401)
        st, _, _ = ana.request("GET", "/api/cases")
        self.assertEqual(st, 401)
        # CSRF on the holder's state changes
        st, _, _ = ana.request("POST", "/api/holder/certificates/%s/revoke" % self.ana["serial"],
                               {"reason": "key-compromise", "details": "x"}, csrf=False)
        self.assertEqual(st, 403)

    def test_holder_revokes_own_certificate(self):
        ana = Client(self.srv)
        self.assertEqual(ana.holder_login("V-12345678")[0], 200)
        st, _, doc = ana.request("POST", "/api/holder/certificates/%s/revoke" % self.ana["serial"],
                                 {"reason": "key-compromise", "details": "Laptop stolen.",
                                  "compromised_at": "2026-01-02T03:04:05Z"})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["indication"], "TOTAL-PASSED")
        status, text = self.ocsp(self.ana["serial"])
        self.assertEqual(status, "revoked")
        self.assertIn("keyCompromise", text)
        st, _, doc2 = ana.request("GET", "/api/holder/certificates")
        self.assertEqual(doc2["certificates"][0]["state"], "revoked")
        st, _, cases = ana.request("GET", "/api/holder/cases")
        self.assertEqual([(c["channel"], c["action"], c["applied"]) for c in cases["cases"]],
                         [("portal", "revocation", True)])
        # the portal bundle holds the authenticated request
        listing = run(["tar", "tf", doc["bundle"]]).stdout
        self.assertIn("data/documents/request.json", listing)
        st, _, again = ana.request("POST", "/api/holder/certificates/%s/revoke" % self.ana["serial"],
                                   {"reason": "cessation-of-operation", "details": "again"})
        self.assertEqual(st, 409, again)

    def test_holder_completes_renewal(self):
        case = self.case(self.officer, self.beto, "renewal")
        self.visit(self.officer, case)
        beto = Client(self.srv)
        self.assertEqual(beto.holder_login("V-87654321")[0], 200)
        st, _, c = beto.request("GET", "/api/holder/cases/%s" % case["id"])
        self.assertEqual((st, c["state"], c["applied"]), (200, "approved", False), c)
        st, _, doc = beto.request("POST", "/api/holder/cases/%s/renew" % case["id"], {"csr": "not a csr"})
        self.assertEqual(st, 400)
        _, csr = self.csr("Beto Ruiz", "V-87654321")
        st, _, doc = beto.request("POST", "/api/holder/cases/%s/renew" % case["id"], {"csr": csr})
        self.assertEqual(st, 200, doc)
        self.assertNotEqual(doc["serial"], self.beto["serial"])
        crt = os.path.join(self.tmp, "new.pem")
        with open(crt, "w") as f:
            f.write(doc["certificate"])
        out = run(["openssl", "verify", "-CAfile", self.ca_pem, crt])
        self.assertIn("OK", out.stdout)
        st, _, doc2 = beto.request("POST", "/api/holder/cases/%s/renew" % case["id"], {"csr": csr})
        self.assertEqual(st, 409, doc2)
        st, _, certs = beto.request("GET", "/api/holder/certificates")
        states = {c["serial"]: c["state"] for c in certs["certificates"]}
        self.assertEqual(states, {self.beto["serial"]: "superseded", doc["serial"]: "valid"})


if __name__ == "__main__":
    main()
