#!/usr/bin/env python3
"""Integration tests for evidence bundles: seal, verify, inspect, the TSA
server, and every attack the strict verifier must refuse (TAP output).

usage: test-bundle.py TESTIGO BUNDLE_TOOL SOURCE_ROOT
       (or the environment variables TESTIGO, BUNDLE_TOOL, TESTIGO_SOURCE_ROOT)

One development PKI (--bits 2048) and one fixture per run. Each attack is
crafted so that it reaches the check it targets (bundle-tool repacks bags
exactly as the sealer writes them, re-signs with the development key, and
swaps time-stamp tokens), and each case asserts the exact indication,
sub-indication and, where meaningful, the member to blame.

Set TESTIGO_KEEP_TMP=1 to keep the work directory.
Python 3 standard library only.
"""
import calendar
import gzip
import hashlib
import io
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tap  # noqa: E402  (tests/tap.py)
from tap import Fail, add, check, test  # noqa: E402,F401

# ------------------------------------------------------------------ setup

if len(sys.argv) == 4:
    TESTIGO, TOOL, SRC = sys.argv[1:4]
elif len(sys.argv) == 1 and all(k in os.environ for k in ("TESTIGO", "BUNDLE_TOOL", "TESTIGO_SOURCE_ROOT")):
    TESTIGO, TOOL, SRC = os.environ["TESTIGO"], os.environ["BUNDLE_TOOL"], os.environ["TESTIGO_SOURCE_ROOT"]
else:
    sys.stderr.write(__doc__)
    sys.exit(2)
TESTIGO, TOOL, SRC = (os.path.abspath(p) for p in (TESTIGO, TOOL, SRC))
FIXTURE = os.path.join(SRC, "tests", "integration", "make-fixture.py")
INVALID_RECORDS = os.path.join(SRC, "evidence-schema", "examples", "invalid")

NOW = int(time.time())
ST = NOW - 600          # the base sealing time (inside the RA validity, which starts at NOW - 1 h)
DAY = 86400
EXIT = {"TOTAL-PASSED": 0, "TOTAL-FAILED": 1, "INDETERMINATE": 2}

WORK = None             # temporary directory
KA = KB = KE = None     # development PKIs: A is trusted, B is not, E's RA certificate expired yesterday
FX = None               # fixture directory
CASE = None             # case id of the fixture's record
BASE = None             # the base bundle, sealed with KA at ST
BASE_MEMBERS = None
SMALL = None            # a bundle with a small recording, for byte sweeps
STILLS = ("doc-front.png", "doc-back.png", "face.png")
TSA_PROC = None
TSA_PORT = None


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def path(*parts):
    return os.path.join(WORK, *parts)


SANITIZER = re.compile(rb"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: AddressSanitizer")


def sanitizer_check(stderr, what):
    m = SANITIZER.search(stderr or b"")
    check(m is None, f"sanitizer report from {what}: {stderr[max(0, m.start() - 200):m.start() + 800].decode(errors='replace')}"
          if m else "")


def run(args, timeout=120, env=None, input=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, env=env, input=input)
    sanitizer_check(p.stderr, " ".join(os.path.basename(str(a)) for a in args[:2]))
    return p


def tg(*args, **kw):
    return run([TESTIGO, *args], **kw)


def tool(*args):
    p = run([TOOL, *args])
    check(p.returncode == 0, f"bundle-tool {args[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p


def out_text(p):
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def seal(out, keys=None, t=ST, record=None, recording=None, events="default", stills=STILLS, extra=(),
         expect_ok=True):
    keys = keys or KA
    args = ["seal", "--keys", keys, "--record", record or os.path.join(FX, "record.json"),
            "--recording", recording or os.path.join(FX, "recording.mkv")]
    if events == "default":
        events = os.path.join(FX, "events.jsonl")
    if events:
        args += ["--events", events]
    for s in stills:
        args += ["--still", f"{s}={os.path.join(FX, s)}"]
    if t is not None:
        args += ["--sealing-time", rfc3339(t) if isinstance(t, int) else t]
    args += [*extra, "--out", out]
    p = tg(*args)
    if expect_ok:
        check(p.returncode == 0, f"seal failed ({p.returncode}): {out_text(p)}")
    return p


def verify(bundle, *extra, ca=None):
    p = tg("verify", "--ca-file", ca or os.path.join(KA, "root.pem"), "--json", *extra, bundle)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        raise Fail(f"verify printed no JSON (exit {p.returncode}): {out_text(p)}")
    check(j["indication"] in EXIT, f"unknown indication {j['indication']}")
    check(p.returncode == EXIT[j["indication"]],
          f"exit {p.returncode} does not go with {j['indication']}; stderr: {p.stderr.decode(errors='replace')}")
    return j


def show(j):
    return f"{j['indication']} / {j['subIndication']} / member {j['member']} / {j['message']}"


def expect(bundle, indication, sub, member=None, message=None, extra=(), ca=None):
    """Asserts the verdict. indication/sub: a string or a tuple of accepted
    ones; member: relative to the bag (or absolute with a leading '!'),
    None not to check it; message: a regular expression."""
    j = verify(bundle, *extra, ca=ca)
    check(j["indication"] != "TOTAL-PASSED", f"an attacked bundle PASSED: {show(j)}")
    inds = (indication,) if isinstance(indication, str) else indication
    subs = (sub,) if isinstance(sub, str) else sub
    check(j["indication"] in inds and j["subIndication"] in subs,
          f"expected {'|'.join(inds)} / {'|'.join(subs)}, got {show(j)}")
    if member is not None:
        want = member[1:] if member.startswith("!") else f"{CASE}/{member}"
        check(j["member"] == want, f"expected member {want}, got {show(j)}")
    if message is not None:
        check(j["message"] and re.search(message, j["message"]), f"message does not match /{message}/: {show(j)}")
    return j


def expect_pass(bundle, *extra, ca=None):
    j = verify(bundle, *extra, ca=ca)
    check(j["indication"] == "TOTAL-PASSED" and j["subIndication"] is None,
          f"expected TOTAL-PASSED, got {show(j)}")
    return j


# ------------------------------------------------------------ tar helpers

def members(bundle):
    """[(name as in the tar, TarInfo)] — tarfile only to find offsets."""
    with tarfile.open(bundle, "r:") as tf:
        return [(m.name + ("/" if m.isdir() else ""), m) for m in tf.getmembers()]


def member(bundle, rel):
    for name, m in members(bundle):
        if name == f"{CASE}/{rel}":
            return m
    raise Fail(f"{rel} not in {bundle}")


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data):
    if os.path.lexists(p):
        os.unlink(p)
    with open(p, "wb") as f:
        f.write(data)
    return p


def extract(bundle, dest):
    """Extracts a canonical bundle into dest (writable files); returns the bag dir."""
    os.makedirs(dest)
    with tarfile.open(bundle, "r:") as tf:
        for m in tf.getmembers():
            check(m.isdir() or m.isfile(), f"unexpected member type {m.name}")
            target = os.path.join(dest, m.name)
            check(os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep), f"unsafe {m.name}")
            if m.isdir():
                os.makedirs(target, exist_ok=True)
            else:
                write(target, tf.extractfile(m).read())
    return os.path.join(dest, CASE)


_n = [0]


def fresh(tag="x"):
    _n[0] += 1
    return path(f"{_n[0]:03d}-{tag}")


def bag_of(bundle=None):
    return extract(bundle or BASE, fresh("bag"))


def repack(bag, mtime=None):
    out = fresh("repack") + ".tar"
    tool("repack", bag, out, str(ST if mtime is None else mtime))
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def rehash(bag):
    """Rewrites manifest-sha256.txt, Payload-Oxum and tagmanifest-sha256.txt
    for the bag's current files, as the sealer writes them."""
    payload = []
    for root, dirs, files in os.walk(os.path.join(bag, "data")):
        for f in files:
            full = os.path.join(root, f)
            payload.append((os.path.relpath(full, bag), read(full)))
    payload.sort()
    write(os.path.join(bag, "manifest-sha256.txt"),
          "".join(f"{sha256(d)}  {n}\n" for n, d in payload).encode())
    info = read(os.path.join(bag, "bag-info.txt")).decode()
    info = re.sub(r"(?m)^Payload-Oxum: .*$", f"Payload-Oxum: {sum(len(d) for _, d in payload)}.{len(payload)}", info)
    write(os.path.join(bag, "bag-info.txt"), info.encode())
    tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"]
    tags += [os.path.join("certs", f) for f in os.listdir(os.path.join(bag, "certs"))]
    tags.sort()
    write(os.path.join(bag, "tagmanifest-sha256.txt"),
          "".join(f"{sha256(read(os.path.join(bag, n)))}  {n}\n" for n in tags).encode())


def resign(bag, keys=None, t=ST, gen=None):
    tool("resign", keys or KA, bag, str(t), *([str(gen)] if gen is not None else []))


def flip(bundle, offset, xor=0x01):
    data = bytearray(read(bundle))
    data[offset] ^= xor
    return write(fresh("flip") + ".tar", bytes(data))


def ustar_checksum(block):
    b = bytearray(block)
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


def ustar_header(name, size, mtime, typeflag=b"0", mode=0o444):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"%07o\0" % 0
    h[116:124] = b"%07o\0" % 0
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % mtime
    h[156:157] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[265:269] = b"root"
    h[297:301] = b"root"
    return ustar_checksum(h)


def pax_records(**kv):
    out = b""
    for k, v in kv.items():
        body = f" {k}={v}\n".encode()
        n = len(body) + 1
        while len(str(n).encode()) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def pad(data):
    return data + bytes(-len(data) % 512)


# ------------------------------------------------------------ DER helpers

def der(buf, off):
    """(tag, value offset, value length) of the TLV at off."""
    tag, n = buf[off], buf[off + 1]
    if n & 0x80:
        k = n & 0x7F
        return tag, off + 2 + k, int.from_bytes(buf[off + 2:off + 2 + k], "big")
    return tag, off + 2, n


def der_children(buf, off):
    _, vs, n = der(buf, off)
    out, p = [], vs
    while p < vs + n:
        out.append(p)
        _, cvs, cn = der(buf, p)
        p = cvs + cn
    return out


