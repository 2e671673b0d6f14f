#!/usr/bin/env python3
"""The CA core through `testigo ca` (TAP): the store, the certificate
lifecycle behind the evidence gate with an injected clock (TESTIGO_NOW) for
the 15-day rule, every gate refusal, the deadline sweep and its system
evidence, full and delta CRLs read back with `openssl crl`, OCSP answers read
back with `openssl ocsp`, and signed e-mail intake.

usage: test-ca-store.py TESTIGO   (or the environment variable TESTIGO)

Evidence bundles are sealed with `testigo seal` from version 2 in-person
records (one attestation document each) and, once, a teleconference fixture
(tests/integration/make-fixture.py). Set TESTIGO_KEEP_TMP=1 to keep the
work directory. Python 3 standard library and the openssl command only.
"""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402  (tests/tap.py)
from tap import Fail, add, check, test  # noqa: E402,F401

if len(sys.argv) >= 2:
    TESTIGO = os.path.abspath(sys.argv[1])
elif "TESTIGO" in os.environ:
    TESTIGO = os.path.abspath(os.environ["TESTIGO"])
else:
    sys.stderr.write(__doc__)
    sys.exit(2)
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURE = os.path.join(SRC, "tests", "integration", "make-fixture.py")

DAY = 86400
NOW = int(time.time())
T0 = NOW + 120            # the day-0 of the lifecycle clock (the store's clock only)
WORK = None
STATE = None
SERIALS = {}              # label -> serial
CERTS = {}                # label -> cert path
KEYS = {}                 # label -> key path
IDS = {}                  # label -> national id
SEQ = [0]

SANITIZER = re.compile(rb"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: AddressSanitizer")


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def path(*parts):
    return os.path.join(WORK, *parts)


def run(args, now=None, input=None, timeout=300):
    env = dict(os.environ)
    env.pop("TESTIGO_NOW", None)
    if now is not None:
        env["TESTIGO_NOW"] = str(now)
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, env=env, input=input)
    m = SANITIZER.search(p.stderr or b"")
    check(m is None, "sanitizer report: " + (p.stderr[m.start():m.start() + 1500].decode(errors="replace") if m else ""))
    return p


def ca(*args, now=None, state=None):
    p = run([TESTIGO, "ca", args[0], "--state", state or STATE, *args[1:]], now=now)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ca_ok(*args, now=None, state=None):
    rc, out, err = ca(*args, now=now, state=state)
    check(rc == 0, f"testigo ca {' '.join(map(str, args))}: exit {rc}: {err.strip()}")
    return out


def ca_refused(expect, *args, now=None, code=9):
    rc, out, err = ca(*args, now=now)
    check(rc == code, f"testigo ca {' '.join(map(str, args))}: exit {rc}, wanted {code}: {err.strip()} {out.strip()}")
    check(expect in err, f"the refusal does not say {expect!r}: {err.strip()}")
    return err


def show(label_or_serial, now=None):
    serial = SERIALS.get(label_or_serial, label_or_serial)
    return json.loads(ca_ok("show", serial, now=now))


def openssl(*args, input=None):
    p = run(["openssl", *args], input=input)
    check(p.returncode == 0, f"openssl {' '.join(map(str, args))}: {p.stderr.decode().strip()}")
    return p.stdout.decode()


def issue(label, name, nid, email):
    cert, key = path(f"{label}.pem"), path(f"{label}.key")
    out = ca_ok("issue", "--name", name, "--id", nid, "--email", email, "--out-cert", cert, "--out-key", key)
    SERIALS[label] = out.strip()
    CERTS[label], KEYS[label], IDS[label] = cert, key, nid
    return SERIALS[label]


def bundle(case, action, label, officer="ro.ana", outcome="approved", days=None, reason="Requested by the holder.",
           holder=None, serial=None, channel="in-person", role="registration officer", state=None):
    """Seals a version 2 in-person record for the case and returns the bundle path."""
    SEQ[0] += 1
    d = path(f"b{SEQ[0]}")
    os.makedirs(d)
    att = os.path.join(d, "attestation.txt")
    with open(att, "w") as f:
        f.write(f"Attestation {SEQ[0]}: {action} of {serial or SERIALS[label]} for case {case}.\n")
    sha = hashlib.sha256(open(att, "rb").read()).hexdigest()
    started = NOW - 3600
    rec = {
        "version": 2,
        "case": {"id": case, "action": action, "reason": reason, "channel": channel},
        "holder": {"name": "Holder " + label, "national_id": holder or IDS[label], "email": f"{label}@example.ve"},
        "certificate": {"serial": serial or SERIALS[label], "issuer": "CN=Testigo Holder CA,O=Testigo (development),C=VE"},
        "officer": {"id": officer, "name": "Officer " + officer, "role": role},
        "session": {"started_at": rfc3339(started), "ended_at": rfc3339(started + 600), "duration_s": 600},
        "consent": {"text_version": "desk-v1", "text_sha256": "0" * 64, "accepted_at": rfc3339(started + 30),
                    "shown_information": ["Purpose of the visit"]},
        "document": {"type": "id-card", "issuer": "VEN", "number": "123", "expiry": "2031-01-01",
                     "data_matches_case": True, "comparison": [{"field": "name", "match": True}]},
        "documents": [{"name": "attestation.txt", "sha256": sha, "media_type": "text/plain"}],
        "outcome": {"result": outcome, "notes": "" if outcome == "approved" else "The holder could not be identified.",
                    "completed_at": rfc3339(started + 600)},
        "retention": {"period_years": 15, "delete_after": "2041-01-01"},
    }
    if days is not None:
        rec["case"]["suspension_days"] = days
    with open(os.path.join(d, "record.json"), "w") as f:
        json.dump(rec, f, ensure_ascii=False)
    out = os.path.join(d, "bundle.tar")
    p = run([TESTIGO, "seal", "--keys", os.path.join(state or STATE, "keys"), "--record", os.path.join(d, "record.json"),
             "--document", f"attestation.txt={att}", "--out", out])
    check(p.returncode == 0, f"seal: {p.stderr.decode().strip()}")
    return out


