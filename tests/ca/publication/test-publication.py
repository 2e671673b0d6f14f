#!/usr/bin/env python3
"""CRLs and OCSP responses from ca/publication, checked with the openssl CLI
(TAP output).

usage: test-publication.py PUBLICATION_TOOL

One development PKI (bundle_keys_init, 2048-bit keys) with an EC P-256
delegated OCSP responder, plus two foreign CAs: one with another name, one
with the same name as the root but another key. Every CRL is read back with
`openssl crl -text` and verified with `openssl crl -verify`; every OCSP
response with `openssl ocsp -respin … -CAfile root.pem`.

Set TESTIGO_KEEP_TMP=1 to keep the work directory.
Python 3 standard library only.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

if len(sys.argv) != 2:
    sys.stderr.write(__doc__)
    sys.exit(2)
TOOL = os.path.abspath(sys.argv[1])
NOW = int(time.time())
WORK = None
K = None          # the development PKI directory
OTHER = None      # a foreign CA: (cert, key)
TWIN = None       # same subject as the root, another key


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def path(*parts):
    return os.path.join(WORK, *parts)


def run(args, ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise Fail("%s exited %d: %s%s" % (" ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def ossl_date(t):
    """How openssl prints an ASN1_TIME."""
    return time.strftime("%b %e %H:%M:%S %Y GMT", time.gmtime(t))


def write(name, text):
    with open(path(name), "w") as f:
        f.write(text)
    return path(name)


# ------------------------------------------------------------------ CRL

def crl(entries, out, *opts, ok=True):
    """Builds a CRL from entry lines; returns the tool's process."""
    ef = write(out + ".entries", "".join(line + "\n" for line in entries))
    return run([TOOL, "crl", *opts, path(K, "root.pem"), path(K, "root.key"), ef, path(out)], ok=ok)


def crl_text(name, fmt="DER"):
    text = run(["openssl", "crl", "-in", path(name), "-inform", fmt, "-noout", "-text"]).stdout
    v = run(["openssl", "crl", "-in", path(name), "-inform", fmt, "-noout", "-CAfile", path(K, "root.pem"), "-verify"])
    check("verify OK" in v.stdout + v.stderr, "openssl crl -verify did not say OK: %s" % (v.stdout + v.stderr))
    return text


def revoked_blocks(text):
    """Serial → the text of its entry, in CRL order."""
    body = text.split("Revoked Certificates:", 1)[1].split("Signature Algorithm:", 1)[0]
    parts = re.split(r"\n\s*Serial Number: ", "\n" + body)
    out = []
    for part in parts[1:]:
        serial, _, rest = part.partition("\n")
        out.append((serial.strip(), rest))
    return out


T_KC, T_INV, T_HOLD, T_CESS, T_NONE, T_UNSP = NOW - 9000, NOW - 86400 * 3, NOW - 7000, NOW - 5000, NOW - 4000, NOW - 3000
T_2051 = 2556144000 + 12345  # a revocation dated in 2051: GeneralizedTime


def skid_of(cert):
    text = run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectKeyIdentifier"]).stdout
    return text.strip().splitlines()[-1].strip()


