#!/usr/bin/env python3
"""testigod HTTP API: authentication, CSRF, rate limiting, case validation,
join links, static files."""
import os, sqlite3, sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(__file__))
from sigtest import ServerTest, main, PASSWORD


class Auth(ServerTest):
    def test_officer_api_without_login_is_401(self):
        for method, path in [("GET", "/api/cases"), ("POST", "/api/cases"), ("GET", "/api/cases/RA-1"),
                             ("POST", "/api/cases/RA-1/sessions"), ("GET", "/api/sessions"),
                             ("POST", "/api/sessions/x/close"), ("GET", "/api/sessions/x/bundle"),
                             ("POST", "/api/logout"), ("GET", "/api/me")]:
            st, _, doc = self.srv.request(method, path, {} if method == "POST" else None)
            self.assertEqual(st, 401, (method, path, doc))
        self.srv.cookie = "testigo_session=" + "A" * 43
        st, _, _ = self.srv.request("GET", "/api/cases")
        self.assertEqual(st, 401)

    def test_login_cookie_and_logout(self):
        st, r, doc = self.srv.login()
        self.assertEqual(st, 200, doc)
        cookie = r.getheader("Set-Cookie")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP on loopback
        self.assertGreaterEqual(len(self.srv.cookie.split("=", 1)[1]), 22)
        self.assertEqual(doc["officer"]["id"], "ro.lopez")
        self.assertEqual(doc["officer"]["name"], "Andrés López")
        st, _, me = self.srv.request("GET", "/api/me")
        self.assertEqual((st, me["csrf_token"]), (200, self.srv.csrf))
        # the database holds only the hash of the session id
        db = sqlite3.connect(os.path.join(self.srv.state, "testigo.db"))
        raw = self.srv.cookie.split("=", 1)[1]
        self.assertEqual(db.execute("select count(*) from logins where id_hash = ?", (raw,)).fetchone()[0], 0)
        db.close()
        st, _, _ = self.srv.request("POST", "/api/logout", csrf=False)
        self.assertEqual(st, 403)
        st, _, _ = self.srv.request("POST", "/api/logout")
        self.assertEqual(st, 200)
        st, _, _ = self.srv.request("GET", "/api/cases")
        self.assertEqual(st, 401)

    def test_wrong_password_then_rate_limited(self):
        for i in range(5):
            st, _, doc = self.srv.login(password="wrong password %d" % i)
            self.assertEqual(st, 401, doc)
        st, r, doc = self.srv.login()  # even the right password is refused now
        self.assertEqual(st, 429, doc)
        self.assertGreater(int(r.getheader("Retry-After")), 0)
        st, _, _ = self.srv.login(user="nobody", password="x" * 12)
        self.assertEqual(st, 429)  # per IP too

    def test_unknown_user_is_401(self):
        st, _, _ = self.srv.login(user="nobody", password=PASSWORD)
        self.assertEqual(st, 401)

    def test_login_body_checked(self):
        st, _, _ = self.srv.request("POST", "/api/login", raw=b"{", auth=False)
        self.assertEqual(st, 400)
        st, _, _ = self.srv.request("POST", "/api/login", {"username": "a", "password": "b", "x": 1}, auth=False)
        self.assertEqual(st, 400)
        st, _, _ = self.srv.request("POST", "/api/login", raw=b'{"username":"a","password":"b"}', auth=False,
                                    headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)