def gate_args(case, action, label, b, who="admin:root", serial=None):
    return ["--case", case, "--action", action, "--serial", serial or SERIALS[label], "--bundle", b, "--as", who]


def apply(case, action, label, b, who="admin:root", now=None, extra=()):
    return ca_ok("apply", *gate_args(case, action, label, b, who), *extra, now=now)


def crl_text(delta=False, now=None):
    out = path("delta.der" if delta else "full.der")
    ca_ok("crl", *(["--delta"] if delta else []), "--out", out, now=now)
    return openssl("crl", "-inform", "DER", "-in", out, "-noout", "-text")


def openssl_date(t):
    """A time as `openssl crl -text` prints it: "Nov  5 09:03:00 2026 GMT"."""
    return time.strftime("%b %e %H:%M:%S %Y GMT", time.gmtime(t))


def crl_entry(text, serial):
    """The lines of one entry of `openssl crl -text`, or None."""
    m = re.search(r"Serial Number: " + serial + r"\n(.*?)(?=\n    Serial Number: |\n    Signature Algorithm|\Z)",
                  text, re.S)
    return m.group(1) if m else None


def ocsp(label=None, serial=None, now=None):
    req, resp = path("ocsp-req.der"), path("ocsp-resp.der")
    ca_pem = os.path.join(STATE, "ca", "ca.pem")
    target = ["-cert", CERTS[label]] if label else ["-serial", "0x" + serial]
    openssl("ocsp", "-issuer", ca_pem, *target, "-reqout", req)
    ca_ok("ocsp", "--reqin", req, "--respout", resp, now=now)
    # the request carries a nonce (openssl's default); the response must echo it
    text = openssl("ocsp", "-respin", resp, "-resp_text", "-no_nonce", "-validity_period", str(40 * DAY), "-CAfile", ca_pem, "-issuer", ca_pem, *target)
    nonce = re.search(r"OCSP Nonce: \n\s+(\S+)", openssl("ocsp", "-reqin", req, "-req_text"))
    check(nonce is not None and nonce.group(1) in text, "the nonce is not echoed")
    check("Response verify OK" in run(["openssl", "ocsp", "-respin", resp, "-no_nonce", "-CAfile", ca_pem]).stderr.decode(),
          "the response does not verify against the CA")
    return text


def db():
    return sqlite3.connect(os.path.join(STATE, "ca.db"))


def audit_kinds():
    kinds = []
    with open(os.path.join(STATE, "audit.jsonl")) as f:
        for line in f:
            kinds.append(json.loads(line)["kind"])
    return kinds


# ------------------------------------------------------------------ setup

def setup():
    global WORK, STATE
    WORK = tempfile.mkdtemp(prefix="testigo-ca-")
    STATE = path("state")
    ca_ok("init", "--bits", "2048")
    ca_ok("grant", "ro.ana", "suspension", "reactivation", "revocation", "renewal")
    ca_ok("grant", "ro.nope", "renewal")
    ca_ok("grant", "root", "admin")
    for label, nid in (("a", "V-10000001"), ("b", "V-10000002"), ("c", "V-10000003"), ("d", "V-10000004"),
                       ("e", "V-10000005"), ("f", "V-10000006"), ("g", "V-10000007"), ("h", "V-10000008")):
        issue(label, "Holder " + label, nid, f"{label}@example.ve")



# ------------------------------------------------------------- the store

@test("init is idempotent; the store is private (0700 dirs, 0600 keys and database)")
def _():
    ca_ok("init")
    check(os.stat(STATE).st_mode & 0o777 == 0o700, "state dir not 0700")
    check(os.stat(os.path.join(STATE, "ca", "ca.key")).st_mode & 0o777 == 0o600, "ca.key not 0600")
    check(os.stat(os.path.join(STATE, "ca.db")).st_mode & 0o077 == 0, "ca.db readable by others")
    rc, _, err = ca("list", state=path("nowhere"))
    check(rc == 10 and "testigo ca init" in err, f"a missing store: exit {rc} {err}")


@test("issued certificate: profile (keyUsage, EKU, SAN e-mail, serialNumber) and listed as valid")
def _():
    text = openssl("x509", "-in", CERTS["a"], "-noout", "-text", "-serial")
    for want in ("Digital Signature, Non Repudiation", "E-mail Protection", "TLS Web Client Authentication",
                 "email:a@example.ve", "serialNumber = V-10000001", "CA:FALSE", f"serial={SERIALS['a']}"):
        check(want in text, f"{want!r} missing from the certificate")
    j = show("a")
    check(j["state"] == "valid" and j["national_id"] == "V-10000001" and j["email"] == "a@example.ve", str(j))
    lst = json.loads(ca_ok("list", "--holder", "V-10000001", "--json"))
    check(len(lst) == 1 and lst[0]["serial"] == SERIALS["a"], str(lst))