def test_full_crl():
    crl(["0A %d keyCompromise %d" % (T_KC, T_INV),
         "1f3 %d certificateHold - reject" % T_HOLD,
         "00FF %d cessationOfOperation" % T_CESS,
         "77 %d none" % T_NONE,
         "7F0000000000000000000000000000000000000B %d unspecified" % T_UNSP,
         "5 %d superseded" % T_2051],
        "full.der", "--number", "5", "--this-update", str(NOW), "--next-update", str(NOW + 86400),
        "--delta-uri", "http://crl.example.ve/delta.crl")
    text = crl_text("full.der")
    check("Version 2 (0x1)" in text, "not a v2 CRL")
    check(re.search(r"CRL Number: *\n\s*5\n", text), "cRLNumber 5 missing")
    check("Delta CRL Indicator" not in text, "a full CRL carries a Delta CRL Indicator")
    check(re.search(r"Freshest CRL: *\n\s*Full Name:\n\s*URI:http://crl.example.ve/delta.crl", text), "Freshest CRL missing")
    check("Last Update: %s" % ossl_date(NOW) in text and "Next Update: %s" % ossl_date(NOW + 86400) in text,
          "thisUpdate/nextUpdate wrong")
    check(re.search(r"Authority Key Identifier: *\n\s*%s" % re.escape(skid_of(path(K, "root.pem"))), text),
          "authorityKeyIdentifier is not the root's key id")
    entries = revoked_blocks(text)
    serials = [s for s, _ in entries]
    check(serials == ["05", "0A", "77", "FF", "01F3", "7F0000000000000000000000000000000000000B"],
          "entries are not sorted by serial: %s" % serials)
    e = dict(entries)
    check("Revocation Date: %s" % ossl_date(T_KC) in e["0A"], "0A revocation date wrong")
    check(re.search(r"CRL Reason Code: *\n\s*Key Compromise", e["0A"]), "0A reason wrong")
    check(re.search(r"Invalidity Date: *\n\s*%s" % re.escape(ossl_date(T_INV)), e["0A"]), "0A invalidityDate wrong")
    check(re.search(r"CRL Reason Code: *\n\s*Certificate Hold", e["01F3"]), "01F3 not on hold")
    check(re.search(r"Hold Instruction Code: *\n\s*Hold Instruction Reject", e["01F3"]), "01F3 hold instruction missing")
    check("Revocation Date: %s" % ossl_date(T_HOLD) in e["01F3"], "01F3 revocation date wrong")
    check(re.search(r"CRL Reason Code: *\n\s*Cessation Of Operation", e["FF"]), "FF reason wrong")
    check("CRL entry extensions" not in e["77"], "77 (no reason) has entry extensions")
    check("CRL entry extensions" not in e["7F0000000000000000000000000000000000000B"],
          "an unspecified reason is published (RFC 5280 says leave it out)")
    check("Revocation Date: %s" % ossl_date(T_2051) in e["05"], "the 2051 revocation date is wrong")
    check(re.search(r"Superseded", e["05"]), "05 reason wrong")
    for s in ("0A", "FF", "77"):
        check("Hold Instruction" not in e[s], "%s has a hold instruction" % s)
    der = open(path("full.der"), "rb").read()
    check(bytes.fromhex("180f32303531") in der, "a 2051 date is not a GeneralizedTime")


def test_delta_crl():
    crl(["1F3 %d removeFromCRL" % T_HOLD,
         "0B %d certificateHold %d reject" % (NOW - 60, NOW - 120)],
        "delta.der", "--number", "6", "--base", "5", "--this-update", str(NOW), "--next-update", str(NOW + 3600),
        "--delta-uri", "http://ignored.example/")
    text = crl_text("delta.der")
    check(re.search(r"Delta CRL Indicator: critical\n\s*5\n", text), "Delta CRL Indicator (critical, 5) missing")
    check(re.search(r"CRL Number: *\n\s*6\n", text), "cRLNumber 6 missing")
    check("Freshest CRL" not in text, "a delta CRL names a Freshest CRL")
    e = dict(revoked_blocks(text))
    check(re.search(r"CRL Reason Code: *\n\s*Remove From CRL", e["01F3"]), "removeFromCRL missing")
    check(re.search(r"Hold Instruction Reject", e["0B"]) and re.search(r"Invalidity Date: *\n\s*%s" % re.escape(ossl_date(NOW - 120)), e["0B"]),
          "0B entry wrong")


def test_empty_and_pem():
    p = crl([], "empty.pem", "--number", "7", "--pem")
    check(p.stdout == "", "unexpected output")
    pem = open(path("empty.pem")).read()
    check(pem.startswith("-----BEGIN X509 CRL-----\n") and pem.endswith("-----END X509 CRL-----\n"), "not PEM")
    check(all(len(line) <= 64 for line in pem.splitlines()), "PEM lines over 64 characters")
    text = crl_text("empty.pem", "PEM")
    check("No Revoked Certificates." in text, "an empty CRL lists entries")