def signed_data_fields(buf, ci=0):
    """Offsets in a DER ContentInfo(SignedData): the bytes no signature covers
    that a strict verifier must still pin down, plus the signature value and
    the embedded time-stamp token, if any."""
    sd = der_children(buf, der_children(buf, ci)[1])[0]
    sdc = der_children(buf, sd)
    si_set = sdc[-1]
    si = der_children(buf, si_set)[0]
    sic = der_children(buf, si)
    fields = {"SignedData.version": der(buf, sdc[0])[1], "SignerInfo.version": der(buf, sic[0])[1]}
    i = next(k for k, c in enumerate(sic) if buf[c] == 0xA0)     # signedAttrs
    sigalg = sic[i + 1]
    params = der_children(buf, sigalg)[1:]
    if params and buf[params[0]] == 0x05:
        fields["SignerInfo.signatureAlgorithm NULL parameters"] = params[0]
    _, sig_vs, sig_n = der(buf, sic[i + 2])
    token = None
    if len(sic) > i + 3 and buf[sic[i + 3]] == 0xA1:
        attr = der_children(buf, sic[i + 3])[0]
        token = der_children(buf, der_children(buf, attr)[1])[0]
    return fields, buf[sig_vs:sig_vs + sig_n], token


# ------------------------------------------------------------ TAP runner



def parallel(fn, items, workers=4):
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


# ================================================================= cases

# ---- keys

@test("keys init: private keys are mode 0600, certificates are not writable by others")
def _():
    for f in ("root.key", "ra.key", "tsa.key"):
        mode = os.stat(os.path.join(KA, f)).st_mode & 0o777
        check(mode == 0o600, f"{f} is mode {mode:o}")
    for f in ("root.pem", "ra.pem", "tsa.pem", "crl.pem"):
        mode = os.stat(os.path.join(KA, f)).st_mode & 0o777
        check(mode & 0o022 == 0, f"{f} is mode {mode:o}")


@test("keys init refuses to overwrite an existing PKI (exit 7, files unchanged)")
def _():
    before = {f: read(os.path.join(KA, f)) for f in os.listdir(KA)}
    p = tg("keys", "init", "--bits", "2048", KA)
    check(p.returncode == 7, f"exit {p.returncode}: {out_text(p)}")
    check(re.search(r"exists|overwrite", out_text(p)), f"no clear message: {out_text(p)}")
    check(before == {f: read(os.path.join(KA, f)) for f in os.listdir(KA)}, "keys changed")
    # a single existing file is enough to refuse
    d = fresh("keys-partial")
    os.makedirs(d)
    write(os.path.join(d, "tsa.key"), b"mine")
    p = tg("keys", "init", "--bits", "2048", d)
    check(p.returncode == 7, f"exit {p.returncode} with one existing file: {out_text(p)}")
    check(sorted(os.listdir(d)) == ["tsa.key"] and read(os.path.join(d, "tsa.key")) == b"mine",
          f"keys init wrote next to an existing key: {os.listdir(d)}")


# ---- seal and verify

@test("seal + verify: TOTAL-PASSED, exit 0, no warnings")
def _():
    j = expect_pass(BASE)
    check(j["member"] is None and j["message"] is None, f"a passed report blames something: {show(j)}")
    check(j["warnings"] == [], f"warnings: {j['warnings']}")


@test("verify --json: the report's fields match the record and the seal")
def _():
    j = expect_pass(BASE)
    rec = json.load(open(os.path.join(FX, "record.json")))
    want = {"caseId": rec["case"]["id"], "action": rec["case"]["action"],
            "certificateSerial": rec["certificate"]["serial"], "officer": rec["officer"]["id"],
            "outcome": rec["outcome"]["result"], "channel": rec["case"]["channel"],
            "genTime": rfc3339(ST), "sealingDate": rfc3339(ST),
            "bytes": os.path.getsize(BASE), "members": len(BASE_MEMBERS)}
    for k, v in want.items():
        check(j[k] == v, f"{k}: {j[k]!r}, expected {v!r}")
    check("CN=Testigo RA Sealing" in (j["signer"] or ""), f"signer {j['signer']}")
    check("CN=Testigo Development TSA" in (j["tsa"] or ""), f"tsa {j['tsa']}")
    check(re.fullmatch(r"[0-9]+(\.[0-9]+)+", j["tsaPolicy"] or ""), f"tsaPolicy {j['tsaPolicy']}")


@test("verify (text): prints the verdict, case, signer and genTime")
def _():
    p = tg("verify", "--ca-file", os.path.join(KA, "root.pem"), BASE)
    t = p.stdout.decode()
    check(p.returncode == 0, f"exit {p.returncode}: {out_text(p)}")
    check(t.splitlines()[0] == "TOTAL-PASSED", f"first line: {t.splitlines()[:1]}")
    for s in (CASE, "Testigo RA Sealing", rfc3339(ST)):
        check(s in t, f"{s} missing from:\n{t}")


@test("inspect prints the members, the case id, the signer and genTime")
def _():
    p = tg("inspect", BASE)
    t = p.stdout.decode()
    check(p.returncode == 0, f"exit {p.returncode}: {out_text(p)}")
    for name, _m in BASE_MEMBERS:
        check(re.search(r"\s" + re.escape(name) + r"$", t, re.M), f"member {name} not listed:\n{t}")
    check(re.search(r"case\.id: " + re.escape(CASE), t), f"case id missing:\n{t}")
    check(re.search(r"signer: .*CN=Testigo RA Sealing", t), f"signer missing:\n{t}")
    check(re.search(r"genTime: " + re.escape(rfc3339(ST)), t), f"genTime missing:\n{t}")


@test("stock tools accept the bundle: tar -t, openssl cms -verify, openssl ts -verify, sha256sum -c")
def _():
    missing = [t for t in ("tar", "openssl", "sha256sum") if shutil.which(t) is None]
    check(not missing, f"stock tools missing (CI installs them): {' '.join(missing)}")
    listing = run(["tar", "-tvf", BASE]).stdout.decode().splitlines()
    check(len(listing) == len(BASE_MEMBERS), f"tar -t lists {len(listing)} members")
    for line in listing:
        check(line[0] in "-d" and " ../" not in line and " /" not in line, f"tar -tv: {line}")
    d = fresh("stock")
    os.makedirs(d)
    p = run(["tar", "-xf", BASE, "-C", d, "--no-same-owner", "--no-same-permissions"])
    check(p.returncode == 0, out_text(p))
    bag = os.path.join(d, CASE)
    root = os.path.join(KA, "root.pem")
    # the token's imprint is over the SignerInfo's signature value (CAdES-B-T), not the .p7s file
    _f, sigval, _t = signed_data_fields(read(os.path.join(bag, "tagmanifest-sha256.txt.p7s")))
    sigfile = write(os.path.join(d, "signature-value.bin"), sigval)
    steps = [
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "tagmanifest-sha256.txt.p7s",
         "-content", "tagmanifest-sha256.txt", "-CAfile", root, "-purpose", "any", "-out", "/dev/null"],
        ["openssl", "ts", "-verify", "-data", sigfile, "-in", "tagmanifest-sha256.txt.p7s.tsr", "-CAfile", root],
        ["sha256sum", "-c", "--strict", "tagmanifest-sha256.txt"],
        ["sha256sum", "-c", "--strict", "manifest-sha256.txt"],
    ]
    for s in steps:
        p = subprocess.run(s, cwd=bag, capture_output=True, timeout=60)
        check(p.returncode == 0, f"{' '.join(s[:2])} failed: {out_text(p)}")
    p = subprocess.run(["openssl", "ts", "-verify", "-data", "tagmanifest-sha256.txt.p7s", "-in",
                        "tagmanifest-sha256.txt.p7s.tsr", "-CAfile", root], cwd=bag, capture_output=True, timeout=60)
    check(p.returncode != 0, "the token also verifies over the .p7s file: it must cover the signature value only")
    listed = sorted(l.split("  ", 1)[1] for l in read(os.path.join(bag, "manifest-sha256.txt")).decode().splitlines())
    found = sorted(os.path.relpath(os.path.join(r, f), bag) for r, _d, fs in os.walk(os.path.join(bag, "data")) for f in fs)
    check(listed == found, f"manifest {listed} vs files {found}")


@test("bundle-tool repack of an untouched extraction is byte-identical to the sealed bundle")
def _():
    out = repack(bag_of())
    check(read(out) == read(BASE), "repack differs from the sealer's output")


@test("bundle-tool rehash + resign + repack of an untouched bag is byte-identical")
def _():
    bag = bag_of()
    rehash(bag)
    resign(bag)
    check(read(repack(bag)) == read(BASE), "rehash/resign/repack differs from the sealer's output")


@test("determinism: sealing twice with the same --sealing-time gives identical bytes")
def _():
    a = fresh("det") + ".tar"
    seal(a)
    check(read(a) == read(BASE), "two seals at the same time differ")


@test("determinism: a different sealing time gives different bytes, and both verify")
def _():
    a = fresh("det2") + ".tar"
    seal(a, t=ST + 60)
    check(read(a) != read(BASE), "a different sealing time gave the same bytes")
    j = expect_pass(a)
    check(j["sealingDate"] == rfc3339(ST + 60), f"sealingDate {j['sealingDate']}")


@test("SOURCE_DATE_EPOCH stands in for --sealing-time (same bytes)")
def _():
    a = fresh("sde") + ".tar"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(ST))
    p = run([TESTIGO, "seal", "--keys", KA, "--record", os.path.join(FX, "record.json"),
             "--recording", os.path.join(FX, "recording.mkv"), "--events", os.path.join(FX, "events.jsonl"),
             *sum((["--still", f"{s}={os.path.join(FX, s)}"] for s in STILLS), []), "--out", a], env=env)
    check(p.returncode == 0, out_text(p))
    check(read(a) == read(BASE), "SOURCE_DATE_EPOCH seal differs")


# ---- one flipped byte in each member's data (cases added in main)