@test("issue from a CSR: the holder's key; a CSR with a bad signature is refused")
def _():
    key, csr, cert = path("csr.key"), path("csr.pem"), path("csr-cert.pem")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-subj", "/CN=ignored", "-out", csr)
    out = ca_ok("issue", "--name", "CSR Holder", "--id", "V-20000000", "--email", "csr@example.ve", "--csr", csr,
                "--out-cert", cert)
    pub1 = openssl("x509", "-in", cert, "-noout", "-pubkey")
    pub2 = openssl("pkey", "-in", key, "-pubout")
    check(pub1 == pub2, "the certificate does not carry the CSR's key")
    check("CN = CSR Holder" in openssl("x509", "-in", cert, "-noout", "-subject"), "subject not from the request")
    lines = open(csr).read().splitlines()
    mid = len(lines) - 3
    lines[mid] = lines[mid][:10] + ("A" if lines[mid][10] != "A" else "B") + lines[mid][11:]
    with open(path("bad.csr"), "w") as f:
        f.write("\n".join(lines) + "\n")
    rc, _, err = ca("issue", "--name", "X", "--id", "V-1", "--email", "x@example.ve", "--csr", path("bad.csr"),
                    "--out-cert", path("bad-cert.pem"))
    check(rc in (4, 6), f"a tampered CSR: exit {rc} {err}")
    check(not os.path.exists(path("bad-cert.pem")), "a certificate was written for a tampered CSR")
    SERIALS["csr"] = out.strip()


@test("import: a certificate of another CA is refused; one already there is EXISTS (7)")
def _():
    ca_refused("not issued by this CA", "import", os.path.join(STATE, "keys", "ra.pem"))
    rc, _, err = ca("import", CERTS["a"])
    check(rc == 7 and "already" in err, f"re-import: exit {rc} {err}")


@test("import: a certificate of this CA issued elsewhere is added with its identity")
def _():
    other = path("other-state")
    shutil.copytree(os.path.join(STATE, "ca"), os.path.join(other, "ca"))
    shutil.copytree(os.path.join(STATE, "keys"), os.path.join(other, "keys"))
    ca_ok("init", state=other)
    cert = path("imported.pem")
    serial = ca_ok("issue", "--name", "Imported One", "--id", "J-12345678-9", "--email", "imp@example.ve",
                   "--out-cert", cert, "--out-key", path("imported.key"), state=other).strip()
    out = ca_ok("import", cert).strip()
    check(out == serial, f"imported {out}, issued {serial}")
    j = show(serial)
    check(j["national_id"] == "J-12345678-9" and j["name"] == "Imported One" and j["email"] == "imp@example.ve", str(j))


@test("settings saved by init (URLs, maximum suspension) apply to later commands")
def _():
    other = path("settings-state")
    ca_ok("init", "--crl-url", "http://crl.example.ve/full.crl", "--delta-crl-url", "http://crl.example.ve/delta.crl",
          "--ocsp-url", "http://ocsp.example.ve/", "--max-suspension-days", "99", state=other)
    cert = path("settings.pem")
    ca_ok("issue", "--name", "S", "--id", "V-1", "--email", "s@example.ve", "--out-cert", cert, "--out-key",
          path("settings.key"), state=other)
    text = openssl("x509", "-in", cert, "-noout", "-text")
    for want in ("URI:http://crl.example.ve/full.crl", "OCSP - URI:http://ocsp.example.ve/", "Freshest CRL",
                 "URI:http://crl.example.ve/delta.crl"):
        check(want in text, f"{want!r} missing:\n{text}")
    rc, out, err = ca("init", "--crl-url", "http://x/a,b", state=other)
    check(rc == 4 and "not a plain http(s) URL" in err, f"a bad URL: {rc} {err}")
    ca_ok("publish", state=other)
    full = openssl("crl", "-inform", "DER", "-in", os.path.join(other, "publication", "full.crl"), "-noout", "-text")
    check("http://crl.example.ve/delta.crl" in full, f"no Freshest CRL in the full CRL:\n{full}")


# ------------------------------------------------------ lifecycle: hold

@test("day 0: suspension for 15 days by the administrator: certificateHold at t0, deadline t0 + 15 days")
def _():
    b = bundle("CASE-A1", "suspension", "a", days=15, reason="Temporary cessation of work.")
    out = apply("CASE-A1", "suspension", "a", b, now=T0)
    check("deadline" in out, out)
    j = show("a", now=T0)
    check(j["state"] == "held" and j["reason"] == "certificateHold", str(j))
    check(j["revocation_time"] == rfc3339(T0) and j["hold_deadline"] == rfc3339(T0 + 15 * DAY), str(j))


@test("held: the full CRL lists certificateHold at t0; OCSP says revoked, certificateHold")
def _():
    text = crl_text(now=T0)
    e = crl_entry(text, SERIALS["a"])
    check(e is not None and "Certificate Hold" in e, f"no hold entry in the full CRL:\n{text}")
    check(f"Revocation Date: {openssl_date(T0)}" in e, f"revocation date is not t0: {e}")
    check("Hold Instruction Code" in e and "Hold Instruction Reject" in e,
          f"no holdInstructionCode id-holdinstruction-reject on the hold: {e}")
    o = ocsp("a", now=T0)
    check("Cert Status: revoked" in o and "certificateHold" in o, o)


@test("day 14: reactivation works; the next delta CRL says removeFromCRL, the full CRL drops it, OCSP good")
def _():
    b = bundle("CASE-A2", "reactivation", "a", reason="The holder found the token.")
    apply("CASE-A2", "reactivation", "a", b, now=T0 + 14 * DAY)
    j = show("a", now=T0 + 14 * DAY)
    check(j["state"] == "valid" and j["revocation_time"] is None, str(j))
    d = crl_text(delta=True, now=T0 + 14 * DAY)
    e = crl_entry(d, SERIALS["a"])
    check("Delta CRL Indicator" in d and e is not None and "Remove From CRL" in e, f"delta CRL:\n{d}")
    f = crl_text(now=T0 + 14 * DAY)
    check(crl_entry(f, SERIALS["a"]) is None, f"the full CRL still lists the reactivated certificate:\n{f}")
    o = ocsp("a", now=T0 + 14 * DAY)
    check("Cert Status: good" in o, o)