def refused(entries, *opts, want):
    p = crl(entries, "refused.der", *opts, ok=False)
    check(p.returncode == 1, "exit %d, not 1, for %s (%s)" % (p.returncode, entries, p.stderr))
    check(want in p.stderr, "message %r lacks %r" % (p.stderr.strip(), want))
    check(not os.path.exists(path("refused.der")), "a refused CRL was written")


def test_refusals():
    refused(["0A %d removeFromCRL" % NOW], "--number", "8", want="removeFromCRL belongs in delta CRLs only")
    refused(["0G %d keyCompromise" % NOW], "--number", "8", want="is not hexadecimal")
    refused(["0x0A %d keyCompromise" % NOW], "--number", "8", want="is not hexadecimal")
    refused(["A" * 41 + " %d keyCompromise" % NOW], "--number", "8", want="1 to 40 hex digits")
    refused(["0000 %d keyCompromise" % NOW], "--number", "8", want="is zero")
    refused(["0A %d keyCompromise" % NOW, "000a %d superseded" % NOW], "--number", "8", want="listed twice")
    refused(["0A 0 keyCompromise"], "--number", "8", want="not after 1970-01-01")
    refused(["0A %d keyCompromise - reject" % NOW], "--number", "8", want="needs reason certificateHold")
    refused([], "--number", "5", "--base", "5", want="must be below its own")
    refused([], "--number", "0", want="must be positive")
    refused([], "--number", "9", "--this-update", str(NOW), "--next-update", str(NOW), want="nextUpdate must come after")
    refused([], "--number", "9", "--delta-uri", "not a uri", want="is not a URI")
    # the RA certificate (digitalSignature, nonRepudiation) may not sign CRLs
    p = run([TOOL, "crl", path(K, "ra.pem"), path(K, "ra.key"), write("none.entries", ""), path("ra.crl")], ok=False)
    check(p.returncode == 1 and "cRLSign" in p.stderr, "a certificate without cRLSign signed a CRL: %s" % p.stderr)


def test_many_entries():
    n = 3000
    lines = ["%X %d %s" % (0x4000000000000000 + i * 7919, NOW - i, ("keyCompromise", "certificateHold", "superseded")[i % 3])
             for i in range(n)]
    lines.reverse()
    crl(lines, "many.der", "--number", "10")
    text = crl_text("many.der")
    serials = [int(s, 16) for s, _ in revoked_blocks(text)]
    check(len(serials) == n, "%d entries, not %d" % (len(serials), n))
    check(serials == sorted(serials), "entries not sorted")


# ------------------------------------------------------------------ OCSP

STATUS = None
T_R_KC, T_R_HOLD = NOW - 8000, NOW - 6000


def setup_status():
    global STATUS
    STATUS = write("status.txt", "\n".join([
        "# serial status",
        "05 good",
        "0A %d keyCompromise %d" % (T_R_KC, T_INV),
        "1F3 %d certificateHold - reject" % T_R_HOLD,
        "0C %d unspecified" % (NOW - 100),
        "0BAD 0 keyCompromise",
    ]) + "\n")


def request(name, *serials, issuer=None, opts=()):
    args = ["openssl", "ocsp", "-issuer", issuer or path(K, "root.pem"), *opts]
    for s in serials:
        args += ["-serial", s]
    run(args + ["-reqout", path(name)])
    return path(name)


def respond(req, out, delegated=True, opts=(), ok=True):
    if delegated:
        signer = [path("responder.pem"), path("responder.key"), path(K, "root.pem")]
    else:
        signer = [path(K, "root.pem"), path(K, "root.key"), "-"]
    return run([TOOL, "ocsp", "--now", str(NOW), *opts, *signer, STATUS, req, path(out)], ok=ok)