def flip_case(name, m):
    rel = name.split("/", 1)[1]

    def fn():
        bundle = flip(BASE, m.offset_data + m.size // 2)
        if rel.startswith(("data/", "certs/")) or rel in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt",
                                                           "tagmanifest-sha256.txt"):
            manifest = "manifest-sha256.txt" if rel.startswith("data/") else \
                "its signature" if rel == "tagmanifest-sha256.txt" else "tagmanifest-sha256.txt"
            expect(bundle, "TOTAL-FAILED", "HASH_FAILURE", rel, re.escape(manifest))
        else:
            expect(bundle, "TOTAL-FAILED", ("FORMAT_FAILURE", "SIG_CRYPTO_FAILURE", "HASH_FAILURE"))
    return fn


def pem_flip_case(rel):
    def fn():
        m = member(SMALL, rel)
        bad = []
        for off in range(0, m.size, 97):
            data = bytearray(read(SMALL))
            data[m.offset_data + off] ^= 0x01
            b = write(fresh("pem") + ".tar", bytes(data))
            j = verify(b)
            check(j["indication"] != "TOTAL-PASSED", f"flip at {off} PASSED")
            if j["subIndication"] != "HASH_FAILURE" or j["member"] != f"{CASE}/{rel}":
                bad.append(f"@{off}: {j['subIndication']} on {j['member']}")
        check(not bad, f"{len(bad)} flips not reported as HASH_FAILURE on {rel}: " + "; ".join(bad[:4]))
    return fn


@test("every 19th byte of the .p7s and .tsr flipped (and both token copies): never TOTAL-PASSED")
def _():
    raw = read(SMALL)
    p7 = member(SMALL, "tagmanifest-sha256.txt.p7s")
    tsr = member(SMALL, "tagmanifest-sha256.txt.p7s.tsr")
    p7b = raw[p7.offset_data:p7.offset_data + p7.size]
    _fields, _sig, tok = signed_data_fields(p7b)
    _, tvs, tn = der(p7b, tok)
    token = p7b[tok:tvs + tn]
    tsrb = raw[tsr.offset_data:tsr.offset_data + tsr.size]
    t_at = tsrb.index(token)
    jobs = [[o] for o in range(p7.offset_data, p7.offset_data + p7.size, 19)]
    jobs += [[o] for o in range(tsr.offset_data, tsr.offset_data + tsr.size, 19)]
    jobs += [[p7.offset_data + tok + i, tsr.offset_data + t_at + i] for i in range(3, len(token), 19)]

    def one(offs):
        data = bytearray(raw)
        for o in offs:
            data[o] ^= 0x01
        b = write(fresh("sweep") + ".tar", bytes(data))
        j = verify(b)
        os.unlink(b)
        return offs, j
    passed = [(o, show(j)) for o, j in parallel(one, jobs) if j["indication"] == "TOTAL-PASSED"]
    check(not passed, f"{len(passed)} of {len(jobs)} flips PASSED: {passed[:5]}")


@test("unsigned CMS fields pinned: a changed SignedData/SignerInfo version or signatureAlgorithm NULL "
      "in the .p7s or the token is not TOTAL-PASSED")
def _():
    raw = read(SMALL)
    p7 = member(SMALL, "tagmanifest-sha256.txt.p7s")
    tsr = member(SMALL, "tagmanifest-sha256.txt.p7s.tsr")
    p7b = raw[p7.offset_data:p7.offset_data + p7.size]
    fields, _sig, tok = signed_data_fields(p7b)
    _, tvs, tn = der(p7b, tok)
    token = p7b[tok:tvs + tn]
    t_at = raw[tsr.offset_data:tsr.offset_data + tsr.size].index(token)
    tfields, _tsig, _ = signed_data_fields(token)
    jobs = [(f".p7s {k} @{o}", [p7.offset_data + o]) for k, o in fields.items()]
    jobs += [(f"token {k} @{o}", [p7.offset_data + tok + o, tsr.offset_data + t_at + o]) for k, o in tfields.items()]
    check(len(jobs) == 6, f"found {len(jobs)} fields")
    passed = []
    for what, offs in jobs:
        data = bytearray(raw)
        for o in offs:
            data[o] ^= 0x01
        j = verify(write(fresh("unsigned") + ".tar", bytes(data)))
        if j["indication"] == "TOTAL-PASSED":
            passed.append(what)
    check(not passed, f"PASSED with a changed {', '.join(passed)}")


# ---- tar headers

@test("a flipped byte in a tar header (checksum now wrong): FORMAT_FAILURE")
def _():
    for rel in ("", "data/record.json", "tagmanifest-sha256.txt.p7s.tsr"):
        m = member(BASE, rel) if rel else members(BASE)[0][1]
        for field_off in (5, 101, 130, 257):      # name, mode, size, magic
            expect(flip(BASE, m.offset + field_off), "TOTAL-FAILED", "FORMAT_FAILURE")


@test("a changed tar header field with a valid checksum: FORMAT_FAILURE (not canonical)")
def _():
    m = member(BASE, "data/record.json")
    raw = read(BASE)
    h = raw[m.offset:m.offset + 512]
    variants = {
        "mode 0644": h[:100] + b"0000644\0" + h[108:],
        "uid 1": h[:108] + b"0000001\0" + h[116:],
        "uname nobody": h[:265] + b"nobody".ljust(32, b"\0") + h[297:],
        "typeflag 7 (contiguous)": h[:156] + b"7" + h[157:],
        "typeflag NUL (old regular)": h[:156] + b"\0" + h[157:],
        "mtime + 1": h[:136] + b"%011o\0" % (ST + 1) + h[148:],
        "ustar magic to GNU": h[:257] + b"ustar  \0" + h[265:],
    }
    for what, nh in variants.items():
        b = write(fresh("hdr") + ".tar", raw[:m.offset] + ustar_checksum(nh) + raw[m.offset + 512:])
        j = expect(b, "TOTAL-FAILED", "FORMAT_FAILURE")
        check(j["member"] in (f"{CASE}/data/record.json", None) or "record.json" in (j["message"] or ""),
              f"{what}: blames {show(j)}")


# ---- truncation

def trunc_case(what, length_fn):
    def fn():
        raw = read(BASE)
        n = length_fn()
        check(0 <= n < len(raw), f"bad length {n}")
        expect(write(fresh("trunc") + ".tar", raw[:n]), "TOTAL-FAILED", "FORMAT_FAILURE")
    add(f"truncated {what}: FORMAT_FAILURE", fn)


trunc_case("to 0 bytes", lambda: 0)
trunc_case("in the first header (100 bytes)", lambda: 100)
trunc_case("mid-header of data/record.json", lambda: member(BASE, "data/record.json").offset + 300)
trunc_case("right after a header (no data)", lambda: member(BASE, "data/record.json").offset_data)
trunc_case("mid-data of data/recording.mkv", lambda: member(BASE, "data/recording.mkv").offset_data + 1_000_000)
trunc_case("in the padding after the last member",
           lambda: (lambda m: m.offset_data + m.size + 1)(member(BASE, "tagmanifest-sha256.txt.p7s.tsr")))
trunc_case("at a member boundary (the last member missing)",
           lambda: member(BASE, "tagmanifest-sha256.txt.p7s.tsr").offset)
trunc_case("without both end-of-archive blocks", lambda: os.path.getsize(BASE) - 1024)
trunc_case("without the last end-of-archive block", lambda: os.path.getsize(BASE) - 512)
trunc_case("by one byte", lambda: os.path.getsize(BASE) - 1)


# ---- appended members and trailing data

@test("a valid tar member appended after the end blocks (tar concatenation): FORMAT_FAILURE")
def _():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(f"{CASE}/data/record.json")
        data = read(os.path.join(FX, "record.json"))
        ti.size, ti.mtime, ti.mode = len(data), ST, 0o444
        tf.addfile(ti, io.BytesIO(data))
    expect(write(fresh("concat") + ".tar", read(BASE) + buf.getvalue()), "TOTAL-FAILED", "FORMAT_FAILURE",
           message="trailing data|end")


@test("a canonical member appended before the end blocks (<case>/zzz.txt): FORMAT_FAILURE")
def _():
    out = fresh("append") + ".tar"
    tool("append", BASE, out, f"{CASE}/zzz.txt", os.path.join(FX, "face.png"), str(ST))
    expect(out, "TOTAL-FAILED", "FORMAT_FAILURE", "zzz.txt", "not part of the bundle layout")


@test("trailing garbage after the end blocks: FORMAT_FAILURE")
def _():
    expect(write(fresh("garbage") + ".tar", read(BASE) + b"garbage\n"), "TOTAL-FAILED", "FORMAT_FAILURE",
           message="trailing data")


@test("an extra zero block after the end blocks: FORMAT_FAILURE")
def _():
    expect(write(fresh("zeros") + ".tar", read(BASE) + bytes(512)), "TOTAL-FAILED", "FORMAT_FAILURE",
           message="trailing data")


# ---- duplicates

@test("a duplicate member: a second data/record.json appended: FORMAT_FAILURE")
def _():
    evil = write(fresh("evil-record") + ".json", read(os.path.join(FX, "record.json")).replace(b"approved", b"rejected"))
    out = fresh("dup") + ".tar"
    tool("append", BASE, out, f"{CASE}/data/record.json", evil, str(ST))
    expect(out, "TOTAL-FAILED", "FORMAT_FAILURE", "data/record.json", "twice")


@test("a duplicate member inserted right after the original (what GNU tar would extract): FORMAT_FAILURE")
def _():
    raw = read(BASE)
    m = member(BASE, "data/record.json")
    end = m.offset_data + m.size + (-m.size % 512)
    copy = bytearray(raw[m.offset:end])
    i = copy.index(b"approved")
    copy[i:i + 8] = b"rejected"
    expect(write(fresh("dup2") + ".tar", raw[:end] + bytes(copy) + raw[end:]), "TOTAL-FAILED", "FORMAT_FAILURE",
           "data/record.json", "twice")


@test("a duplicate directory member (<case>/data/ twice): FORMAT_FAILURE")
def _():
    raw = read(BASE)
    m = member(BASE, "data/")
    expect(write(fresh("dupdir") + ".tar", raw[:m.offset] + raw[m.offset:m.offset + 512] + raw[m.offset:]),
           "TOTAL-FAILED", "FORMAT_FAILURE", "data/", "twice")