@test("day 15: reactivation after the deadline is refused; the sweep revokes with the date t0")
def _():
    b = bundle("CASE-B1", "suspension", "b", days=15)
    apply("CASE-B1", "suspension", "b", b, now=T0)
    out = ca_ok("sweep", now=T0 + 14 * DAY)
    check("revoked 0" in out, f"day 14 sweep: {out}")
    check(show("b", now=T0 + 14 * DAY)["state"] == "held", "day 14: not held any more")
    r = bundle("CASE-B2", "reactivation", "b")
    ca_refused("reactivation after the deadline", "apply", *gate_args("CASE-B2", "reactivation", "b", r),
               now=T0 + 15 * DAY)
    out = ca_ok("sweep", now=T0 + 15 * DAY)
    check("revoked 1" in out, f"day 15 sweep: {out}")
    j = show("b", now=T0 + 15 * DAY)
    check(j["state"] == "revoked" and j["reason"] == "cessationOfOperation", str(j))
    check(j["revocation_time"] == rfc3339(T0), f"the revocation date moved: {j}")
    e = crl_entry(crl_text(now=T0 + 15 * DAY), SERIALS["b"])
    check(e is not None and "Cessation Of Operation" in e, f"full CRL entry: {e}")
    check(f"Revocation Date: {openssl_date(T0)}" in e, f"the CRL's revocation date is not t0: {e}")
    o = ocsp("b", now=T0 + 15 * DAY)
    check("Cert Status: revoked" in o and "cessationOfOperation" in o, o)


@test("the sweep sealed its own system evidence, which verifies bound to its case")
def _():
    sysdir = os.path.join(STATE, "evidence", "system")
    files = sorted(f for f in os.listdir(sysdir) if f.startswith("CASE-B1"))
    check(files == ["CASE-B1-auto-revocation.tar"], f"system evidence: {files}")
    p = run([TESTIGO, "verify", "--json", "--ca-file", os.path.join(STATE, "keys", "root.pem"), "--for-case",
             "CASE-B1-auto-revocation", "--action", "revocation", "--serial", SERIALS["b"], os.path.join(sysdir, files[0])])
    check(p.returncode == 0, f"verify: {p.returncode} {p.stdout.decode()} {p.stderr.decode()}")
    with tarfile.open(os.path.join(sysdir, files[0])) as t:
        rec = json.load(t.extractfile("CASE-B1-auto-revocation/data/record.json"))
        sweep = json.load(t.extractfile("CASE-B1-auto-revocation/data/documents/sweep.json"))
    check(rec["case"]["channel"] == "system" and rec["officer"]["role"] == "system", str(rec["case"]))
    check(sweep["suspended_at"] == rfc3339(T0) and sweep["revocation_time"] == rfc3339(T0), str(sweep))


@test("a second sweep changes nothing: no revocation, no bundle, no database change, no CRL")
def _():
    before = json.loads(ca_ok("list", "--json", now=T0 + 15 * DAY))
    crl_before = open(os.path.join(STATE, "publication", "full.crl"), "rb").read()
    n_actions = db().execute("SELECT count(*) FROM actions").fetchone()[0]
    out = ca_ok("sweep", now=T0 + 15 * DAY + 60)
    check("revoked 0" in out, out)
    out = ca_ok("sweep", now=T0 + 30 * DAY)
    check("revoked 0" in out, out)
    after = json.loads(ca_ok("list", "--json", now=T0 + 15 * DAY))
    check(before == after, "the certificates changed")
    check(len(os.listdir(os.path.join(STATE, "evidence", "system"))) == 1, "a new system bundle")
    check(not os.listdir(os.path.join(STATE, "tmp")), "scratch files left behind")
    check(db().execute("SELECT count(*) FROM actions").fetchone()[0] == n_actions, "a new action")
    check(open(os.path.join(STATE, "publication", "full.crl"), "rb").read() == crl_before, "a new CRL")