def check_response(resp, serials, issuer=None, reqin=None, extra=()):
    """openssl ocsp's verdict on a response: (stdout+stderr, resp_text)."""
    args = ["openssl", "ocsp", "-respin", path(resp), "-issuer", issuer or path(K, "root.pem"),
            "-CAfile", path(K, "root.pem"), "-resp_text", *extra]
    if reqin:
        args += ["-reqin", reqin]
    else:
        for s in serials:
            args += ["-serial", s]
        args += ["-no_nonce"]
    p = run(args, ok=False)
    return p.stdout + p.stderr


def status_of(out, serial):
    m = re.search(r"^%s: (\w+)\n((?:\t.*\n)*)" % re.escape(serial), out, re.M)
    check(m, "no status for %s in: %s" % (serial, out[-1500:]))
    return m.group(1), m.group(2)


def test_ocsp_statuses():
    serials = ["0x05", "0x0A", "0x1f3", "0x99", "0x0C"]
    req = request("req1.der", *serials)
    respond(req, "resp1.der")
    out = check_response("resp1.der", serials, reqin=req)
    check("Response verify OK" in out, "delegated response does not verify: %s" % out[-800:])
    check("WARNING: no nonce" not in out and "Nonce Verify error" not in out, "nonce not echoed")
    out = check_response("resp1.der", serials)
    check("Response verify OK" in out, "does not verify: %s" % out[-500:])
    st, detail = status_of(out, "0x05")
    check(st == "good", "05 is %s" % st)
    check("This Update: %s" % ossl_date(NOW) in detail, "thisUpdate is not --now")
    st, detail = status_of(out, "0x0A")
    check(st == "revoked" and "Reason: keyCompromise" in detail and "Revocation Time: %s" % ossl_date(T_R_KC) in detail,
          "0A: %s %s" % (st, detail))
    st, detail = status_of(out, "0x1f3")
    check(st == "revoked" and "Reason: certificateHold" in detail and "Revocation Time: %s" % ossl_date(T_R_HOLD) in detail,
          "1F3: %s %s" % (st, detail))
    st, detail = status_of(out, "0x99")
    check(st == "unknown", "99 is %s" % st)
    st, detail = status_of(out, "0x0C")
    check(st == "revoked" and "Reason:" not in detail, "0C (unspecified) should be revoked without a reason: %s" % detail)
    check(re.search(r"Hold Instruction Code: *\n\s*Hold Instruction Reject", out), "no hold instruction in the single extensions")
    check(re.search(r"Invalidity Date: *\n\s*%s" % re.escape(ossl_date(T_INV)), out), "no invalidityDate single extension")
    rid = re.search(r"Responder Id: ([0-9A-F]+)", out)
    check(rid and rid.group(1) == skid_of(path("responder.pem")).replace(":", ""), "responderID is not the responder's key hash")
    check("OCSP Signing" in out and "OCSP No Check" in out, "responder certificate not included or lacks EKU/nocheck")
    check(re.search(r"Next Update: %s" % re.escape(ossl_date(NOW + 3600)), out), "nextUpdate is not now + 3600")
    out = run(["openssl", "ocsp", "-respin", path("resp1.der"), "-issuer", path(K, "root.pem"), "-VAfile",
               path("responder.pem"), "-serial", "0x05", "-no_nonce"], ok=False)
    check("Response verify OK" in out.stdout + out.stderr, "does not verify against -VAfile")


def nonce_in(text):
    m = re.search(r"OCSP Nonce: *\n\s*([0-9A-F]+)", text)
    return m.group(1) if m else None