class Cases(ServerTest):
    def setUp(self):
        super().setUp()
        self.assertEqual(self.srv.login()[0], 200)

    def case(self, **over):
        c = {"holder_name": "Ana Pérez", "national_id": "V-12345678", "email": "ana@example.org",
             "serial": "0A1B2C", "action": "suspension", "reason": "Lost token.", "suspension_days": 7}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def test_csrf_missing_or_wrong_is_403(self):
        st, _, doc = self.srv.request("POST", "/api/cases", self.case(), csrf=False)
        self.assertEqual(st, 403, doc)
        st, _, doc = self.srv.request("POST", "/api/cases", self.case(), headers={"X-CSRF-Token": "nope"}, csrf=False)
        self.assertEqual(st, 403, doc)

    def test_create_list_get(self):
        st, _, doc = self.srv.request("POST", "/api/cases", self.case())
        self.assertEqual(st, 201, doc)
        self.assertRegex(doc["id"], r"^RA-\d{4}-\d{6}$")
        self.assertEqual(doc["serial"], "0A1B2C")
        self.assertEqual(doc["suspension_days"], 7)
        st, _, lst = self.srv.request("GET", "/api/cases")
        self.assertEqual([c["id"] for c in lst["cases"]], [doc["id"]])
        st, _, one = self.srv.request("GET", "/api/cases/" + doc["id"])
        self.assertEqual((st, one["sessions"]), (200, []))
        st, _, _ = self.srv.request("GET", "/api/cases/RA-0000-999999")
        self.assertEqual(st, 404)

    def bad(self, case, field, status=400):
        st, _, doc = self.srv.request("POST", "/api/cases", case)
        self.assertEqual(st, status, doc)
        if field:
            self.assertEqual(doc.get("field"), field, doc)
            self.assertIn(field, doc["error"])

    def test_validation_errors_name_the_field(self):
        self.bad(self.case(suspension_days=16), "suspension_days")
        self.bad(self.case(suspension_days=0), "suspension_days")
        self.bad(self.case(suspension_days="7"), "suspension_days")
        self.bad(self.case(suspension_days=None), "suspension_days")
        self.bad(self.case(action="renewal"), "suspension_days")  # only for a suspension
        self.bad(self.case(serial="12:34"), "serial")
        self.bad(self.case(serial="G1"), "serial")
        self.bad(self.case(serial="1" * 41), "serial")
        self.bad(self.case(reason=None), "reason")
        self.bad(self.case(holder_name=None), "holder_name")
        self.bad(self.case(holder_name=""), "holder_name")
        self.bad(self.case(email="not-an-address"), "email")
        self.bad(self.case(national_id="a b"), "national_id")
        self.bad(self.case(action="delete"), "action")
        self.bad(dict(self.case(), extra=1), "extra")

    def test_body_limits(self):
        st, _, doc = self.srv.request("POST", "/api/cases", self.case(reason="x" * 70000))
        self.assertEqual(st, 413, doc)
        st, _, doc = self.srv.request("POST", "/api/cases", raw=b'{"holder_name": "a",}')
        self.assertEqual(st, 400, doc)
        st, _, doc = self.srv.request("POST", "/api/cases", raw=b'[1]')
        self.assertEqual(st, 400, doc)
        st, _, doc = self.srv.request("POST", "/api/cases", raw=b'{"a":1,"a":2}')
        self.assertEqual(st, 400, doc)

    def test_join_link(self):
        c = self.srv.new_case()
        st, _, s = self.srv.request("POST", "/api/cases/%s/sessions" % c["id"])
        self.assertEqual(st, 201, s)
        token = s["join_path"].rsplit("/", 1)[1]
        self.assertGreaterEqual(len(token), 22)  # >= 128 bits in base64url
        self.assertTrue(s["join_url"].endswith(s["join_path"]))
        self.assertFalse(s["link_used"])
        db = sqlite3.connect(os.path.join(self.srv.state, "testigo.db"))
        rows = db.execute("select token_hash from sessions").fetchall()
        db.close()
        self.assertEqual(len(rows), 1)
        self.assertNotEqual(rows[0][0], token)  # only the hash is stored
        st, _, page = self.srv.request("GET", s["join_path"], auth=False)
        self.assertEqual(st, 200)
        st, _, _ = self.srv.request("POST", "/api/cases/RA-0000-000000/sessions")
        self.assertEqual(st, 404)


class Static(ServerTest):
    def test_static_and_headers(self):
        st, r, body = self.srv.request("GET", "/", auth=False)
        self.assertEqual(st, 200)
        self.assertIn(b"Testigo", body)
        self.assertEqual(r.getheader("Referrer-Policy"), "no-referrer")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        for path in ["/../meson.build", "/%2e%2e/meson.build", "/nope.html", "/.hidden"]:
            st, _, _ = self.srv.request("GET", path, auth=False)
            self.assertEqual(st, 404, path)
        st, _, _ = self.srv.request("DELETE", "/", auth=False)
        self.assertEqual(st, 405)

    def test_unimplemented_is_501(self):
        self.assertEqual(self.srv.login()[0], 200)
        st, _, doc = self.srv.request("GET", "/api/officers")
        self.assertEqual(st, 501, doc)
        self.assertIn("not supported", doc["error"])
        st, _, doc = self.srv.request("GET", "/api/health", auth=False)
        self.assertEqual((st, doc["status"], doc["recording_available"]), (200, "ok", True))


