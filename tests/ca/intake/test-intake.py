#!/usr/bin/env python3
"""Tests for `testigo intake`: requests by signed e-mail (S/MIME), TAP output.

usage: test-intake.py TESTIGO   (or the environment variable TESTIGO)

A small PKI is made with the openssl command line: a root CA, the holder
Ana Pérez (serialNumber V-12345678, e-mail ana.perez@example.ve, S/MIME
signing), a holder under another CA, a self-signed look-alike and a holder
whose certificate is for TLS only. Request bodies (Spanish and English, with
and without accents, LF and CRLF, quoted-printable, base64, Latin-1,
format=flowed) are signed with `openssl cms -sign` and `openssl smime -sign`
(detached and opaque, -text, -binary), stored with LF or CRLF, with and
without mail headers on top. Every accepted case checks the fields of the
JSON; every refused case checks the exit code and the message.

Set TESTIGO_KEEP_TMP=1 to keep the work directory.
Python 3 standard library only.
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402  (tests/tap.py)
from tap import Fail, add, check, test  # noqa: E402,F401

if len(sys.argv) == 2:
    TESTIGO = sys.argv[1]
elif len(sys.argv) == 1 and "TESTIGO" in os.environ:
    TESTIGO = os.environ["TESTIGO"]
else:
    sys.stderr.write(__doc__)
    sys.exit(2)
TESTIGO = os.path.abspath(TESTIGO)

NOW = int(time.time())
DAY = 86400
EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_CRYPTO, EXIT_REFUSED = 0, 3, 4, 6, 9
MAX_MESSAGE = 4 * 1024 * 1024

WORK = None
def path(*parts):
    return os.path.join(WORK, *parts)


SANITIZER = re.compile(rb"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: AddressSanitizer")


def run(args, input=None, timeout=60):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, input=input)
    m = SANITIZER.search(p.stderr or b"")
    check(m is None, f"sanitizer report from {os.path.basename(str(args[0]))}: "
          f"{p.stderr[max(0, m.start() - 200):m.start() + 800].decode(errors='replace')}" if m else "")
    return p


def openssl(*args, input=None):
    p = run(["openssl", *args], input=input)
    check(p.returncode == 0, f"openssl {' '.join(map(str, args[:2]))} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout


def out_text(p):
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def write(p, data):
    with open(p, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return p


def read(p):
    with open(p, "rb") as f:
        return f.read()


# ------------------------------------------------------------------ the PKI

def make_ca(name, cn):
    key, pem = path(f"{name}.key"), path(f"{name}.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem, "-days", "3650",
            "-subj", f"/C=VE/O=Testigo test/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pem, key


HOLDER_EXT = ("subjectAltName=email:{email}\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
              "extendedKeyUsage=emailProtection\nbasicConstraints=CA:FALSE\n")


def make_holder(name, subj, ca, ext=None, days=30, email="ana.perez@example.ve"):
    key, csr, pem = path(f"{name}.key"), path(f"{name}.csr"), path(f"{name}.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-utf8", "-subj", subj)
    extfile = write(path(f"{name}.ext"), ext if ext is not None else HOLDER_EXT.format(email=email))
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")), "-days", str(days), "-out", pem, "-extfile", extfile)
    return pem, key


ANA_SUBJ = "/C=VE/CN=Ana Pérez/serialNumber=V-12345678/emailAddress=ana.perez@example.ve"
CA = OTHER_CA = ANA = STRANGER = SELF = TLS_ONLY = NO_ID = None


def make_selfsigned(name, subj):
    key, pem = path(f"{name}.key"), path(f"{name}.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem, "-days", "30",
            "-utf8", "-subj", subj, "-addext", "subjectAltName=email:ana.perez@example.ve",
            "-addext", "keyUsage=critical,digitalSignature", "-addext", "extendedKeyUsage=emailProtection")
    return pem, key


# ------------------------------------------------------------------ messages

SUSPENSION_ES = ("Buenos días,\n\nsolicito la suspensión de mi certificado.\n\n"
                 "Nombre: Ana Pérez\nCédula: V-12345678\nCorreo: ana.perez@example.ve\n"
                 "Solicitud: suspensión\nMotivo: viaje al exterior\nDuración: 10 días\n\n"
                 "Saludos,\n-- \nAna Pérez\nSolicitud: revocación\n")


def sign(body, signer=None, tool="cms", detached=True, text=False, binary=False, name="msg"):
    """The S/MIME message (bytes) signing @body (bytes or str) as written by openssl."""
    signer = signer or ANA
    inp = write(path(f"{name}.body"), body)
    out = path(f"{name}.eml")
    args = [tool, "-sign", "-in", inp, "-signer", signer[0], "-inkey", signer[1], "-out", out]
    if not detached:
        args.append("-nodetach")
    if text:
        args.append("-text")
    if binary:
        args.append("-binary")
    openssl(*args)
    return read(out)


def to_crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(data):
    return data.replace(b"\r\n", b"\n")


MAIL_HEADERS = ("From: =?UTF-8?Q?Ana_P=C3=A9rez?= <ana.perez@example.ve>\n"
                "To: registro@procert.example.ve\nSubject: Solicitud de suspension\n"
                "Date: Wed, 25 Nov 2026 10:00:00 -0400\nMessage-ID: <1234@example.ve>\n").encode()


def with_headers(data):
    sep = b"\r\n" if b"\r\n" in data[:200] else b"\n"
    return MAIL_HEADERS.replace(b"\n", sep) + data


def intake(data, *extra, ca=None, name="in"):
    f = write(path(f"{name}.eml"), data)
    return run([TESTIGO, "intake", f, "--ca-file", ca or CA[0], "--json", *extra])


def expect_ok(data, *extra, ca=None, **fields):
    p = intake(data, *extra, ca=ca)
    check(p.returncode == EXIT_OK, f"expected acceptance, got exit {p.returncode}: {out_text(p)}")
    try:
        j = json.loads(p.stdout)
    except ValueError as e:
        raise Fail(f"stdout is not JSON ({e}): {p.stdout[:300]!r}")
    want = {"name": "Ana Pérez", "national_id": "V-12345678", "email": "ana.perez@example.ve",
            "signer_national_id": "V-12345678", "signer_email": "ana.perez@example.ve",
            "message_sha256": hashlib.sha256(data).hexdigest()}
    want.update(fields)
    for k, v in want.items():
        check(j.get(k) == v, f"{k}: expected {v!r}, got {j.get(k)!r} in {j}")
    check("signer_cert_pem" not in j, "the JSON carries the PEM")
    check(re.fullmatch(r"[0-9A-F]+", j.get("signer_serial_hex") or "") is not None,
          f"signer_serial_hex: {j.get('signer_serial_hex')!r}")
    check("CN=Ana Pérez" in (j.get("signer_subject") or ""), f"signer_subject: {j.get('signer_subject')!r}")
    return j


def expect_refused(data, code, pattern, *extra, ca=None):
    p = intake(data, *extra, ca=ca)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == code, f"expected exit {code}, got {p.returncode}: {out_text(p)}")
    check(p.stdout == b"", f"a refusal printed on stdout: {p.stdout[:200]!r}")
    check(re.search(pattern, err) is not None, f"expected /{pattern}/ in the message, got: {err.strip()}")
    check(err.startswith("testigo intake: "), f"message not prefixed: {err.strip()}")


# ------------------------------------------------------------------ accepted

SUSP = dict(action="suspension", suspension_days=10, reason="viaje al exterior")


def matrix_case(tool, detached, text, binary, eol, headers):
    def fn():
        data = sign(SUSPENSION_ES, tool=tool, detached=detached, text=text, binary=binary)
        if eol == "crlf":
            data = to_crlf(data)
        elif eol == "lf":
            data = to_lf(data)
        if headers:
            data = with_headers(data)
        expect_ok(data, detached=detached, **SUSP)
    return fn


def mime_entity(headers, body):
    return "".join(f"{h}\r\n" for h in headers).encode() + b"\r\n" + body


def add_accepted():
    for tool in ("cms", "smime"):
        for detached in (True, False):
            for text in (False, True):
                for binary in (False, True):
                    for eol in ("as-written", "crlf", "lf"):
                        for headers in (False, True):
                            add(f"accepted: openssl {tool} -sign{'' if detached else ' -nodetach'}"
                                f"{' -text' if text else ''}{' -binary' if binary else ''}, {eol}"
                                f"{', mail headers on top' if headers else ''}",
                                matrix_case(tool, detached, text, binary, eol, headers))

    def body_crlf():
        expect_ok(sign(SUSPENSION_ES.replace("\n", "\r\n"), binary=True), **SUSP)
    add("accepted: a CRLF body signed -binary", body_crlf)

    def spanish_no_accents():
        body = ("NOMBRE: Ana Pérez\nCEDULA: v-12345678\nCORREO: ANA.PEREZ@EXAMPLE.VE\n"
                "SOLICITUD: RENOVACION\n")
        expect_ok(sign(body), action="renewal", reason="", suspension_days=0, email="ANA.PEREZ@EXAMPLE.VE")
    add("accepted: Spanish keys in capitals without accents, renewal without a reason", spanish_no_accents)

    def english():
        body = ("Request: Revocation\nName:   Ana Pérez  \nE-mail: <ana.perez@example.ve>\n"
                "ID: V 12345678\nReason: key compromise\n")
        expect_ok(sign(body), action="revocation", reason="key compromise", national_id="V12345678")
    add("accepted: English keys in another order, ID with a space, e-mail in <>", english)

    def english_suspension():
        body = ("Name: Ana Pérez\nID: V-12345678\nEmail: ana.perez@example.ve\nRequest: suspension\n"
                "Reason: travel\nDuration: 3 days\n")
        expect_ok(sign(body, tool="smime"), action="suspension", suspension_days=3, reason="travel")
    add("accepted: English suspension of 3 days", english_suspension)

    def bare_number():
        body = ("Nombre: Ana Pérez\nCI: V-12.345.678\nE-mail: ana.perez@example.ve\nSolicitud: Suspensión\n"
                "Motivo: vacaciones\nDuracion: 15\n")
        expect_ok(sign(body), action="suspension", suspension_days=15, reason="vacaciones",
                  national_id="V-12.345.678")
    add("accepted: Duracion: 15 (a bare number, the maximum), CI with dots", bare_number)

    def bare_blank_line():
        body = ("Nombre: Ana Perez\nCorreo: ana.perez@example.ve\n\nCedula: V-12345678\nSolicitud: renovacion\n")
        expect_ok(sign(body), action="renewal", name="Ana Perez", reason="")
    add("accepted: a bare template with a blank line inside (not taken for MIME headers)", bare_blank_line)

    def qp():
        body = mime_entity(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
                           b"Nombre: Ana P=C3=A9rez\r\nC=C3=A9dula: V-12345678\r\nCorreo: ana.perez@example.ve\r\n"
                           b"Solicitud: reactivaci=C3=B3n\r\nMotivo: regres=C3=A9 del viaje y necesito firmar =\r\n"
                           b"documentos\r\n")
        expect_ok(sign(body), action="reactivation", reason="regresé del viaje y necesito firmar documentos")
    add("accepted: quoted-printable UTF-8 with a soft line break, reactivation", qp)

    def qp_lf_opaque():
        body = mime_entity(["Content-Type: text/plain; charset=\"UTF-8\"", "Content-Transfer-Encoding: Quoted-Printable"],
                           b"Nombre: Ana P=C3=A9rez\nC=C3=A9dula: V-12345678\nCorreo: ana.perez@example.ve\n"
                           b"Solicitud: suspensi=C3=B3n\nMotivo: viaje\nDuraci=C3=B3n: 7 d=C3=ADas\n").replace(b"\r\n", b"\n")
        expect_ok(to_crlf(sign(body, detached=False, binary=True)), detached=False, action="suspension",
                  suspension_days=7, reason="viaje")
    add("accepted: quoted-printable LF entity, opaque, stored with CRLF", qp_lf_opaque)

    def b64():
        raw = ("Nombre: Ana Pérez\r\nCédula: V-12345678\r\nCorreo: ana.perez@example.ve\r\n"
               "Solicitud: revocación del certificado\r\nMotivo: pérdida del dispositivo\r\n").encode()
        enc = base64.encodebytes(raw)
        body = mime_entity(["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                            "Content-Transfer-Encoding: base64"], enc)
        expect_ok(sign(body), action="revocation", reason="pérdida del dispositivo")
    add("accepted: base64 entity, \"revocación del certificado\"", b64)

    def latin1():
        raw = ("Nombre: Ana Pérez\r\nCédula: V-12345678\r\nCorreo: ana.perez@example.ve\r\n"
               "Solicitud: renovación\r\n").encode("iso-8859-1")
        body = mime_entity(["Content-Type: text/plain; charset=ISO-8859-1", "Content-Transfer-Encoding: 8bit"], raw)
        expect_ok(sign(body, binary=True), action="renewal", reason="")
    add("accepted: ISO-8859-1 8bit entity", latin1)

    def flowed():
        body = mime_entity(["Content-Type: text/plain; charset=UTF-8; format=flowed",
                            "Content-Transfer-Encoding: 8bit"],
                           "Nombre: Ana Pérez\r\nCédula: V-12345678\r\nCorreo: ana.perez@example.ve\r\n"
                           "Solicitud: revocación\r\nMotivo: el dispositivo criptográfico fue \r\nrobado\r\n"
                           "> Solicitud: renovación\r\n".encode())
        expect_ok(sign(body), action="revocation", reason="el dispositivo criptográfico fue robado")
    add("accepted: format=flowed joins the wrapped reason; quoted lines ignored", flowed)

    def no_id_cert():
        body = ("Nombre: Ana Pérez\nRIF: J-12345678-9\nCorreo: ana.perez@example.ve\nSolicitud: renovación\n")
        j = expect_ok(sign(body, signer=NO_ID), action="renewal", national_id="J-12345678-9",
                      signer_national_id=None)
        check(j["detached"] is True, "detached")
    add("accepted: a certificate without serialNumber takes the ID of the body", no_id_cert)

    def summary():
        f = write(path("summary.eml"), sign(SUSPENSION_ES))
        p = run([TESTIGO, "intake", f, "--ca-file", CA[0]])
        check(p.returncode == 0, out_text(p))
        out = p.stdout.decode()
        for s in ("accepted: suspension for 10 days", "Ana Pérez", "V-12345678", "viaje al exterior",
                  hashlib.sha256(read(f)).hexdigest()):
            check(s in out, f"{s!r} not in the summary:\n{out}")
    add("accepted: the readable summary", summary)

    def replay_key():
        data = sign(SUSPENSION_ES)
        keys = set()
        shas = set()
        for variant in (data, to_crlf(data), to_lf(data), with_headers(data), with_headers(to_crlf(data))):
            j = expect_ok(variant, **SUSP)
            check(re.fullmatch(r"[0-9a-f]{64}", j.get("signature_sha256") or "") is not None,
                  f"signature_sha256: {j.get('signature_sha256')!r}")
            keys.add(j["signature_sha256"])
            shas.add(j["message_sha256"])
        check(len(keys) == 1, f"signature_sha256 differs between copies of one message: {keys}")
        check(len(shas) == 5, f"message_sha256 should differ between the copies: {shas}")
        other = expect_ok(sign(SUSPENSION_ES.replace("viaje al exterior", "viaje largo")), **dict(SUSP, reason="viaje largo"))
        check(other["signature_sha256"] not in keys, "two signed requests share signature_sha256")
    add("accepted: signature_sha256 is the same for every copy of one signed message", replay_key)

    def stdin():
        data = sign(SUSPENSION_ES)
        p = run([TESTIGO, "intake", "-", "--ca-file", CA[0], "--json"], input=data)
        check(p.returncode == 0, out_text(p))
        check(json.loads(p.stdout)["message_sha256"] == hashlib.sha256(data).hexdigest(), "sha256")
    add("accepted: the message on standard input", stdin)

    def now_rfc3339():
        expect_ok(sign(SUSPENSION_ES), "--now", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 5 * DAY)),
                  **SUSP)
    add("accepted: --now as RFC 3339 inside the validity", now_rfc3339)


# ------------------------------------------------------------------ refused

def flip_content(data, old, new):
    check(old in data, f"{old!r} not in the message")
    return data.replace(old, new, 1)


def flip_signature(data):
    """The message with the last byte of the DER signature (the signature value) changed."""
    text = data.decode("latin-1")
    m = re.search(r"Content-Type: application/(x-)?pkcs7-(signature|mime)[^\n]*\n(?:[^\n]+\n)*?\r?\n", text)
    check(m is not None, "no signature part")
    start = m.end()
    end = text.find("\n------", start)
    if end < 0:
        end = len(text)
    eol = "\r\n" if "\r\n" in text[start:end] else "\n"
    while text[end - 1:end] in ("\r", "\n"):
        end -= 1
    der = bytearray(base64.b64decode("".join(text[start:end].split())))
    der[-1] ^= 0x01
    b64 = base64.b64encode(bytes(der)).decode()
    lines = eol.join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return (text[:start] + lines + text[end:]).encode("latin-1")


def add_refused():
    def altered_body():
        data = sign(SUSPENSION_ES)
        expect_refused(flip_content(data, b"viaje al exterior", b"viaje al exteriar"), EXIT_CRYPTO,
                       r"the signature does not verify: the message was altered")
    add("refused: one byte of the body altered (detached)", altered_body)

    def altered_days():
        data = to_crlf(sign(SUSPENSION_ES, binary=True))
        expect_refused(flip_content(data, "10 días".encode(), "15 días".encode()), EXIT_CRYPTO,
                       r"the signature does not verify")
    add("refused: the duration altered in a -binary message stored with CRLF", altered_days)

    def altered_sig():
        expect_refused(flip_signature(sign(SUSPENSION_ES)), EXIT_CRYPTO, r"the signature does not verify")
    add("refused: one byte of the signature altered (detached)", altered_sig)

    def altered_sig_opaque():
        expect_refused(flip_signature(sign(SUSPENSION_ES, detached=False)), EXIT_CRYPTO,
                       r"the signature does not verify")
    add("refused: one byte of the signature altered (opaque)", altered_sig_opaque)

    def stranger():
        expect_refused(sign(SUSPENSION_ES, signer=STRANGER), EXIT_CRYPTO,
                       r"the signer certificate is not trusted: unable to get local issuer certificate")
    add("refused: signed by a certificate of another CA", stranger)

    def selfsigned():
        expect_refused(sign(SUSPENSION_ES, signer=SELF), EXIT_CRYPTO,
                       r"the signer certificate is not trusted: self.signed certificate")
    add("refused: a self-signed look-alike of the holder", selfsigned)

    def expired():
        expect_refused(sign(SUSPENSION_ES), EXIT_CRYPTO, r"the signer certificate is not trusted: certificate has expired",
                       "--now", str(NOW + 60 * DAY))
    add("refused: the signer certificate expired at --now", expired)

    def not_yet():
        expect_refused(sign(SUSPENSION_ES), EXIT_CRYPTO, r"not trusted: certificate is not yet valid",
                       "--now", str(NOW - 2 * DAY))
    add("refused: the signer certificate not yet valid at --now", not_yet)

    def tls_only():
        expect_refused(sign(SUSPENSION_ES, signer=TLS_ONLY), EXIT_CRYPTO,
                       r"not trusted: unsuitable certificate purpose")
    add("refused: a certificate for TLS clients only (purpose smimesign)", tls_only)

    def wrong_ca_file():
        expect_refused(sign(SUSPENSION_ES), EXIT_CRYPTO, r"not trusted: unable to get local issuer certificate",
                       ca=OTHER_CA[0])
    add("refused: verified against another CA", wrong_ca_file)

    def rule(body, pattern, code=EXIT_REFUSED, **kw):
        def fn():
            expect_refused(sign(body, **kw), code, pattern)
        return fn

    base = ("Nombre: Ana Pérez\nCédula: V-12345678\nCorreo: ana.perez@example.ve\n")
    add("refused: a suspension of 30 days",
        rule(base + "Solicitud: suspensión\nMotivo: viaje\nDuración: 30 días\n",
             r"refused: a suspension is at most 15 days \(the message asks for \"30 días\"\)"))
    add("refused: a suspension of 16 days (English)",
        rule(base + "Request: suspension\nReason: travel\nDuration: 16 days\n", r"refused: a suspension is at most 15 days"))
    add("refused: a suspension of 0 days",
        rule(base + "Solicitud: suspension\nMotivo: x\nDuracion: 0\n", r"refused: a suspension is at least 1 day"))
    add("refused: a suspension without a duration",
        rule(base + "Solicitud: suspensión\nMotivo: viaje\n", r"refused: a suspension needs a duration"))
    add("refused: a duration that is not a number of days",
        rule(base + "Solicitud: suspensión\nMotivo: viaje\nDuración: diez días\n",
             r"refused: the duration \"diez días\" is not a number of days"))
    add("refused: a duration on a renewal",
        rule(base + "Solicitud: renovación\nDuración: 10 días\n",
             r"refused: a duration is only for a suspension \(this request is a renewal\)"))
    add("refused: an unknown action",
        rule(base + "Solicitud: cancelación\nMotivo: x\n", r"refused: unknown request \"cancelación\""))
    add("refused: the template's choice list left as it is",
        rule(base + "Solicitud: renovación | suspensión | reactivación | revocación\n",
             r"refused: the request .* names more than one action"))
    add("refused: a revocation without a reason",
        rule(base + "Solicitud: revocación\n", r"refused: a revocation needs a reason \(Motivo:\)"))
    add("refused: no request at all",
        rule(base + "Motivo: x\n", r"refused: the message names no request"))
    add("refused: the ID in the body is not the signer's",
        rule("Nombre: Ana Pérez\nCédula: V-87654321\nCorreo: ana.perez@example.ve\nSolicitud: revocación\nMotivo: x\n",
             r"refused: the national ID in the message \(V-87654321\) is not the signer's \(V-12345678\)"))
    add("refused: the e-mail in the body is not in the signer's certificate",
        rule("Nombre: Ana Pérez\nCédula: V-12345678\nCorreo: otra@example.ve\nSolicitud: renovación\n",
             r"refused: the e-mail address in the message \(otra@example.ve\) is not in the signer certificate"))
    add("refused: no name",
        rule("Cédula: V-12345678\nCorreo: ana.perez@example.ve\nSolicitud: renovación\n",
             r"refused: the message gives no name \(Nombre:\)"))
    add("refused: no ID",
        rule("Nombre: Ana Pérez\nCorreo: ana.perez@example.ve\nSolicitud: renovación\n",
             r"refused: the message gives no national ID"))
    add("refused: no e-mail",
        rule("Nombre: Ana Pérez\nCédula: V-12345678\nSolicitud: renovación\n",
             r"refused: the message gives no e-mail address"))
    add("refused: a field given twice with different values",
        rule(base + "Solicitud: renovación\nSolicitud: revocación\nMotivo: x\n",
             r"the field Solicitud is given twice with different values", code=EXIT_INPUT))
    add("refused: the request only in the sender's signature block",
        rule(base + "\n-- \nSolicitud: revocación\nMotivo: x\n", r"refused: the message names no request"))

    def html():
        body = mime_entity(["Content-Type: multipart/alternative; boundary=\"b1\""],
                           b"--b1\r\nContent-Type: text/plain\r\n\r\nNombre: Ana\r\n--b1\r\n"
                           b"Content-Type: text/html\r\n\r\n<p>Nombre: Ana</p>\r\n--b1--\r\n")
        expect_refused(sign(body), EXIT_INPUT, r"the signed body is multipart/alternative .*send the request as plain text")
    add("refused: a body with text and HTML parts", html)

    def bad_qp():
        body = mime_entity(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
                           b"Nombre: Ana P=Zrez\r\n")
        expect_refused(sign(body), EXIT_INPUT, r"malformed quoted-printable in the signed body")
    add("refused: malformed quoted-printable", bad_qp)

    def bad_utf8():
        expect_refused(sign(base.encode("iso-8859-1") + b"Solicitud: renovaci\xf3n\n"), EXIT_INPUT,
                       r"the signed body is not valid UTF-8")
    add("refused: Latin-1 bytes without a charset", bad_utf8)

    def oversized():
        data = sign(SUSPENSION_ES)
        big = data + b"\n" * (MAX_MESSAGE + 1 - len(data))
        expect_refused(big, EXIT_INPUT, r"is 4194305 bytes, over the limit of 4194304")
        p = run([TESTIGO, "intake", "-", "--ca-file", CA[0]], input=big)
        check(p.returncode == EXIT_INPUT and b"over 4 MiB" in p.stderr, f"stdin: {p.returncode} {out_text(p)}")
    add("refused: a message over 4 MiB (file and standard input)", oversized)

    def not_smime():
        data = (MAIL_HEADERS + b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
                + SUSPENSION_ES.encode())
        expect_refused(data, EXIT_INPUT, r"not an S/MIME signed message")
    add("refused: a plain, unsigned e-mail", not_smime)

    def empty():
        expect_refused(b"", EXIT_INPUT, r"the message is empty")
    add("refused: an empty message", empty)

    def encrypted():
        inp = write(path("enc.body"), SUSPENSION_ES)
        out = path("enc.eml")
        openssl("cms", "-encrypt", "-in", inp, "-out", out, "-aes256", ANA[0])
        expect_refused(read(out), EXIT_INPUT, r"the message is S/MIME but not signed")
    add("refused: an encrypted, unsigned message", encrypted)

    def no_certs():
        inp = write(path("nocerts.body"), SUSPENSION_ES)
        out = path("nocerts.eml")
        openssl("cms", "-sign", "-in", inp, "-signer", ANA[0], "-inkey", ANA[1], "-nocerts", "-out", out)
        expect_refused(read(out), EXIT_CRYPTO, r"does not include the signer certificate")
    add("refused: a signature without the signer certificate", no_certs)

    def missing_ca():
        expect_refused(sign(SUSPENSION_ES), EXIT_INPUT, r"the CA file .* does not exist", ca=path("nope.pem"))
    add("refused: a CA file that does not exist", missing_ca)

    def not_a_ca_file():
        expect_refused(sign(SUSPENSION_ES), EXIT_INPUT, r"the CA file .* holds no PEM certificate",
                       ca=write(path("not-pem.pem"), "hola\n"))
    add("refused: a CA file without certificates", not_a_ca_file)

    def missing_message():
        p = run([TESTIGO, "intake", path("nope.eml"), "--ca-file", CA[0]])
        check(p.returncode == 5 and b"nope.eml" in p.stderr, f"{p.returncode}: {out_text(p)}")
    add("refused: a message file that does not exist (I/O, 5)", missing_message)

    def usage():
        p = run([TESTIGO, "intake", path("x.eml")])
        check(p.returncode == EXIT_USAGE and b"usage: testigo intake" in p.stderr, out_text(p))
        p = run([TESTIGO, "intake", path("x.eml"), "--ca-file", CA[0], "--now", "yesterday"])
        check(p.returncode == EXIT_USAGE and b"--now" in p.stderr, out_text(p))
    add("usage: --ca-file is required; --now must be a time", usage)


# ------------------------------------------------------------------ main

def setup():
    global WORK, CA, OTHER_CA, ANA, STRANGER, SELF, TLS_ONLY, NO_ID
    WORK = tempfile.mkdtemp(prefix="testigo-intake-")
    CA = make_ca("ca", "Testigo Test Root")
    OTHER_CA = make_ca("other-ca", "Another Root")
    ANA = make_holder("ana", ANA_SUBJ, CA)
    STRANGER = make_holder("stranger", ANA_SUBJ, OTHER_CA)
    SELF = make_selfsigned("self", ANA_SUBJ)
    TLS_ONLY = make_holder("tls", ANA_SUBJ, CA,
                           ext="subjectAltName=email:ana.perez@example.ve\nkeyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=clientAuth\n")
    NO_ID = make_holder("noid", "/C=VE/O=Empresa/CN=Ana Pérez", CA)
    add_accepted()
    add_refused()


def main():
    return tap.run(setup, lambda: WORK)


if __name__ == "__main__":
    sys.exit(main())