# ---- links

@test("a symlink member (data/stills/link.png -> /etc/passwd): FORMAT_FAILURE naming the link")
def _():
    bag = bag_of()
    os.symlink("/etc/passwd", os.path.join(bag, "data", "stills", "link.png"))
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "data/stills/link.png", r"link\.png is a symbolic link")


@test("a symlink in place of data/record.json: FORMAT_FAILURE naming the link")
def _():
    bag = bag_of()
    os.unlink(os.path.join(bag, "data", "record.json"))
    os.symlink("../../../etc/passwd", os.path.join(bag, "data", "record.json"))
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "data/record.json", r"record\.json is a symbolic link")


@test("a hardlink member (data/stills/zz.png => face.png): FORMAT_FAILURE naming the link")
def _():
    bag = bag_of()
    os.link(os.path.join(bag, "data", "stills", "face.png"), os.path.join(bag, "data", "stills", "zz.png"))
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "data/stills/zz.png", r"zz\.png is a hard link")


# ---- unsafe names

def name_case(name):
    def fn():
        out = fresh("name") + ".tar"
        tool("append", BASE, out, name.replace("<case>", CASE), os.path.join(FX, "face.png"), str(ST))
        expect(out, "TOTAL-FAILED", "FORMAT_FAILURE", "!" + name.replace("<case>", CASE), "unsafe")
    add(f"unsafe member name {name!r}: FORMAT_FAILURE", fn)


for _name in ("../evil.txt", "/etc/evil.txt", "<case>/../evil.txt", "<case>/data/./evil.txt",
              "<case>//data/evil.txt", "<case>/data/stills/a b.png"):
    name_case(_name)


# ---- pax/ustar disagreement

def pax_case(what, pax_size_fn, records_fn=None, blame="data/record.json"):
    def fn():
        raw = read(BASE)
        m = member(BASE, "data/record.json")
        recs = records_fn(m) if records_fn else pax_records(size=pax_size_fn(m))
        pax = ustar_header(f"{CASE}/data/PaxHeader/record.json".encode(), len(recs), ST, b"x", 0o644) + pad(recs)
        b = write(fresh("pax") + ".tar", raw[:m.offset] + pax + raw[m.offset:])
        expect(b, "TOTAL-FAILED", "FORMAT_FAILURE", blame, "canonical")
    add(f"pax header {what} for data/record.json: FORMAT_FAILURE", fn)


pax_case("'size' larger than the ustar size (TARmageddon)", lambda m: m.size + 512)
pax_case("'size' smaller than the ustar size", lambda m: m.size - 1)
pax_case("'size' of 0", lambda m: 0)
pax_case("agreeing with the ustar size (not canonical)", lambda m: m.size)
pax_case("with an unknown key", None, lambda m: pax_records(**{"TESTIGO.evil": "1"}))
pax_case("with a 'path' to another name", None, lambda m: pax_records(path=f"{CASE}/data/recording.mkv"),
         blame="data/recording.mkv")


@test("ustar size field changed with a valid checksum: FORMAT_FAILURE")
def _():
    raw = read(BASE)
    m = member(BASE, "data/record.json")
    h = raw[m.offset:m.offset + 512]
    for size in (m.size - 1, m.size + 1, 0):
        nh = ustar_checksum(h[:124] + b"%011o\0" % size + h[136:])
        expect(write(fresh("size") + ".tar", raw[:m.offset] + nh + raw[m.offset + 512:]),
               "TOTAL-FAILED", "FORMAT_FAILURE")


# ---- unknown and missing members (repack keeps everything else canonical)

def extra_case(rel, content, message, member_rel=None):
    def fn():
        bag = bag_of()
        target = os.path.join(bag, rel)
        if rel.endswith("/"):
            os.makedirs(target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write(target, content)
        expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", member_rel or rel, message)
    add(f"an unknown member {rel}: FORMAT_FAILURE", fn)


extra_case("data/extra.txt", b"extra\n", "not part of the bundle layout")
extra_case("extra.txt", b"extra\n", "not part of the bundle layout")
extra_case("certs/extra.pem", b"extra\n", "not part of the bundle layout")
extra_case("extra/", None, "not part of the bundle layout")
extra_case("data/stills/extra.png", b"\x89PNG\r\n", "not listed in manifest-sha256.txt")
extra_case("data/recording-2.mkv", b"\x1aE\xdf\xa3", "not listed in manifest-sha256.txt")


def missing_case(rel, message):
    def fn():
        bag = bag_of()
        os.unlink(os.path.join(bag, rel))
        expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", rel, message)
    add(f"a missing member {rel}: FORMAT_FAILURE", fn)


missing_case("data/events.jsonl", "not in the bundle")
missing_case("data/stills/face.png", "not in the bundle")
missing_case("certs/revocation.pem", "not in the bundle")
missing_case("bagit.txt", "missing")
missing_case("tagmanifest-sha256.txt.p7s.tsr", "missing")
missing_case("data/record.json", "missing")


@test("a missing data/recording.mkv: FORMAT_FAILURE")
def _():
    bag = bag_of()
    os.unlink(os.path.join(bag, "data", "recording.mkv"))
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", message="recording")


@test("a missing directory member (data/stills/ without its entry): FORMAT_FAILURE")
def _():
    raw = read(BASE)
    m = member(BASE, "data/stills/")
    expect(write(fresh("nodir") + ".tar", raw[:m.offset] + raw[m.offset + 512:]), "TOTAL-FAILED", "FORMAT_FAILURE",
           "data/stills/doc-back.png", "without its directory")


# ---- manifests re-hashed, not re-signed (and the same edits re-signed)

def edit_still(bag):
    p = os.path.join(bag, "data", "stills", "face.png")
    d = bytearray(read(p))
    d[40] ^= 0xFF
    write(p, bytes(d))


def edit_record(bag):
    for rel in ("data/record.json", "bag-info.txt"):
        p = os.path.join(bag, rel)
        write(p, read(p).replace(b"ro.lopez", b"ro.perez"))


@test("a still swapped, manifests re-hashed, not re-signed: HASH_FAILURE on tagmanifest-sha256.txt")
def _():
    bag = bag_of()
    edit_still(bag)
    rehash(bag)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "tagmanifest-sha256.txt")


@test("the officer edited in record and bag-info, manifests re-hashed, not re-signed: HASH_FAILURE on tagmanifest")
def _():
    bag = bag_of()
    edit_record(bag)
    rehash(bag)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "tagmanifest-sha256.txt")


@test("control: the same edits re-signed with the RA key PASS (the attacks above fail only on the seal)")
def _():
    bag = bag_of()
    edit_still(bag)
    edit_record(bag)
    rehash(bag)
    resign(bag)
    j = expect_pass(repack(bag))
    check(j["officer"] == "ro.perez", f"officer {j['officer']}")


# ---- trust

@test("a seal by an untrusted PKI (keys B, verified against root A): INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND")
def _():
    b = fresh("keysB") + ".tar"
    seal(b, keys=KB)
    expect(b, "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", message="trusted root")
    expect_pass(b, ca=os.path.join(KB, "root.pem"))


@test("an untrusted sealing certificate with a trusted TSA: NO_CERTIFICATE_CHAIN_FOUND on certs/sealing.pem")
def _():
    expect(BASE, "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", "certs/sealing.pem",
           extra=("--tsa-ca-file", os.path.join(KA, "root.pem")), ca=os.path.join(KB, "root.pem"))


@test("a trusted sealing certificate with an untrusted TSA: NO_CERTIFICATE_CHAIN_FOUND on certs/tsa.pem")
def _():
    expect(BASE, "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", "certs/tsa.pem",
           extra=("--tsa-ca-file", os.path.join(KB, "root.pem")))


@test("keys B's certificates and signature put into a keys-A bundle: never PASSED")
def _():
    bag = bag_of()
    b_bundle = fresh("kb") + ".tar"
    seal(b_bundle, keys=KB)
    bagb = bag_of(b_bundle)
    for rel in ("certs/sealing.pem", "certs/tsa.pem", "certs/revocation.pem"):
        write(os.path.join(bag, rel), read(os.path.join(bagb, rel)))
    rehash(bag)
    resign(bag, keys=KB)
    expect(repack(bag), "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")


# ---- time-stamp over other data

def p7s_parts(bag):
    p7 = read(os.path.join(bag, "tagmanifest-sha256.txt.p7s"))
    info = read(os.path.join(bag, "bag-info.txt")).decode()
    nonce = re.search(r"(?m)^Timestamp-Nonce: ([0-9a-f]{16})$", info).group(1)
    return p7, nonce


def swap_token(bag, data):
    p7, nonce = p7s_parts(bag)
    tsr = fresh("token") + ".tsr"
    tool("token-over", KA, write(fresh("data") + ".bin", data), tsr, str(ST), nonce)
    p7s = os.path.join(bag, "tagmanifest-sha256.txt.p7s")
    new = fresh("p7s") + ".p7s"
    tool("replace-token", p7s, tsr, new)
    write(p7s, read(new))
    write(os.path.join(bag, "tagmanifest-sha256.txt.p7s.tsr"), read(tsr))


@test("control: a token re-made over the signature value by token-over/replace-token is byte-identical")
def _():
    bag = bag_of()
    p7, _nonce = p7s_parts(bag)
    _f, sigval, _t = signed_data_fields(p7)
    swap_token(bag, sigval)
    check(read(repack(bag)) == read(BASE), "re-made token differs from the sealer's")


@test("a time-stamp over the tag manifest instead of the signature: TOTAL-FAILED / HASH_FAILURE on the .tsr")
def _():
    bag = bag_of()
    swap_token(bag, read(os.path.join(bag, "tagmanifest-sha256.txt")))
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "tagmanifest-sha256.txt.p7s.tsr", "other data")


@test("a time-stamp over other data (another bundle's signature): TOTAL-FAILED / HASH_FAILURE on the .tsr")
def _():
    other = fresh("other") + ".tar"
    seal(other, t=ST + 1)
    _f, sigval, _t = signed_data_fields(read(os.path.join(bag_of(other), "tagmanifest-sha256.txt.p7s")))
    bag = bag_of()
    swap_token(bag, sigval)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "tagmanifest-sha256.txt.p7s.tsr", "other data")