def test_ocsp_nonce():
    req = request("req-nonce.der", "0x05")
    respond(req, "resp-nonce.der")
    sent = nonce_in(run(["openssl", "ocsp", "-reqin", req, "-req_text"]).stdout)
    out = check_response("resp-nonce.der", [], reqin=req)
    check(sent and len(sent) == 36, "openssl sent no 16-byte nonce")
    check(nonce_in(out) == sent, "nonce not echoed byte for byte: sent %s, got %s" % (sent, nonce_in(out)))
    check("Response verify OK" in out and "Nonce Verify error" not in out, "nonce check failed: %s" % out[-400:])
    req = request("req-nonone.der", "0x05", opts=["-no_nonce"])
    respond(req, "resp-nonone.der")
    out = check_response("resp-nonone.der", ["0x05"])
    check(nonce_in(out) is None and "Response verify OK" in out, "a nonce appeared from nowhere")


def test_ocsp_signed_request():
    """A signed request is answered like any other (signatures are not required nor checked)."""
    req = request("req-signed.der", "0x05", opts=["-signer", path(K, "ra.pem"), "-signkey", path(K, "ra.key")])
    check("Signature" in run(["openssl", "ocsp", "-reqin", req, "-req_text"]).stdout, "the request is not signed")
    respond(req, "resp-signed.der")
    out = check_response("resp-signed.der", [], reqin=req)
    check("Response verify OK" in out and status_of(check_response("resp-signed.der", ["0x05"]), "0x05")[0] == "good",
          "signed request: %s" % out[-400:])


def test_ocsp_sha256_and_ca_signed():
    req = request("req-sha256.der", "0x0A", opts=["-sha256"])
    respond(req, "resp-sha256.der", delegated=False)
    out = check_response("resp-sha256.der", ["0x0A"], extra=["-sha256"])
    check("Response verify OK" in out, "CA-signed response does not verify: %s" % out[-500:])
    st, detail = status_of(out, "0x0A")
    check(st == "revoked" and "keyCompromise" in detail, "sha256 CertID: %s" % st)
    check("Certificate:" not in out, "a CA-signed response includes certificates")
    rid = re.search(r"Responder Id: ([0-9A-F]+)", out)
    check(rid and rid.group(1) == skid_of(path(K, "root.pem")).replace(":", ""), "responderID is not the CA's key hash")


def test_ocsp_other_issuers():
    for label, (cert, _key) in (("other name", OTHER), ("same name, other key", TWIN)):
        req = request("req-other.der", "0x0A", "0x05", issuer=cert)
        respond(req, "resp-other.der")
        # A delegated responder is not authorized for another CA, so
        # openssl rightly will not trust the answer: read it unverified.
        out = check_response("resp-other.der", ["0x0A", "0x05"], issuer=cert, extra=["-noverify"])
        check("Responder Id" in out, "%s: not a basic response: %s" % (label, out[-500:]))
        for s in ("0x0A", "0x05"):
            st, _ = status_of(out, s)
            check(st == "unknown", "%s: %s is %s, not unknown" % (label, s, st))


def error_status(resp):
    p = run(["openssl", "ocsp", "-respin", path(resp), "-resp_text", "-noverify"], ok=False)
    m = re.search(r"(?:OCSP Response Status|Responder Error): (\w+)", p.stdout + p.stderr)
    return m.group(1) if m else (p.stdout + p.stderr)