def tiny_png(width=2, height=1):
    import struct, zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Stills(ServerTest):
    """GET /api/sessions/<id>/stills/<name>: the recorder's stills for the officer console."""

    def setUp(self):
        super().setUp()
        self.assertEqual(self.srv.login()[0], 200)
        self.a = self.srv.new_session(self.srv.new_case()["id"])["id"]
        self.b = self.srv.new_session(self.srv.new_case(national_id="V-87654321", serial="0B0B")["id"])["id"]
        self.png = tiny_png()
        self.stills = os.path.join(self.srv.state, "sessions", self.a, "stills")
        os.makedirs(self.stills, exist_ok=True)
        with open(os.path.join(self.stills, "face-1.png"), "wb") as f:  # as the recorder commits it
            f.write(self.png)

    def url(self, name, sid=None):
        return "/api/sessions/%s/stills/%s" % (sid or self.a, name)

    def test_officer_gets_the_png(self):
        st, r, body = self.srv.request("GET", self.url("face-1.png"))
        self.assertEqual(st, 200, body)
        self.assertEqual(body, self.png)
        self.assertEqual(r.getheader("Content-Type"), "image/png")
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")

    def test_unauthenticated_is_401(self):
        st, _, doc = self.srv.request("GET", self.url("face-1.png"), auth=False)
        self.assertEqual(st, 401, doc)
        saved, self.srv.cookie = self.srv.cookie, "testigo_session=" + "A" * 43
        st, _, _ = self.srv.request("GET", self.url("face-1.png"))
        self.srv.cookie = saved
        self.assertEqual(st, 401)

    def test_bad_names_are_400(self):
        for name in ["face-1.txt", ".face-1.png", "-face.png", "face%201.png", "a" * 61 + ".png", ".png",
                     "face-1.PNG"]:
            st, _, doc = self.srv.request("GET", self.url(name))
            self.assertEqual(st, 400, (name, doc))
        # traversal: refused as a bad name, or as no such path once decoded
        for name in ["%2e%2e%2f%2e%2e%2ftestigo.db", "..%2Fstills%2Fface-1.png", "..%2F..%2F" + self.b]:
            st, _, doc = self.srv.request("GET", self.url(name))
            self.assertIn(st, (400, 404), (name, doc))
        st, _, _ = self.srv.request("GET", self.url("a" * 60 + ".png"))  # 64 bytes: a name, just absent
        self.assertEqual(st, 404)

    def test_absent_other_session_or_unknown_is_404(self):
        for path in [self.url("face-2.png"), self.url("face-1.png", self.b), self.url("face-1.png", "ses-unknown"),
                     self.url("face-1.png", "%2e%2e"), self.url("face-1.png", "x" * 65),
                     self.url("face-1.png") + "/x", "/api/sessions/%s/stills" % self.a]:
            st, _, doc = self.srv.request("GET", path)
            self.assertEqual(st, 404, (path, doc))
        st, _, _ = self.srv.request("POST", self.url("face-1.png"), {})
        self.assertEqual(st, 404)

    def test_links_are_not_followed(self):
        os.symlink(os.path.join(self.stills, "face-1.png"), os.path.join(self.stills, "link.png"))
        os.symlink(self.stills, os.path.join(self.srv.state, "sessions", self.b, "stills"))
        for path in [self.url("link.png"), self.url("face-1.png", self.b)]:
            st, _, doc = self.srv.request("GET", path)
            self.assertEqual(st, 404, (path, doc))
        os.mkdir(os.path.join(self.stills, "dir.png"))
        self.assertEqual(self.srv.request("GET", self.url("dir.png"))[0], 404)

    def test_oversized_or_not_png_is_refused(self):
        with open(os.path.join(self.stills, "big.png"), "wb") as f:
            f.write(self.png[:8])
            f.truncate(16 * 1024 * 1024 + 1)  # one byte over the cap (sparse)
        with open(os.path.join(self.stills, "text.png"), "wb") as f:
            f.write(b"not a png at all")
        for name in ["big.png", "text.png"]:
            st, _, doc = self.srv.request("GET", self.url(name))
            self.assertEqual(st, 500, (name, doc))
            self.assertIn(name, doc["error"])
        self.assertEqual(self.srv.request("GET", self.url("face-1.png"))[0], 200)  # still serving


if __name__ == "__main__":
    main()