@test("only the standalone .tsr replaced (copies disagree): FORMAT_FAILURE, never PASSED")
def _():
    bag = bag_of()
    tsr = fresh("tok") + ".tsr"
    _p7, nonce = p7s_parts(bag)
    tool("token-over", KA, os.path.join(bag, "tagmanifest-sha256.txt"), tsr, str(ST), nonce)
    write(os.path.join(bag, "tagmanifest-sha256.txt.p7s.tsr"), read(tsr))
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "tagmanifest-sha256.txt.p7s.tsr", "differs")


# ---- bindings

def rec():
    return json.load(open(os.path.join(FX, "record.json")))


@test("the matching --for-case/--action/--serial passes (serial case-insensitively)")
def _():
    r = rec()
    expect_pass(BASE, "--for-case", r["case"]["id"], "--action", r["case"]["action"], "--serial", r["certificate"]["serial"])
    expect_pass(BASE, "--for-case", r["case"]["id"], "--action", r["case"]["action"],
                "--serial", r["certificate"]["serial"].lower())


def binding_case(which):
    def fn():
        r = rec()
        vals = {"--for-case": r["case"]["id"], "--action": r["case"]["action"], "--serial": r["certificate"]["serial"]}
        vals[which] = {"--for-case": "RA-2025-999999", "--action": "revocation", "--serial": "4F1A9C0B7D22E36B"}[which]
        expect(BASE, "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", message=re.escape(vals[which]),
               extra=sum(([k, v] for k, v in vals.items()), []))
    add(f"a mismatched {which}: INDETERMINATE / SIG_CONSTRAINTS_FAILURE", fn)


for _w in ("--for-case", "--action", "--serial"):
    binding_case(_w)


@test("verify --tsa-policy: the right OID passes, another gives SIG_CONSTRAINTS_FAILURE")
def _():
    policy = expect_pass(BASE)["tsaPolicy"]
    expect_pass(BASE, "--tsa-policy", policy)
    expect(BASE, "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", extra=("--tsa-policy", "1.2.3.4"))


# ---- certificate lifetime

@test("a sealing certificate expired today but valid at genTime: TOTAL-PASSED")
def _():
    b = fresh("expired-ok") + ".tar"
    seal(b, keys=KE, t=NOW - 5 * DAY)
    j = expect_pass(b, ca=os.path.join(KE, "root.pem"))
    check(j["genTime"] == rfc3339(NOW - 5 * DAY), f"genTime {j['genTime']}")


def retime(bag, keys, t):
    """Moves a bag to sealing time t: bag-info dates, manifests, seal and
    time-stamp (re-signed with keys), member times. Returns the repacked tar."""
    p = os.path.join(bag, "bag-info.txt")
    info = read(p).decode()
    info = re.sub(r"(?m)^Sealing-Date: .*$", f"Sealing-Date: {rfc3339(t)}", info)
    info = re.sub(r"(?m)^Bagging-Date: .*$", f"Bagging-Date: {rfc3339(t)[:10]}", info)
    write(p, info.encode())
    rehash(bag)
    resign(bag, keys=keys, t=t)
    return repack(bag, mtime=t)


@test("seal refuses to seal after the sealing certificate expired (exit 6, no output)")
def _():
    b = fresh("expired-bad") + ".tar"
    p = seal(b, keys=KE, t=NOW - 600, expect_ok=False)
    check(p.returncode == 6, f"exit {p.returncode}: {out_text(p)}")
    check(re.search(r"not valid at the sealing time", out_text(p)), f"unclear: {out_text(p)}")
    check(not os.path.exists(b) and not os.path.exists(b + ".partial"), "output left behind")


@test("control: a bundle moved by the test to another time inside the RA validity still PASSES")
def _():
    b = fresh("expired-ok") + ".tar"
    seal(b, keys=KE, t=NOW - 5 * DAY)
    j = expect_pass(retime(bag_of(b), KE, NOW - 4 * DAY), ca=os.path.join(KE, "root.pem"))
    check(j["genTime"] == rfc3339(NOW - 4 * DAY), f"genTime {j['genTime']}")


@test("signed and time-stamped after the sealing certificate expired: INDETERMINATE / OUT_OF_BOUNDS_NO_POE")
def _():
    b = fresh("expired-ok") + ".tar"
    seal(b, keys=KE, t=NOW - 5 * DAY)
    expect(retime(bag_of(b), KE, NOW - 600), "INDETERMINATE", "OUT_OF_BOUNDS_NO_POE", "certs/sealing.pem",
           "expired", ca=os.path.join(KE, "root.pem"))


# ---- content checks on bundles re-signed with the RA key (only the targeted fact is wrong)

def edit(bag, rel, old, new):
    p = os.path.join(bag, rel)
    d = read(p)
    check(old in d, f"{old!r} not in {rel}")
    write(p, d.replace(old, new))


def resigned_case(name, mutate, indication, sub, member_rel, message):
    def fn():
        bag = bag_of()
        out = mutate(bag)
        if out is None:
            rehash(bag)
            resign(bag)
            out = repack(bag)
        expect(out, indication, sub, member_rel, message)
    add(f"re-signed: {name}: {indication} / {sub}", fn)


resigned_case("bagit.txt is not the BagIt 1.0 declaration",
              lambda bag: edit(bag, "bagit.txt", b"1.0", b"0.9"), "TOTAL-FAILED", "FORMAT_FAILURE", "bagit.txt", "BagIt")
resigned_case("bag-info.txt has an unknown key",
              lambda bag: edit(bag, "bag-info.txt", b"Officer:", b"Contact: x\nOfficer:"),
              "TOTAL-FAILED", "FORMAT_FAILURE", "bag-info.txt", "unknown key")
resigned_case("bag-info.txt has a duplicate key",
              lambda bag: edit(bag, "bag-info.txt", b"Officer:", b"Outcome: rejected\nOfficer:"),
              "TOTAL-FAILED", "FORMAT_FAILURE", "bag-info.txt", "unique keys")
resigned_case("bag-info.txt Outcome differs from the record",
              lambda bag: edit(bag, "bag-info.txt", b"Outcome: approved", b"Outcome: rejected"),
              "TOTAL-FAILED", "FORMAT_FAILURE", "bag-info.txt", "Outcome")
resigned_case("the record fails the schema",
              lambda bag: edit(bag, "data/record.json", b'"renewal"', b'"renewals"'),
              "TOTAL-FAILED", "FORMAT_FAILURE", "data/record.json", "schema")


def wrong_oxum(bag):
    rehash(bag)
    edit(bag, "bag-info.txt", b"Payload-Oxum: ", b"Payload-Oxum: 1")
    rehash_tags_only(bag)
    resign(bag)
    return repack(bag)


def rehash_tags_only(bag):
    tags = sorted(["bagit.txt", "bag-info.txt", "manifest-sha256.txt"] +
                  [os.path.join("certs", f) for f in os.listdir(os.path.join(bag, "certs"))])
    write(os.path.join(bag, "tagmanifest-sha256.txt"),
          "".join(f"{sha256(read(os.path.join(bag, n)))}  {n}\n" for n in tags).encode())


resigned_case("a wrong Payload-Oxum", wrong_oxum, "TOTAL-FAILED", "FORMAT_FAILURE", "bag-info.txt", "Payload-Oxum")
resigned_case("member times differ from the Sealing-Date",
              lambda bag: (rehash(bag), resign(bag), repack(bag, mtime=ST + 1))[2],
              "TOTAL-FAILED", "FORMAT_FAILURE", None, "member times")
resigned_case("the signingTime is not the Sealing-Date",
              lambda bag: (rehash(bag), resign(bag, t=ST + 5), repack(bag))[2],
              "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", None, "signingTime")
resigned_case("genTime two hours after the Sealing-Date",
              lambda bag: (rehash(bag), resign(bag, gen=ST + 7200), repack(bag))[2],
              "INDETERMINATE", "TIMESTAMP_ORDER_FAILURE", None, "genTime")


def token_nonce(bag):
    p7, nonce = p7s_parts(bag)
    _f, sigval, _t = signed_data_fields(p7)
    tsr = fresh("token") + ".tsr"
    tool("token-over", KA, write(fresh("sig") + ".bin", sigval), tsr, str(ST), "%016x" % (int(nonce, 16) ^ 1))
    new = fresh("p7s") + ".p7s"
    p7s = os.path.join(bag, "tagmanifest-sha256.txt.p7s")
    tool("replace-token", p7s, tsr, new)
    write(p7s, read(new))
    write(os.path.join(bag, "tagmanifest-sha256.txt.p7s.tsr"), read(tsr))
    return repack(bag)


resigned_case("the time-stamp nonce is not the Timestamp-Nonce", token_nonce,
              "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", None, "nonce")


def session_after_gentime(bag):
    later = rfc3339(NOW + DAY).encode()
    edit(bag, "data/record.json", b'"ended_at": "2025-03-03T09:14:41Z"', b'"ended_at": "' + later + b'"')
    edit(bag, "bag-info.txt", b"Session-End: 2025-03-03T09:14:41Z", b"Session-End: " + later)


resigned_case("genTime before the end of the session", session_after_gentime,
              "INDETERMINATE", "TIMESTAMP_ORDER_FAILURE", None, "before the end of the session")


@test("re-signed control: genTime half an hour after the Sealing-Date PASSES (inside the slack)")
def _():
    bag = bag_of()
    resign(bag, gen=ST + 1800)
    expect_pass(repack(bag))


# ---- the events hash chain against the recording, everything else signed properly

@test("seal refuses a recording whose bytes do not match the events chain (no output, no .partial)")
def _():
    bad = os.path.join(WORK, "recording-bad.mkv")
    d = bytearray(read(os.path.join(FX, "recording.mkv")))
    d[1_500_000] ^= 0x01
    write(bad, bytes(d))
    out = fresh("chain-refused") + ".tar"
    p = seal(out, recording="recording.mkv=" + bad, expect_ok=False)
    check(p.returncode == 4, f"exit {p.returncode}: {out_text(p)}")
    check(re.search(r"recording-bad\.mkv.*hash-chain|hash-chain.*recording", out_text(p)), f"unclear: {out_text(p)}")
    check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "output left behind")