def test_ocsp_malformed():
    with open(path("garbage.der"), "wb") as f:
        f.write(os.urandom(64))
    respond(path("garbage.der"), "resp-garbage.der")
    check(error_status("resp-garbage.der") == "malformedrequest", "random bytes: %s" % error_status("resp-garbage.der"))
    good = open(request("req-trail.der", "0x05"), "rb").read()
    with open(path("trail.der"), "wb") as f:
        f.write(good + b"\x00")
    respond(path("trail.der"), "resp-trail.der")
    check(error_status("resp-trail.der") == "malformedrequest", "trailing byte accepted")
    with open(path("trunc.der"), "wb") as f:
        f.write(good[:-3])
    respond(path("trunc.der"), "resp-trunc.der")
    check(error_status("resp-trunc.der") == "malformedrequest", "truncated request accepted")
    with open(path("empty.der"), "wb") as f:
        pass
    respond(path("empty.der"), "resp-empty.der")
    check(error_status("resp-empty.der") == "malformedrequest", "empty request accepted")
    with open(path("huge.der"), "wb") as f:
        f.write(b"\x30\x82\x50\x00" + b"\x00" * 0x5000)
    respond(path("huge.der"), "resp-huge.der")
    check(error_status("resp-huge.der") == "malformedrequest", "oversized request accepted")
    serials = ["0x%X" % (0x100 + i) for i in range(17)]
    req = request("req-17.der", *serials)
    respond(req, "resp-17.der")
    check(error_status("resp-17.der") == "malformedrequest", "17 singles accepted (cap 16)")
    respond(req, "resp-17b.der", opts=["--max", "17"])
    out = check_response("resp-17b.der", serials, reqin=req)
    check("Response verify OK" in out and out.count(": unknown") == 17, "17 singles with --max 17")
    req = request("req-16.der", *serials[:16])
    respond(req, "resp-16.der")
    check(error_status("resp-16.der") == "successful", "16 singles refused")


def test_ocsp_mutations():
    """Every byte of a request flipped in turn: always a response, never a crash."""
    import random
    rng = random.Random(6960)
    good = open(request("req-mut.der", "0x05", "0x0A"), "rb").read()
    seen = set()
    for i in range(len(good)):
        b = bytearray(good)
        b[i] ^= 1 << rng.randrange(8)
        with open(path("mut.der"), "wb") as f:
            f.write(bytes(b))
        p = respond(path("mut.der"), "resp-mut.der", ok=False)
        check(p.returncode == 0, "byte %d flipped: exit %d: %s" % (i, p.returncode, p.stderr[-300:]))
        seen.add(error_status("resp-mut.der"))
    check(seen <= {"successful", "malformedrequest"}, "unexpected statuses: %s" % seen)
    check("malformedrequest" in seen, "no flip was malformed?")


def test_ocsp_bad_lookup():
    req = request("req-bad.der", "0x0BAD")
    p = respond(req, "resp-bad.der")
    check(error_status("resp-bad.der") == "internalerror", "a revocation at time 0 was published: %s" % error_status("resp-bad.der"))
    check("impossible revocation" in p.stderr, "no warning logged")


def test_signer_refusals():
    # the CA's key with the responder's certificate; a responder not issued by the CA
    p = run([TOOL, "ocsp", path("responder.pem"), path(K, "root.key"), path(K, "root.pem"), STATUS,
             path("req1.der"), path("x.der")], ok=False)
    check(p.returncode == 1 and "does not belong to" in p.stderr, "mismatched key accepted: %s" % p.stderr)
    p = run([TOOL, "ocsp", path("responder.pem"), path("responder.key"), OTHER[0], STATUS,
             path("req1.der"), path("x.der")], ok=False)
    check(p.returncode == 1 and "was not issued by" in p.stderr, "foreign issuer accepted: %s" % p.stderr)
    p = run([TOOL, "ocsp", path(K, "ra.pem"), path(K, "ra.key"), path(K, "root.pem"), STATUS,
             path("req1.der"), path("x.der")], ok=False)
    check(p.returncode == 1 and "OCSPSigning" in p.stderr, "a responder without OCSPSigning accepted: %s" % p.stderr)
    p = run([TOOL, "responder", path(K, "root.pem"), path(K, "root.key"), path("responder.pem"), path("r2.key")], ok=False)
    check(p.returncode == 1 and not os.path.exists(path("r2.key")) or "exists" in p.stderr,
          "responder create overwrote a certificate")