@test("two sweeps at once (testigod's timer and cron): one revocation, one bundle, both succeed")
def _():
    issue("k", "Holder k", "V-10000011", "k@example.ve")
    b = bundle("CASE-K1", "suspension", "k", days=1)
    apply("CASE-K1", "suspension", "k", b, now=T0)
    env = dict(os.environ, TESTIGO_NOW=str(T0 + 2 * DAY))
    procs = [subprocess.Popen([TESTIGO, "ca", "sweep", "--state", STATE], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    outs = [(p.wait(timeout=300), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
    check(all(rc == 0 for rc, _, _ in outs), f"sweeps: {outs}")
    n = sum(int(re.search(r"revoked (\d+)", o).group(1)) for _, o, _ in outs)
    check(n == 1, f"{n} revocations: {outs}")
    check(os.path.exists(os.path.join(STATE, "evidence", "system", "CASE-K1-auto-revocation.tar")), "no bundle")
    check(show("k", now=T0 + 2 * DAY)["revocation_time"] == rfc3339(T0), "date")


@test("a suspension longer than the configured maximum is refused, and never more than 15 days")
def _():
    b = bundle("CASE-G1", "suspension", "g", days=12)
    ca_refused("exceeds the maximum of 10 days", "apply", *gate_args("CASE-G1", "suspension", "g", b),
               "--max-suspension-days", "10", now=T0)
    ca_ok("apply", *gate_args("CASE-G1", "suspension", "g", b), "--max-suspension-days", "99", now=T0)
    j = show("g", now=T0)
    check(j["hold_deadline"] == rfc3339(T0 + 12 * DAY), str(j))
    r = bundle("CASE-G2", "reactivation", "g")
    apply("CASE-G2", "reactivation", "g", r, now=T0 + DAY)


# ------------------------------------------------------ revocation

@test("revocation: reason mapped from the record's cause (left the company -> affiliationChanged)")
def _():
    b = bundle("CASE-C1", "revocation", "c", reason="Holder left the company.")
    apply("CASE-C1", "revocation", "c", b, now=T0 + DAY)
    j = show("c", now=T0 + DAY)
    check(j["state"] == "revoked" and j["reason"] == "affiliationChanged", str(j))
    check(j["revocation_time"] == rfc3339(T0 + DAY), str(j))


@test("revocation is final: another revocation, a suspension, a renewal are refused")
def _():
    b = bundle("CASE-C2", "revocation", "c", reason="Ceased activities.")
    ca_refused("revocation is final", "apply", *gate_args("CASE-C2", "revocation", "c", b),
               "--reason", "cessationOfOperation", now=T0 + 2 * DAY)
    s = bundle("CASE-C3", "suspension", "c", days=5)
    ca_refused("is revoked", "apply", *gate_args("CASE-C3", "suspension", "c", s), now=T0 + 2 * DAY)
    r = bundle("CASE-C4", "renewal", "c")
    ca_refused("revoked: renewal refused", "apply", *gate_args("CASE-C4", "renewal", "c", r, who="holder:V-10000003"),
               now=T0 + 2 * DAY)


@test("upgrade to keyCompromise keeps the original revocation date and adds the invalidity date")
def _():
    b = bundle("CASE-C5", "revocation", "c", reason="The private key was compromised.")
    out = ca_ok("apply", *gate_args("CASE-C5", "revocation", "c", b), "--invalidity-date", rfc3339(T0 + 3600),
                now=T0 + 3 * DAY)
    check("key-compromise-upgrade" in out, out)
    j = show("c", now=T0 + 3 * DAY)
    check(j["reason"] == "keyCompromise" and j["revocation_time"] == rfc3339(T0 + DAY), str(j))
    check(j["invalidity_time"] == rfc3339(T0 + 3600), str(j))
    e = crl_entry(crl_text(now=T0 + 3 * DAY), SERIALS["c"])
    check(e is not None and "Key Compromise" in e and "Invalidity Date" in e, f"CRL entry: {e}")
    check(f"Revocation Date: {openssl_date(T0 + DAY)}" in e and openssl_date(T0 + 3600) in e, f"CRL dates: {e}")
    d = crl_text(delta=True, now=T0 + 3 * DAY)
    check(crl_entry(d, SERIALS["c"]) is not None, f"the delta does not carry the changed reason:\n{d}")
    o = ocsp("c", now=T0 + 3 * DAY)
    check("Cert Status: revoked" in o and "keyCompromise" in o, o)
    b2 = bundle("CASE-C6", "revocation", "c", reason="Key compromise again.")
    ca_refused("revocation is final", "apply", *gate_args("CASE-C6", "revocation", "c", b2), now=T0 + 4 * DAY)


@test("the holder may revoke their own certificate, not another's")
def _():
    b = bundle("CASE-H1", "revocation", "h", reason="Ceased the activities.")
    ca_refused("does not hold certificate", "apply", *gate_args("CASE-H1", "revocation", "h", b, who="holder:V-10000001"),
               now=T0 + DAY)
    apply("CASE-H1", "revocation", "h", b, who="holder:V-10000008", now=T0 + DAY)
    check(show("h", now=T0 + DAY)["reason"] == "cessationOfOperation", "not cessationOfOperation")


@test("portal: the holder's own authenticated request backs a revocation, and nothing else")
def _():
    issue("p", "Portal Holder", "V-40000000", "p@example.ve")
    s = bundle("CASE-P1", "suspension", "p", days=3, channel="portal", officer="holder-V-40000000", role="holder")
    ca_refused("backs only a revocation", "apply", *gate_args("CASE-P1", "suspension", "p", s), now=T0)
    other = bundle("CASE-P2", "revocation", "p", channel="portal", officer="holder-V-10000001", role="holder",
                   reason="Private key compromised: laptop stolen.")
    ca_refused("not by the holder of", "apply", *gate_args("CASE-P2", "revocation", "p", other, who="holder:V-40000000"),
               now=T0)
    r = bundle("CASE-P3", "revocation", "p", channel="portal", officer="holder-V-40000000", role="holder",
               reason="Private key compromised: laptop stolen.")
    apply("CASE-P3", "revocation", "p", r, who="holder:V-40000000", now=T0)
    j = show("p", now=T0)
    check(j["state"] == "revoked" and j["reason"] == "keyCompromise", str(j))


# ------------------------------------------------------------ renewal

@test("renewal: approved by the gate, completed with the holder's CSR: new serial, the old one superseded")
def _():
    b = bundle("CASE-D1", "renewal", "d")
    out = apply("CASE-D1", "renewal", "d", b, who="holder:V-10000004", now=T0 + DAY)
    check("renewal" in out, out)
    key, csr, cert = path("d2.key"), path("d2.csr"), path("d2.pem")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-subj", "/CN=d", "-out", csr)
    ca_refused("does not hold", "renew", "--case", "CASE-D1", "--csr", csr, "--as", "holder:V-10000001",
               "--out-cert", cert, now=T0 + DAY)
    new = ca_ok("renew", "--case", "CASE-D1", "--csr", csr, "--as", "holder:V-10000004", "--out-cert", cert,
                now=T0 + DAY).strip()
    check(new != SERIALS["d"] and re.fullmatch(r"[0-9A-F]+", new), new)
    old = show("d", now=T0 + DAY)
    check(old["state"] == "superseded" and old["superseded_by"] == new, str(old))
    nj = show(new, now=T0 + DAY)
    check(nj["state"] == "valid" and nj["renewal_of"] == SERIALS["d"] and nj["national_id"] == "V-10000004", str(nj))
    check("email:d@example.ve" in openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName"), "SAN lost")
    ca_refused("not an approved renewal", "renew", "--case", "CASE-D1", "--csr", csr, "--as", "holder:V-10000004",
               "--out-cert", path("d3.pem"), now=T0 + DAY)
    o = ocsp("d", now=T0 + DAY)
    check("Cert Status: good" in o, f"superseded is not on the CRL/OCSP unless the CPS says so: {o}")


@test("renewal refused while held; renewal by the administrator with the CSR at once")
def _():
    s = bundle("CASE-E1", "suspension", "e", days=3)
    apply("CASE-E1", "suspension", "e", s, now=T0)
    r = bundle("CASE-E2", "renewal", "e")
    ca_refused("is held: renewal refused", "apply", *gate_args("CASE-E2", "renewal", "e", r, who="holder:V-10000005"),
               now=T0 + DAY)
    ra = bundle("CASE-E3", "reactivation", "e")
    apply("CASE-E3", "reactivation", "e", ra, now=T0 + DAY)
    key, csr = path("e2.key"), path("e2.csr")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-subj", "/CN=e", "-out", csr)
    out = ca_ok("apply", *gate_args("CASE-E2", "renewal", "e", r), "--csr", csr, "--out-cert", path("e2.pem"), "--json",
                now=T0 + DAY)
    res = json.loads(out)
    check(res["new_serial"] and show("e", now=T0 + DAY)["state"] == "superseded", out)


@test("superseded on the CRL when the CPS says so (setting saved by init)")
def _():
    global STATE
    main_state, STATE = STATE, path("sup-state")
    try:
        ca_ok("init", "--superseded-on-crl", "--bits", "2048")
        ca_ok("grant", "ro.ana", "renewal")
        ca_ok("grant", "root", "admin")
        issue("s", "Sup Holder", "V-50000000", "s@example.ve")
        key, csr = path("s2.key"), path("s2.csr")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-subj", "/CN=s", "-out", csr)
        b = bundle("CASE-S1", "renewal", "s")
        ca_ok("apply", *gate_args("CASE-S1", "renewal", "s", b), "--csr", csr, "--out-cert", path("s2.pem"), now=T0)
        e = crl_entry(crl_text(now=T0), SERIALS["s"])
        check(e is not None and "Superseded" in e, f"CRL entry: {e}")
        check("superseded" in ocsp("s", now=T0), "OCSP does not say superseded")
    finally:
        STATE = main_state


# ------------------------------------------------------- gate refusals

@test("gate refusal: wrong case")
def _():
    b = bundle("CASE-F1", "suspension", "f", days=5)
    ca_refused("the bundle is for case CASE-F1, not CASE-OTHER", "apply",
               *gate_args("CASE-OTHER", "suspension", "f", b), now=T0)
    FIXED["f1"] = b


FIXED = {}


@test("gate refusal: wrong action")
def _():
    ca_refused("the bundle is for action suspension, not revocation", "apply",
               *gate_args("CASE-F1", "revocation", "f", FIXED["f1"]), now=T0)


@test("gate refusal: wrong serial")
def _():
    ca_refused(f"the bundle is for certificate {SERIALS['f']}, not {SERIALS['g']}", "apply",
               *gate_args("CASE-F1", "suspension", "g", FIXED["f1"]), now=T0)


@test("gate refusal: rejected outcome")
def _():
    b = bundle("CASE-F2", "suspension", "f", days=5, outcome="rejected")
    ca_refused("outcome is rejected", "apply", *gate_args("CASE-F2", "suspension", "f", b), now=T0)


@test("gate refusal: tampered bundle (one byte of the attestation changed)")
def _():
    b = bundle("CASE-F3", "suspension", "f", days=5)
    data = bytearray(open(b, "rb").read())
    i = data.find(b"Attestation ")
    check(i > 0, "attestation not found in the tar")
    data[i] ^= 0x01
    t = path("tampered.tar")
    open(t, "wb").write(bytes(data))
    ca_refused("bundle failed verification: TOTAL-FAILED", "apply", *gate_args("CASE-F3", "suspension", "f", t), now=T0)


@test("gate refusal: suspension by a non-administrator (holder, officer, account without the admin grant)")
def _():
    b = FIXED["f1"]
    ca_refused("only the CA administrator may suspend", "apply",
               *gate_args("CASE-F1", "suspension", "f", b, who="holder:V-10000006"), now=T0)
    ca_refused("may validate but not apply", "apply",
               *gate_args("CASE-F1", "suspension", "f", b, who="officer:ro.ana"), now=T0)
    ca_refused("ro.ana is not a CA administrator", "apply",
               *gate_args("CASE-F1", "suspension", "f", b, who="admin:ro.ana"), now=T0)
    ca_refused("only the CA administrator may reactivate", "apply",
               *gate_args("CASE-F1", "reactivation", "f", b, who="holder:V-10000006"), now=T0)


@test("gate refusal: the officer is not authorised for the action")
def _():
    b = bundle("CASE-F4", "suspension", "f", days=5, officer="ro.nope")
    ca_refused("officer ro.nope is not authorised for suspension", "apply",
               *gate_args("CASE-F4", "suspension", "f", b), now=T0)


@test("gate refusal: the bundle's holder is not the certificate's")
def _():
    b = bundle("CASE-F5", "suspension", "f", days=5, holder="V-99999999")
    ca_refused("belongs to V-10000006", "apply", *gate_args("CASE-F5", "suspension", "f", b), now=T0)
    # The same ID written another way is the same holder: the gate gets past
    # the holder rule (and the dry run passes).
    b = bundle("CASE-F5b", "suspension", "f", days=5, holder="v-10.000.006")
    v = json.loads(ca_ok("check", *gate_args("CASE-F5b", "suspension", "f", b), "--json", now=T0))
    check(v["allowed"] is True, str(v))


@test("check is a dry run (0, JSON verdict, nothing changes); then apply; the same bundle replayed is refused")
def _():
    b = FIXED["f1"]
    out = ca_ok("check", *gate_args("CASE-F1", "suspension", "f", b), "--json", now=T0)
    v = json.loads(out)
    check(v["allowed"] is True and v["bundle"]["indication"] == "TOTAL-PASSED", out)
    check(show("f", now=T0)["state"] == "valid", "check changed the state")
    apply("CASE-F1", "suspension", "f", b, now=T0)
    err = ca_refused("bundle already accepted on", "apply", *gate_args("CASE-F1", "suspension", "f", b), now=T0 + 60)
    check("CASE-F1" in err, err)
    rc, out, err = ca("check", *gate_args("CASE-F1", "suspension", "f", b), "--json", now=T0 + 60)
    v = json.loads(out)
    check(rc == 9 and v["allowed"] is False and "already accepted" in v["reason"], out)


@test("a case is applied once: another bundle for an applied case is refused")
def _():
    b = bundle("CASE-F1", "suspension", "f", days=4)
    ca_refused("case CASE-F1 was already applied", "apply", *gate_args("CASE-F1", "suspension", "f", b), now=T0 + 120)


@test("refusals are kept in the refusals table and in the audit log; actions are audited")
def _():
    n = db().execute("SELECT count(*) FROM refusals").fetchone()[0]
    check(n >= 15, f"only {n} refusals recorded")
    reasons = [r[0] for r in db().execute("SELECT reason FROM refusals")]
    check(any("outcome is rejected" in r for r in reasons), "the rejected outcome is not recorded")
    kinds = audit_kinds()
    check(kinds.count("refusal") >= n, f"{kinds.count('refusal')} audited refusals, {n} recorded")
    check(kinds.count("action") >= 10 and "sweep" in kinds, f"audit kinds: {sorted(set(kinds))}")
    accepted = db().execute("SELECT count(*) FROM accepted_bundles").fetchone()[0]
    check(accepted >= 10, f"{accepted} accepted bundles")


@test("publish time-stamps the audit log's head; the log verifies (chain, sequence, token)")
def _():
    ca_ok("publish", now=T0 + 3 * DAY)
    log = os.path.join(STATE, "audit.jsonl")
    check("timestamp" in audit_kinds(), "no timestamp entry")
    p = run([TESTIGO, "audit", "verify", "--json", "--ca-file", os.path.join(STATE, "keys", "root.pem"), log])
    check(p.returncode == 0, f"audit verify: {p.returncode} {p.stdout.decode()} {p.stderr.decode()}")
    rep = json.loads(p.stdout)
    check(rep.get("ok") is True and rep.get("timestamps", 0) >= 1, str(rep))


@test("a bundle sealed by another RA PKI verifies only with --bundle-ca-file, which keeps the store's own roots")
def _():
    issue("x", "Holder x", "V-10000024", "x@example.ve")
    other = path("other-ra")
    p = run([TESTIGO, "keys", "init", other, "--bits", "2048"])
    check(p.returncode == 0, p.stderr.decode())
    main_keys = os.path.join(STATE, "keys")
    os.rename(main_keys, main_keys + ".away")
    os.symlink(other, main_keys)
    try:
        b = bundle("CASE-X1", "revocation", "x", reason="Ceased.")
    finally:
        os.unlink(main_keys)
        os.rename(main_keys + ".away", main_keys)
    ca_refused("bundle failed verification", "apply", *gate_args("CASE-X1", "revocation", "x", b), now=T0)
    ca_ok("check", *gate_args("CASE-X1", "revocation", "x", b), "--bundle-ca-file", os.path.join(other, "root.pem"), now=T0)
    # the sweep's own bundles still verify with the store's roots
    issue("y", "Holder y", "V-10000025", "y@example.ve")
    apply("CASE-Y1", "suspension", "y", bundle("CASE-Y1", "suspension", "y", days=1), now=T0)
    out = ca_ok("sweep", "--bundle-ca-file", os.path.join(other, "root.pem"), now=T0 + 2 * DAY)
    check("revoked 1" in out, out)


@test("a teleconference bundle (recording and hash chain) backs a revocation")
def _():
    fx = path("fx")
    p = run([sys.executable, FIXTURE, fx, "--size", "200000", "--segment", "100000"])
    check(p.returncode == 0, p.stderr.decode())
    rec = json.load(open(os.path.join(fx, "record.json")))
    rec["case"]["action"] = "revocation"
    rec["case"]["reason"] = "Ceased the activities for which the certificate was granted."
    rec["certificate"]["serial"] = SERIALS["g"]
    rec["holder"]["national_id"] = "V-10000007"
    rec["officer"]["id"] = "ro.ana"
    json.dump(rec, open(os.path.join(fx, "record.json"), "w"), ensure_ascii=False)
    out = path("tele.tar")
    stills = [f"--still={n}={os.path.join(fx, n)}" for n in ("doc-front.png", "doc-back.png", "face.png")]
    p = run([TESTIGO, "seal", "--keys", os.path.join(STATE, "keys"), "--record", os.path.join(fx, "record.json"),
             "--recording", os.path.join(fx, "recording.mkv"), "--events", os.path.join(fx, "events.jsonl"),
             *stills, "--out", out])
    check(p.returncode == 0, p.stderr.decode())
    case = rec["case"]["id"]
    apply(case, "revocation", "g", out, now=T0 + 2 * DAY)
    check(show("g", now=T0 + 2 * DAY)["reason"] == "cessationOfOperation", "reason")


@test("OCSP: unknown serial; full CRL numbers increase; the delta names its base")
def _():
    o = ocsp(serial="1234ABCD", now=T0 + 3 * DAY)
    check("Cert Status: unknown" in o, o)
    f1 = crl_text(now=T0 + 3 * DAY)
    ca_ok("publish", now=T0 + 3 * DAY)
    f2 = crl_text(now=T0 + 3 * DAY)
    d2 = crl_text(delta=True, now=T0 + 3 * DAY)
    n1 = int(re.search(r"CRL Number: \n\s+(\d+)", f1).group(1))
    n2 = int(re.search(r"CRL Number: \n\s+(\d+)", f2).group(1))
    base = int(re.search(r"Delta CRL Indicator: critical\n\s+(\d+)", d2).group(1))
    check(n2 > n1 and base == n1, f"full {n1} -> {n2}, delta base {base}")


# ------------------------------------------------------------- intake

def smime(label, body, out):
    b = path(out + ".txt")
    with open(b, "w") as f:
        f.write(body)
    openssl("cms", "-sign", "-in", b, "-signer", CERTS[label], "-inkey", KEYS[label], "-text", "-out", path(out))
    return path(out)


@test("intake: a signed e-mail suspension becomes a case with sealed evidence; the administrator applies it")
def _():
    issue("m", "Mail Holder", "V-30000000", "m@example.ve")
    msg = smime("m", "Nombre: Mail Holder\nCédula: V-30000000\nCorreo: m@example.ve\n"
                     "Solicitud: suspensión\nMotivo: Perdí el token\nDuración: 10 días\n", "m.eml")
    rc, out, err = ca("intake", msg, "--json", now=T0)
    if rc != 0 and "not supported" in err:
        raise Fail("intake not supported: " + err)
    check(rc == 0, f"intake: {rc} {err}")
    c = json.loads(out)
    check(c["action"] == "suspension" and c["serial"] == SERIALS["m"] and c["suspension_days"] == 10, out)
    check(os.path.exists(c["bundle"]) and "/evidence/V-30000000/" in c["bundle"], c["bundle"])
    ca_ok("apply", *gate_args(c["case"], "suspension", "m", c["bundle"]), now=T0)
    j = show("m", now=T0)
    check(j["state"] == "held" and j["hold_deadline"] == rfc3339(T0 + 10 * DAY), str(j))
    ca_refused("message already received", "intake", msg, now=T0)
    check(os.listdir(os.path.join(STATE, "intake", "refused")), "the refused message is not kept")
    # The same signed request in another copy: a mail header added on the way
    # and CRLF line endings. Its bytes differ, its signature does not.
    with open(msg, "rb") as f:
        raw = f.read()
    copy = path("m-copy.eml")
    with open(copy, "wb") as f:
        f.write(b"Received: from relay.example.ve\r\n" + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    ca_refused("in another copy: replay refused", "intake", copy, now=T0)
    # `testigo intake --state` is the same path as `testigo ca intake`.
    p = run([TESTIGO, "intake", copy, "--state", STATE], now=T0)
    check(p.returncode == 9 and b"in another copy: replay refused" in p.stderr,
          f"testigo intake --state: {p.returncode} {p.stderr!r}")


@test("intake: a renewal by signed e-mail alone does not pass the gate (it needs a validation)")
def _():
    msg = smime("m", "Name: Mail Holder\nID: V-30000000\nE-mail: m@example.ve\nRequest: renewal\n", "m2.eml")
    rc, out, err = ca("intake", msg, "--json", now=T0 + DAY)
    check(rc == 0, f"intake: {rc} {err}")
    c = json.loads(out)
    ca_refused("needs an in-person or teleconference validation", "apply",
               *gate_args(c["case"], "renewal", "m", c["bundle"], who="holder:V-30000000"), now=T0 + DAY)


@test("the seed's renewal: signed e-mail (case), in-person validation of that case, the holder's CSR in the portal")
def _():
    ra = bundle("CASE-M9", "reactivation", "m")
    apply("CASE-M9", "reactivation", "m", ra, now=T0 + DAY)
    msg = smime("m", "Name: Mail Holder\nID: V-30000000\nE-mail: m@example.ve\nRequest: renewal\n"
                     "Reason: expires soon\n", "m3.eml")
    c = json.loads(ca_ok("intake", msg, "--json", now=T0 + DAY))
    v = bundle(c["case"], "renewal", "m")
    ca_refused("is a renewal of", "apply", *gate_args(c["case"], "suspension", "m", bundle(c["case"], "suspension", "m", days=2)),
               now=T0 + DAY)
    apply(c["case"], "renewal", "m", v, who="holder:V-30000000", now=T0 + DAY)
    key, csr = path("m2.key"), path("m2.csr")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-subj", "/CN=m", "-out", csr)
    new = ca_ok("renew", "--case", c["case"], "--csr", csr, "--as", "holder:V-30000000", "--out-cert", path("m2.pem"),
                now=T0 + DAY).strip()
    check(show("m", now=T0 + DAY)["superseded_by"] == new, "not superseded by the new certificate")


def main():
    return tap.run(setup, lambda: WORK)


if __name__ == "__main__":
    sys.exit(main())