def rechain(events, data):
    """events.jsonl rewritten so that its chain is self-consistent for @data."""
    out, prev = [], bytes(32)
    for line in events.decode().splitlines():
        e = json.loads(line)
        if e["type"] == "segment":
            h = hashlib.sha256(data[e["offset"]:e["offset"] + e["length"]]).digest()
            prev = hashlib.sha256(prev + h).digest()
            e["sha256"], e["chain"] = h.hex(), prev.hex()
        out.append(json.dumps(e, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


@test("control: the fixture's events chain re-derived by the test is byte-identical")
def _():
    ev = read(os.path.join(FX, "events.jsonl"))
    check(rechain(ev, read(os.path.join(FX, "recording.mkv"))) == ev, "rechain differs")


@test("recording changed, manifests re-hashed and re-signed: HASH_FAILURE on data/recording.mkv (chain)")
def _():
    bag = bag_of()
    p = os.path.join(bag, "data", "recording.mkv")
    d = bytearray(read(p))
    d[2_500_000] ^= 0x01
    write(p, bytes(d))
    rehash(bag)
    resign(bag)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "data/recording.mkv", "hash-chain")


@test("events.jsonl re-chained for other bytes, re-signed: HASH_FAILURE on data/recording.mkv")
def _():
    bag = bag_of()
    data = bytearray(read(os.path.join(bag, "data", "recording.mkv")))
    data[10] ^= 0x01
    p = os.path.join(bag, "data", "events.jsonl")
    write(p, rechain(read(p), bytes(data)))
    rehash(bag)
    resign(bag)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "data/recording.mkv", "hash-chain")


@test("recording truncated, Payload-Oxum and manifests fixed, re-signed: HASH_FAILURE on data/recording.mkv")
def _():
    bag = bag_of()
    p = os.path.join(bag, "data", "recording.mkv")
    write(p, read(p)[:-1000])
    rehash(bag)
    resign(bag)
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", "data/recording.mkv", "hash chain covers")


@test("a broken link in the events chain, re-signed: FORMAT_FAILURE on data/events.jsonl")
def _():
    bag = bag_of()
    p = os.path.join(bag, "data", "events.jsonl")
    lines = read(p).decode().splitlines()
    i = next(k for k, l in enumerate(lines) if '"type":"segment"' in l)
    e = json.loads(lines[i])
    e["chain"] = ("0" if e["chain"][0] != "0" else "1") + e["chain"][1:]
    lines[i] = json.dumps(e, separators=(",", ":"), ensure_ascii=False)
    write(p, ("\n".join(lines) + "\n").encode())
    rehash(bag)
    resign(bag)
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "data/events.jsonl", "chain")


# ---- CLI errors

@test("seal refuses every invalid example record (exit 4, message names the JSON pointer, no output)")
def _():
    files = sorted(f for f in os.listdir(INVALID_RECORDS) if f.endswith(".json"))
    check(len(files) >= 10, f"only {len(files)} invalid examples")
    specific = {"extra-property-root.json": "/extra", "missing-holder.json": "/holder",
                "case-id-newline.json": "/case/id", "bad-still-name.json": "/stills/2/name"}

    def one(f):
        out = fresh("invalid") + ".tar"
        p = seal(out, record=os.path.join(INVALID_RECORDS, f), expect_ok=False)
        t = out_text(p)
        errs = []
        if p.returncode != 4:
            errs.append(f"{f}: exit {p.returncode}")
        m = re.search(r"fails the validation-record schema: (/[^:]*|\(root\)):", t)
        if not m:
            errs.append(f"{f}: no JSON pointer in {t.strip()[:200]}")
        elif f in specific and m.group(1) != specific[f]:
            errs.append(f"{f}: pointer {m.group(1)}, expected {specific[f]}")
        if os.path.exists(out) or os.path.exists(out + ".partial"):
            errs.append(f"{f}: output left behind")
        return errs
    errs = sum(parallel(one, files), [])
    check(not errs, "; ".join(errs[:5]))


@test("seal refuses to overwrite an existing bundle (exit 7, bundle unchanged)")
def _():
    before = read(BASE)
    p = seal(BASE, expect_ok=False)
    check(p.returncode == 7, f"exit {p.returncode}: {out_text(p)}")
    check(read(BASE) == before, "the bundle changed")
    other = write(fresh("exists") + ".tar", b"mine")
    p = seal(other, expect_ok=False)
    check(p.returncode == 7 and read(other) == b"mine", f"exit {p.returncode}; file {read(other)[:10]!r}")


def nontar_case(what, data_fn):
    def fn():
        expect(write(fresh("nontar"), data_fn()), "TOTAL-FAILED", "FORMAT_FAILURE")
    add(f"verify of {what}: TOTAL-FAILED / FORMAT_FAILURE", fn)


nontar_case("random bytes", lambda: hashlib.sha256(b"x").digest() * 100)
nontar_case("an empty file", lambda: b"")
nontar_case("1024 zero bytes (an empty tar)", lambda: bytes(1024))
nontar_case("a gzip-compressed bundle", lambda: gzip.compress(read(BASE), mtime=0))
nontar_case("a JSON file", lambda: read(os.path.join(FX, "record.json")))
nontar_case("a single unrelated tar member",
            lambda: (lambda b: (tarfile.open(fileobj=b, mode="w").addfile(tarfile.TarInfo("x")), b.getvalue())[1])(io.BytesIO()))


@test("verify of a missing file or a directory: exit 4, no verdict")
def _():
    for target in (path("no-such.tar"), WORK):
        p = tg("verify", "--ca-file", os.path.join(KA, "root.pem"), target)
        check(p.returncode == 4, f"{target}: exit {p.returncode}: {out_text(p)}")
        check(not re.search(r"TOTAL-PASSED", p.stdout.decode()), "printed a verdict")
    p = tg("verify", "--ca-file", path("no-such-root.pem"), BASE)
    check(p.returncode in (4, 5), f"missing --ca-file: exit {p.returncode}")


@test("usage errors exit 3")
def _():
    root = os.path.join(KA, "root.pem")
    cases = [
        [], ["bogus"], ["keys"], ["keys", "init"], ["keys", "make", path("k")], ["keys", "init", "--bits", "x", path("k")],
        ["seal"], ["seal", "--keys", KA, "--out", path("u.tar")],
        ["seal", "--keys", KA, "--record", os.path.join(FX, "record.json"), "--out", path("u.tar")],
        ["seal", "--nonsense"],
        ["seal", "--keys", KA, "--record", os.path.join(FX, "record.json"), "--recording",
         os.path.join(FX, "recording.mkv"), "--sealing-time", "yesterday", "--out", path("u.tar")],
        ["verify"], ["verify", BASE], ["verify", "--ca-file", root], ["verify", "--ca-file", root, BASE, BASE],
        ["verify", "--ca-file", root, "--for-case", CASE, BASE],
        ["verify", "--ca-file", root, "--bogus", BASE],
        ["inspect"], ["inspect", "--bogus"],
        ["tsa"], ["tsa", "serve", "--keys", KA], ["tsa", "serve", "--keys", KA, "--listen", "127.0.0.1"],
        ["tsa", "serve", "--keys", KA, "--listen", "127.0.0.1:99999"],
        ["tsa", "serve", "--keys", KA, "--listen", "localhost:8318"],
    ]
    bad = []
    for c in cases:
        p = tg(*c)
        if p.returncode != 3:
            bad.append(f"testigo {' '.join(os.path.basename(str(a)) for a in c)}: exit {p.returncode}")
    check(not bad, "; ".join(bad))
    check(not os.path.exists(path("u.tar")), "a usage error wrote output")