def test_other_key_types():
    """EC P-256 and Ed25519 CAs sign CRLs and OCSP responses too."""
    for name, newkey in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                         ("ed25519", ["-newkey", "ed25519"])):
        cert, key = path(name + "-ca.pem"), path(name + "-ca.key")
        run(["openssl", "req", "-x509", *newkey, "-nodes", "-subj", "/CN=%s CA" % name, "-days", "2",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key, "-out", cert])
        ef = write(name + ".entries", "0A %d keyCompromise %d\n1F3 %d certificateHold - reject\n" % (T_KC, T_INV, T_HOLD))
        run([TOOL, "crl", "--number", "3", cert, key, ef, path(name + ".crl")])
        v = run(["openssl", "crl", "-in", path(name + ".crl"), "-inform", "DER", "-noout", "-CAfile", cert, "-verify"])
        check("verify OK" in v.stdout + v.stderr, "%s CRL does not verify" % name)
        req = request(name + "-req.der", "0x0A", "0x05", issuer=cert)
        run([TOOL, "ocsp", "--now", str(NOW), cert, key, "-", STATUS, req, path(name + "-resp.der")])
        out = check_response(name + "-resp.der", [], issuer=cert, reqin=req, extra=["-CAfile", cert])
        check("Response verify OK" in out, "%s OCSP response does not verify: %s" % (name, out[-500:]))
        check(status_of(check_response(name + "-resp.der", ["0x0A"], issuer=cert, extra=["-CAfile", cert]), "0x0A")[0] == "revoked",
              "%s: 0A not revoked" % name)


TESTS = [
    test_full_crl,
    test_delta_crl,
    test_empty_and_pem,
    test_refusals,
    test_many_entries,
    test_ocsp_statuses,
    test_ocsp_nonce,
    test_ocsp_signed_request,
    test_ocsp_sha256_and_ca_signed,
    test_ocsp_other_issuers,
    test_ocsp_malformed,
    test_ocsp_mutations,
    test_ocsp_bad_lookup,
    test_signer_refusals,
    test_other_key_types,
]


def setup():
    global WORK, K, OTHER, TWIN
    WORK = tempfile.mkdtemp(prefix="testigo-publication-")
    K = "keys"
    run([TOOL, "keys", path(K), "2048"])
    run([TOOL, "responder", path(K, "root.pem"), path(K, "root.key"), path("responder.pem"), path("responder.key")])
    text = run(["openssl", "x509", "-in", path("responder.pem"), "-noout", "-text"]).stdout
    check("id-ecPublicKey" in text and "OCSP Signing" in text and "OCSP No Check" in text, "responder certificate: %s" % text)
    check(oct(os.stat(path("responder.key")).st_mode & 0o777) == "0o600", "responder key is not 0600")
    subj = run(["openssl", "x509", "-in", path(K, "root.pem"), "-noout", "-subject", "-nameopt", "compat"]).stdout
    subj = subj.strip().split("=", 1)[1].strip()
    for name, s, var in (("other", "/CN=Another CA", "OTHER"), ("twin", subj, "TWIN")):
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", s, "-days", "2", "-keyout", path(name + ".key"), "-out", path(name + ".pem")])
        globals()[var] = (path(name + ".pem"), path(name + ".key"))
    check(run(["openssl", "x509", "-in", TWIN[0], "-noout", "-subject", "-nameopt", "compat"]).stdout.strip().split("=", 1)[1].strip() == subj,
          "twin CA has another name")
    setup_status()


def main():
    print("1..%d" % (len(TESTS) + 1))
    failed = 0
    try:
        setup()
        print("ok 1 - setup: development PKI, EC responder, foreign CAs")
    except Exception as e:
        print("not ok 1 - setup: %s" % e)
        traceback.print_exc(file=sys.stdout)
        for i, t in enumerate(TESTS):
            print("not ok %d - %s # setup failed" % (i + 2, t.__name__))
        return 1
    for i, t in enumerate(TESTS):
        try:
            t()
            print("ok %d - %s" % (i + 2, t.__name__))
        except Exception as e:
            failed += 1
            print("not ok %d - %s: %s" % (i + 2, t.__name__, e))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
    if os.environ.get("TESTIGO_KEEP_TMP"):
        print("# kept %s" % WORK)
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