# ---- tsa serve


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tsa_url():
    global TSA_PROC, TSA_PORT
    if TSA_PROC is not None and TSA_PROC.poll() is None:
        return f"http://127.0.0.1:{TSA_PORT}/"
    check(TSA_PROC is None, f"the TSA server died (exit {TSA_PROC.returncode if TSA_PROC else None})")
    for _attempt in range(5):
        TSA_PORT = free_port()
        TSA_PROC = subprocess.Popen([TESTIGO, "tsa", "serve", "--keys", KA, "--listen", f"127.0.0.1:{TSA_PORT}"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([TSA_PROC.stdout], [], [], 20)
        line = TSA_PROC.stdout.readline().decode() if ready else ""
        if "listening" in line:
            return f"http://127.0.0.1:{TSA_PORT}/"
        stop_tsa()
        TSA_PROC = None
    raise Fail("the TSA server did not start")


def stop_tsa():
    """Stops the server; returns (exit status, stderr)."""
    if TSA_PROC is None:
        return None, b""
    if TSA_PROC.poll() is None:
        TSA_PROC.terminate()
    try:
        _out, err = TSA_PROC.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        TSA_PROC.kill()
        _out, err = TSA_PROC.communicate()
    return TSA_PROC.returncode, err


def seal_via_tsa(out, url, extra=()):
    return tg("seal", "--tsa-url", url, "--key", os.path.join(KA, "ra.key"), "--cert", os.path.join(KA, "ra.pem"),
              "--tsa-cert", os.path.join(KA, "tsa.pem"), "--tsa-ca-file", os.path.join(KA, "root.pem"),
              "--crl", os.path.join(KA, "crl.pem"), "--record", os.path.join(FX, "record.json"),
              "--recording", os.path.join(FX, "recording.mkv"), "--events", os.path.join(FX, "events.jsonl"),
              *sum((["--still", f"{s}={os.path.join(FX, s)}"] for s in STILLS), []), *extra, "--out", out)


@test("tsa serve + seal --tsa-url: the bundle verifies TOTAL-PASSED")
def _():
    url = tsa_url()
    out = fresh("tsa") + ".tar"
    p = seal_via_tsa(out, url)
    check(p.returncode == 0, f"exit {p.returncode}: {out_text(p)}")
    j = expect_pass(out)
    gen = j["genTime"] and calendar.timegm(time.strptime(j["genTime"], "%Y-%m-%dT%H:%M:%SZ"))
    check(gen and abs(time.time() - gen) < 600, f"genTime {j['genTime']} is not now")
    check(j["tsa"] and "Testigo Development TSA" in j["tsa"], f"tsa {j['tsa']}")


@test("tsa serve: seal with a wrong --tsa-policy is refused (no output)")
def _():
    url = tsa_url()
    out = fresh("tsa-policy") + ".tar"
    p = seal_via_tsa(out, url, ("--tsa-policy", "1.2.3.4.5"))
    check(p.returncode != 0, f"sealed with a wrong policy: {out_text(p)}")
    check(re.search(r"polic|time-stamp|TSA", out_text(p)), f"unclear: {out_text(p)}")
    check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "output left behind")


def http(method, url, data=None, ctype=None):
    req = urllib.request.Request(url, data=data, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@test("tsa serve: GET is rejected with 405 (Allow: POST)")
def _():
    status, headers, _b = http("GET", tsa_url())
    check(status == 405, f"status {status}")
    check(headers.get("Allow") == "POST", f"Allow: {headers.get('Allow')}")


@test("tsa serve: a wrong content type is rejected with 415")
def _():
    url = tsa_url()
    for ctype in ("application/octet-stream", "text/plain", None):
        status, _h, _b = http("POST", url, b"0\x00", ctype)
        check(status == 415, f"{ctype}: status {status}")


@test("tsa serve: an oversized body is rejected with 413")
def _():
    status, _h, _b = http("POST", tsa_url(), bytes(64 * 1024 + 1), "application/timestamp-query")
    check(status == 413, f"status {status}")


@test("tsa serve: answers openssl ts -query; openssl ts -verify accepts the reply")
def _():
    check(shutil.which("openssl") is not None, "openssl missing (CI installs it)")
    url = tsa_url()
    data = write(fresh("q") + ".bin", b"some data\n")
    tsq = fresh("q") + ".tsq"
    p = run(["openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", tsq])
    check(p.returncode == 0, out_text(p))
    status, headers, body = http("POST", url, read(tsq), "application/timestamp-query")
    check(status == 200, f"status {status}")
    check(headers.get("Content-Type") == "application/timestamp-reply", f"type {headers.get('Content-Type')}")
    tsr = write(fresh("q") + ".tsr", body)
    p = run(["openssl", "ts", "-verify", "-queryfile", tsq, "-in", tsr, "-CAfile", os.path.join(KA, "root.pem")])
    check(p.returncode == 0, f"openssl ts -verify: {out_text(p)}")


@test("tsa serve: a garbage request gets a rejection, and the server keeps serving")
def _():
    url = tsa_url()
    status, _h, body = http("POST", url, b"\x30\x03\x02\x01\x07garbage", "application/timestamp-query")
    check(status in (200, 400, 500), f"status {status}")
    if status == 200:
        # PKIStatus in the reply: SEQUENCE { SEQUENCE { INTEGER status ...
        _t, vs, _n = der(body, 0)
        _t, svs, _sn = der(body, vs)
        _t, ivs, _in = der(body, svs)
        check(body[ivs] != 0, "garbage was granted")
    status, _h, _b = http("GET", url)
    check(status == 405 and TSA_PROC.poll() is None, "the server stopped serving")


@test("TSA down: seal --tsa-url fails with exit 5 and names the TSA")
def _():
    url = tsa_url()
    rc, err = stop_tsa()
    sanitizer_check(err, "testigo tsa serve")
    check(rc == 0, f"the TSA server exited {rc} on SIGTERM: {err.decode(errors='replace')[-500:]}")
    out = fresh("tsa-down") + ".tar"
    p = seal_via_tsa(out, url)
    check(p.returncode == 5, f"exit {p.returncode}: {out_text(p)}")
    check(f"127.0.0.1:{TSA_PORT}" in out_text(p), f"does not name the TSA: {out_text(p)}")
    check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "output left behind")


# ================================================================== main

# ---- channels other than the teleconference: documents under data/documents/

EXAMPLES = os.path.join(SRC, "evidence-schema", "examples", "valid")
# channel -> (schema example, documents: (name, bytes, media type))
CHANNELS = {
    "signed-email": ("v2-suspension-signed-email", [
        ("message.eml", b"From: Jordi Puig <jordi.puig@example.net>\r\nSubject: Solicitud\r\n"
                        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"\r\n\r\n"
                        b"Nombre: Jordi Puig\r\nSolicitud: suspensi\xc3\xb3n\r\nDuraci\xc3\xb3n: 7 d\xc3\xadas\r\n",
         "message/rfc822")]),
    "in-person": ("v2-revocation-in-person", [
        ("attestation.pdf", b"%PDF-1.7\n% attestation signed by the officer and the holder\n%%EOF\n", "application/pdf"),
        ("id-front.png", b"\x89PNG\r\n\x1a\n front of the residence permit", "image/png"),
        ("id-back.jpg", b"\xff\xd8\xff\xe0 back of the residence permit", "image/jpeg")]),
    "portal": ("v2-revocation-portal", [
        ("request.json", b'{"action":"revocation","reason":"key compromise","authenticated":"tls-client-cert"}\n',
         "application/json")]),
    "system": ("v2-revocation-system", [
        ("sweep.json", b'{"deadline":"2025-03-21T08:34:12Z","suspension_case":"RA-2025-000126","revoked":true}\n',
         "application/json")]),
}
DOCS = {}       # channel -> (bundle, fixture dir, record dict)


def channel_fixture(channel, t=ST):
    """Writes the documents and a record listing them; seals; returns (bundle, dir, record)."""
    example, docs = CHANNELS[channel]
    d = fresh(f"fx-{channel}")
    os.makedirs(d)
    rec = json.load(open(os.path.join(EXAMPLES, example + ".json")))
    rec["documents"] = []
    for name, data, media in docs:
        write(os.path.join(d, name), data)
        rec["documents"].append({"name": name, "sha256": sha256(data), "media_type": media})
    if channel == "signed-email":
        rec["case"]["email"]["message_sha256"] = sha256(docs[0][1])
    write(os.path.join(d, "record.json"), json.dumps(rec, indent=2, ensure_ascii=False).encode())
    out = fresh(f"doc-{channel}") + ".tar"
    p = seal_documents(out, d, rec, t=t)
    check(p.returncode == 0, f"seal of the {channel} bundle failed ({p.returncode}): {out_text(p)}")
    return out, d, rec


def seal_documents(out, d, rec, docs=None, t=ST, record=None, extra=()):
    names = docs if docs is not None else [e["name"] for e in rec["documents"]]
    args = ["seal", "--keys", KA, "--record", record or os.path.join(d, "record.json")]
    for n in names:
        args += ["--document", f"{n}={os.path.join(d, n)}"]
    return tg(*args, *extra, "--sealing-time", rfc3339(t), "--out", out)


def doc_bundle(channel):
    if channel not in DOCS:
        DOCS[channel] = channel_fixture(channel)
    return DOCS[channel]


def doc_bag(bundle):
    """Extracts any canonical bundle; returns (bag dir, case id)."""
    dest = fresh("docbag")
    os.makedirs(dest)
    with tarfile.open(bundle, "r:") as tf:
        for m in tf.getmembers():
            check(m.isdir() or m.isfile(), f"unexpected member type {m.name}")
            target = os.path.join(dest, m.name)
            if m.isdir():
                os.makedirs(target, exist_ok=True)
            else:
                write(target, tf.extractfile(m).read())
    case = os.listdir(dest)[0]
    return os.path.join(dest, case), case


def reseal(bag):
    """Manifests re-hashed and the bag re-signed with the RA key: every attack
    below then reaches the check it targets."""
    rehash(bag)
    resign(bag)
    return repack(bag)


def edit_json(p, fn):
    rec = json.loads(read(p))
    fn(rec)
    write(p, json.dumps(rec, indent=2, ensure_ascii=False).encode())


def channel_case(channel):
    def fn():
        bundle, _d, rec = doc_bundle(channel)
        names = [n for n, _m in members(bundle)]
        case = rec["case"]["id"]
        for e in rec["documents"]:
            check(f"{case}/data/documents/{e['name']}" in names, f"data/documents/{e['name']} not in {names}")
        check(f"{case}/data/documents/" in names, "no data/documents/ directory member")
        check(not any(re.search(r"/data/recording|/data/events|/data/stills", n) for n in names),
              f"unexpected recording, events or stills: {names}")
        j = expect_pass(bundle, "--for-case", case, "--action", rec["case"]["action"],
                        "--serial", rec["certificate"]["serial"].upper())
        check(j["warnings"] == [], f"warnings: {j['warnings']}")
        check(j["officer"] == rec["officer"]["id"] and j["outcome"] == "approved", show(j))
        check(j["channel"] == channel, f"channel {j['channel']!r}, expected {channel!r}")
        other = "renewal" if rec["case"]["action"] != "renewal" else "revocation"
        expect(bundle, "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", message="for action",
               extra=("--for-case", case, "--action", other, "--serial", rec["certificate"]["serial"]))
    add(f"{channel}: seal --document + verify --for-case/--action/--serial PASS, without recording", fn)


for _ch in CHANNELS:
    channel_case(_ch)


@test("documents: sealing twice at the same time gives identical bytes; repack of the extraction too")
def _():
    bundle, d, rec = doc_bundle("in-person")
    again = fresh("doc-det") + ".tar"
    p = seal_documents(again, d, rec, docs=[e["name"] for e in reversed(rec["documents"])])
    check(p.returncode == 0, out_text(p))
    check(read(again) == read(bundle), "two seals of the same documents differ (or depend on --document order)")
    bag, _case = doc_bag(bundle)
    check(read(repack(bag)) == read(bundle), "repack of the extraction differs")


@test("documents: inspect lists data/documents/ members")
def _():
    bundle, _d, rec = doc_bundle("in-person")
    p = tg("inspect", bundle)
    check(p.returncode == 0, out_text(p))
    for e in rec["documents"]:
        check(f"data/documents/{e['name']}" in p.stdout.decode(), f"{e['name']} not listed:\n{p.stdout.decode()}")


@test("a teleconference record sealed without --recording: seal refuses, nothing written")
def _():
    out = fresh("tc-norec") + ".tar"
    d = fresh("tc-norec-fx")
    os.makedirs(d)
    write(os.path.join(d, "note.txt"), b"note\n")
    p = tg("seal", "--keys", KA, "--record", os.path.join(FX, "record.json"), "--document",
           f"note.txt={os.path.join(d, 'note.txt')}", "--sealing-time", rfc3339(ST), "--out", out)
    check(p.returncode != 0 and not os.path.exists(out), f"seal accepted it ({p.returncode}): {out_text(p)}")
    check(re.search(r"--recording is needed", out_text(p)), f"no clear message: {out_text(p)}")


@test("a version 2 teleconference record with a document but no recording, re-signed: FORMAT_FAILURE (no recording)")
def _():
    bag = bag_of()
    os.unlink(os.path.join(bag, "data", "recording.mkv"))
    os.unlink(os.path.join(bag, "data", "events.jsonl"))
    os.makedirs(os.path.join(bag, "data", "documents"))
    write(os.path.join(bag, "data", "documents", "note.txt"), b"note\n")

    def v2(rec):
        rec["version"] = 2
        rec["documents"] = [{"name": "note.txt", "sha256": sha256(b"note\n"), "media_type": "text/plain"}]
    edit_json(os.path.join(bag, "data", "record.json"), v2)
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", message=r"no recording \(a teleconference record needs one\)")


@test("a version 1 record with an added document, re-signed: FORMAT_FAILURE (not listed in the record)")
def _():
    bag = bag_of()
    os.makedirs(os.path.join(bag, "data", "documents"))
    write(os.path.join(bag, "data", "documents", "note.txt"), b"note\n")
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", "data/documents/note.txt", "not listed in the record")


@test("signed-email: the message removed, re-signed: FORMAT_FAILURE (no recording and no document)")
def _():
    bag, _case = doc_bag(doc_bundle("signed-email")[0])
    os.unlink(os.path.join(bag, "data", "documents", "message.eml"))
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", message="no recording and no document")


@test("in-person: one listed scan removed, re-signed: FORMAT_FAILURE naming it")
def _():
    bag, case = doc_bag(doc_bundle("in-person")[0])
    os.unlink(os.path.join(bag, "data", "documents", "id-back.jpg"))
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", f"!{case}/data/documents/id-back.jpg",
           "lists the document .* not in the bundle")


@test("signed-email: an extra unlisted document, re-signed: FORMAT_FAILURE naming it")
def _():
    bag, case = doc_bag(doc_bundle("signed-email")[0])
    write(os.path.join(bag, "data", "documents", "extra.pdf"), b"%PDF-1.7 not part of the request\n")
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", f"!{case}/data/documents/extra.pdf",
           "not listed in the record's documents")


@test("signed-email: an extra document, manifests not updated: FORMAT_FAILURE (not in manifest-sha256.txt)")
def _():
    bag, case = doc_bag(doc_bundle("signed-email")[0])
    write(os.path.join(bag, "data", "documents", "extra.pdf"), b"%PDF-1.7\n")
    expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", f"!{case}/data/documents/extra.pdf",
           "not listed in manifest-sha256.txt")


@test("signed-email: the message's bytes altered, not re-signed: HASH_FAILURE on the document")
def _():
    bag, case = doc_bag(doc_bundle("signed-email")[0])
    p = os.path.join(bag, "data", "documents", "message.eml")
    write(p, read(p).replace(b"7 d", b"9 d"))
    expect(repack(bag), "TOTAL-FAILED", "HASH_FAILURE", f"!{case}/data/documents/message.eml", "manifest-sha256.txt")


@test("signed-email: the message's bytes altered, manifests re-hashed and re-signed: HASH_FAILURE against the record")
def _():
    bag, case = doc_bag(doc_bundle("signed-email")[0])
    p = os.path.join(bag, "data", "documents", "message.eml")
    write(p, read(p).replace(b"7 d", b"9 d"))
    expect(reseal(bag), "TOTAL-FAILED", "HASH_FAILURE", f"!{case}/data/documents/message.eml",
           "SHA-256 the record lists")


@test("signed-email: the message and the record's hash both changed, re-signed: FORMAT_FAILURE (message_sha256)")
def _():
    bag, case = doc_bag(doc_bundle("signed-email")[0])
    p = os.path.join(bag, "data", "documents", "message.eml")
    write(p, read(p).replace(b"7 d", b"9 d"))

    def relist(rec):
        rec["documents"][0]["sha256"] = sha256(read(p))
    edit_json(os.path.join(bag, "data", "record.json"), relist)
    expect(reseal(bag), "TOTAL-FAILED", "FORMAT_FAILURE", f"!{case}/data/record.json", "message_sha256")


@test("control: a document bundle extracted, re-hashed, re-signed and repacked unchanged PASSES")
def _():
    bundle = doc_bundle("system")[0]
    bag, _case = doc_bag(bundle)
    out = reseal(bag)
    check(read(out) == read(bundle), "rehash/resign/repack of a document bundle differs from the sealer's output")
    expect_pass(out)


@test("a document name outside the layout (data/documents/.hidden, data/documents/sub/x): FORMAT_FAILURE")
def _():
    for rel in ("data/documents/.hidden", "data/documents/sub/x.txt", "data/documents/" + "a" * 65):
        bag, case = doc_bag(doc_bundle("portal")[0])
        target = os.path.join(bag, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write(target, b"x\n")
        j = expect(repack(bag), "TOTAL-FAILED", "FORMAT_FAILURE", message="not part of the bundle layout")
        check(j["member"].startswith(f"{case}/data/documents/"), show(j))


def seal_refusal(name, mutate, message):
    def fn():
        _bundle, d, rec = doc_bundle("in-person")
        d2 = fresh("refuse")
        shutil.copytree(d, d2)
        rec2 = json.loads(json.dumps(rec))
        docs = mutate(d2, rec2)
        write(os.path.join(d2, "record.json"), json.dumps(rec2).encode())
        out = fresh("refused") + ".tar"
        p = seal_documents(out, d2, rec2, docs=docs)
        check(p.returncode != 0, f"seal accepted it: {out_text(p)}")
        check(not os.path.exists(out) and not any(f.endswith(".partial") for f in os.listdir(os.path.dirname(out))),
              "seal left a file behind")
        check(re.search(message, out_text(p)), f"message does not match /{message}/: {out_text(p)}")
    add(f"seal refuses {name}", fn)


seal_refusal("a document the record does not list",
             lambda d, r: [e["name"] for e in r["documents"]] + ["record.json"], "not listed in the record")
seal_refusal("a listed document that is not given",
             lambda d, r: [e["name"] for e in r["documents"]][1:], "which was not given")
seal_refusal("a document whose bytes differ from the record's SHA-256",
             lambda d, r: (write(os.path.join(d, "id-back.jpg"), b"other"), [e["name"] for e in r["documents"]])[1],
             "id-back.jpg .* has SHA-256 [0-9a-f]{64}; the record lists")
seal_refusal("a document listed twice in the record",
             lambda d, r: (r["documents"].append(dict(r["documents"][0])), [e["name"] for e in r["documents"]][:-1])[1],
             "twice")
seal_refusal("a version 2 in-person record without any --document",
             lambda d, r: [], "usage|--document is needed")
seal_refusal("a document name with a path",
             lambda d, r: ["../x"], "document name")
seal_refusal("a document over 64 MiB",
             lambda d, r: (os.truncate(os.path.join(d, "id-back.jpg"), 64 * 1024 * 1024 + 1),
                           [e["name"] for e in r["documents"]])[1], "over the limit")


def setup():
    global WORK, KA, KB, KE, FX, CASE, BASE, BASE_MEMBERS, SMALL
    WORK = tempfile.mkdtemp(prefix="testigo-bundle-")
    KA, KB, KE = path("keysA"), path("keysB"), path("keysE")
    procs = [
        subprocess.Popen([TESTIGO, "keys", "init", "--bits", "2048", KA], stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        subprocess.Popen([TESTIGO, "keys", "init", "--bits", "2048", KB], stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        subprocess.Popen([TESTIGO, "keys", "init", "--bits", "2048", "--ra-not-before", rfc3339(NOW - 10 * DAY),
                          "--ra-not-after", rfc3339(NOW - DAY), KE], stdout=subprocess.PIPE, stderr=subprocess.PIPE),
    ]
    for pr in procs:
        o, e = pr.communicate(timeout=120)
        sanitizer_check(e, "testigo keys init")
        check(pr.returncode == 0, f"keys init failed: {e.decode()}")
    FX = path("fixture")
    p = run([sys.executable, FIXTURE, FX])
    check(p.returncode == 0, f"make-fixture failed: {out_text(p)}")
    CASE = p.stdout.decode().strip()
    BASE = path("base.tar")
    seal(BASE)
    BASE_MEMBERS = members(BASE)
    small_fx = path("fixture-small")
    p = run([sys.executable, FIXTURE, small_fx, "--size", "10000", "--segment", "4000"])
    check(p.returncode == 0, out_text(p))
    SMALL = path("small.tar")
    p = tg("seal", "--keys", KA, "--record", os.path.join(small_fx, "record.json"),
           "--recording", os.path.join(small_fx, "recording.mkv"), "--events", os.path.join(small_fx, "events.jsonl"),
           "--still", f"face.png={os.path.join(small_fx, 'face.png')}", "--sealing-time", rfc3339(ST), "--out", SMALL)
    check(p.returncode == 0, out_text(p))
    for name, m in BASE_MEMBERS:
        if m.isfile():
            add(f"a flipped byte in the data of {name.split('/', 1)[1]}: never PASSED", flip_case(name, m))
    for rel in ("certs/sealing.pem", "certs/tsa.pem", "certs/revocation.pem"):
        add(f"every 97th byte of {rel} flipped: HASH_FAILURE naming {rel}", pem_flip_case(rel))


def main():
    return tap.run(setup, lambda: WORK, teardown=stop_tsa)


if __name__ == "__main__":
    sys.exit(main())
