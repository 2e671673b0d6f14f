#!/usr/bin/env python3
"""Integration tests for the CA core's audit log: `testigo audit append`,
`stamp` and `verify` (TAP output).

usage: test-audit.py TESTIGO SOURCE_ROOT
       (or the environment variables TESTIGO, TESTIGO_SOURCE_ROOT)

One log is built from two processes appending at the same time, stamped
with the built-in TSA, extended, and stamped again; then each attack is
applied to a copy and must be reported at the right line, with the right
reason and exit status. The stock-tool recipe of docs/audit-log.md is run
as written there.

Set TESTIGO_KEEP_TMP=1 to keep the work directory.
Python 3 standard library only.
"""
import base64
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import tap  # noqa: E402  (tests/tap.py)
from tap import Fail, add, check, test  # noqa: E402,F401

if len(sys.argv) == 3:
    TESTIGO, SRC = sys.argv[1:3]
elif len(sys.argv) == 1 and all(k in os.environ for k in ("TESTIGO", "TESTIGO_SOURCE_ROOT")):
    TESTIGO, SRC = os.environ["TESTIGO"], os.environ["TESTIGO_SOURCE_ROOT"]
else:
    sys.stderr.write(__doc__)
    sys.exit(2)
TESTIGO, SRC = os.path.abspath(TESTIGO), os.path.abspath(SRC)
SPEC = os.path.join(SRC, "docs", "audit-log.md")

WORK = None
KA = KB = None           # development PKIs: A is the TSA's, B is not trusted
BASE = None              # the reference log
N_PER_PROC = 40          # appends per concurrent process
LINE = re.compile(r'^(.*),"prev":"([0-9a-f]{64})","hash":"([0-9a-f]{64})"\}$')


def path(*parts):
    return os.path.join(WORK, *parts)


SANITIZER = re.compile(rb"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: AddressSanitizer")


def run(args, timeout=120, input=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout, input=input)
    m = SANITIZER.search(p.stderr or b"")
    check(m is None, f"sanitizer report: {p.stderr[max(0, m.start() - 200):m.start() + 800].decode(errors='replace')}"
          if m else "")
    return p


def tg(*args, **kw):
    return run([TESTIGO, *args], **kw)


def out_text(p):
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def read_lines(p):
    with open(p, "rb") as f:
        return f.read().decode().split("\n")[:-1]


def write_lines(p, lines, newline=True):
    with open(p, "wb") as f:
        f.write(("\n".join(lines) + ("\n" if newline else "")).encode())


def copy(tag):
    dst = path(f"{tag}.log")
    shutil.copyfile(BASE, dst)
    return dst


def body_hash(body):
    return hashlib.sha256(body.encode()).hexdigest()


def reseal(lines, start, prev=None):
    """Recomputes prev and hash of lines[start:] as a forger would (in place)."""
    for i in range(start, len(lines)):
        m = LINE.match(lines[i])
        check(m is not None, f"line {i + 1} does not look like an audit line")
        if i == start and prev is not None:
            p = prev
        else:
            p = LINE.match(lines[i - 1]).group(3) if i > 0 else "0" * 64
        body = f'{m.group(1)},"prev":"{p}"}}'
        lines[i] = body[:-1] + f',"hash":"{body_hash(body)}"}}'
    return lines


def verify(log, ca=None, json_out=True):
    args = ["audit", "verify", log, "--ca-file", ca or os.path.join(KA, "root.pem")]
    if json_out:
        args.append("--json")
    return tg(*args)


def expect_ok(log, entries=None, timestamps=None, unstamped=None):
    p = verify(log)
    check(p.returncode == 0, f"verify exit {p.returncode}, expected 0: {out_text(p)}")
    j = json.loads(p.stdout)
    check(j["ok"] is True and j["first_bad"] == 0, f"report {j}")
    if entries is not None:
        check(j["entries"] == entries, f"entries {j['entries']}, expected {entries}")
    if timestamps is not None:
        check(j["timestamps"] == timestamps, f"timestamps {j['timestamps']}, expected {timestamps}")
    if unstamped is not None:
        check(j["unstamped_tail"] == unstamped, f"unstamped_tail {j['unstamped_tail']}, expected {unstamped}")
    return j


def expect_bad(log, line, message, ca=None):
    p = verify(log, ca=ca)
    check(p.returncode == 1, f"verify exit {p.returncode}, expected 1: {out_text(p)}")
    j = json.loads(p.stdout)
    check(j["ok"] is False, f"report {j}")
    check(j["first_bad"] == line, f"first_bad {j['first_bad']}, expected {line}: {j['message']}")
    check(message in j["message"], f"message {j['message']!r} lacks {message!r}")
    check(j["message"].startswith(f"line {line}: "), f"message {j['message']!r}")
    # the human form says the same
    p = verify(log, ca=ca, json_out=False)
    check(p.returncode == 1 and f"ALTERED: line {line}: " in p.stdout.decode(), out_text(p))
    return j


def append(log, kind, actor, details=None, expect=0):
    args = ["audit", "append", log, "--kind", kind, "--actor", actor]
    if details is not None:
        args += ["--details", details]
    p = tg(*args)
    check(p.returncode == expect, f"append exit {p.returncode}, expected {expect}: {out_text(p)}")
    return p


def stamp(log, *extra, expect=0):
    p = tg("audit", "stamp", log, *(extra or ("--keys", KA)))
    check(p.returncode == expect, f"stamp exit {p.returncode}, expected {expect}: {out_text(p)}")
    return p


def entry(lines, n):
    return json.loads(lines[n - 1])


def ana9(lines):
    """Index of officer:ana's tenth entry (where it lands depends on the interleaving)."""
    return next(i for i, ln in enumerate(lines) if '"actor":"officer:ana"' in ln and ln.count('"n":9}') == 1)


# ------------------------------------------------------------ TAP runner


# ================================================================= cases
# BASE: lines 1..80 from two processes, 81 stamp, 82..86, 87 stamp, 88..90.

@test("two processes appending at once: no lost, duplicated or interleaved line")
def _():
    lines = read_lines(BASE)
    check(len(lines) == 90, f"{len(lines)} lines")
    seen = {"officer:ana": [], "officer:bo": []}
    for i, ln in enumerate(lines[:80], 1):
        e = json.loads(ln)
        check(e["seq"] == i, f"line {i} has seq {e['seq']}")
        seen[e["actor"]].append(e["details"]["n"])
    for actor, ns in seen.items():
        check(ns == list(range(N_PER_PROC)), f"{actor}'s entries {ns}")
    check(os.stat(BASE).st_mode & 0o777 == 0o600, f"mode {oct(os.stat(BASE).st_mode & 0o777)}")


@test("the line format: fixed member order, chain from 64 zeros, hash over the line without its hash")
def _():
    lines = read_lines(BASE)
    prev = "0" * 64
    for i, ln in enumerate(lines, 1):
        e = json.loads(ln)
        check(list(e) == ["seq", "time", "kind", "actor", "details", "prev", "hash"], f"line {i} members {list(e)}")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), f"time {e['time']}")
        check(e["prev"] == prev, f"line {i} prev")
        body = ln[: -len(',"hash":"') - 64 - 2] + "}"
        check(body_hash(body) == e["hash"], f"line {i} hash")
        prev = e["hash"]
    t = entry(lines, 81)
    check(t["kind"] == "timestamp" and t["actor"] == "system", f"{t}")
    check(list(t["details"]) == ["head_seq", "head_hash", "token"], f"{t['details']}")
    check(t["details"]["head_seq"] == 80 and t["details"]["head_hash"] == entry(lines, 80)["hash"], f"{t['details']}")


@test("verify: the reference log is intact (0), with counts and the unstamped tail")
def _():
    j = expect_ok(BASE, entries=90, timestamps=2, unstamped=3)
    check(j["last_stamped_time"] is not None, f"{j}")
    p = verify(BASE, json_out=False)
    check(p.returncode == 0 and p.stdout.decode().startswith("INTACT: 90 entries"), out_text(p))
    check("3 entries after the last time-stamp" in p.stdout.decode(), out_text(p))


@test("stamp: nothing to do when the head is already stamped")
def _():
    log = path("twice.log")
    append(log, "login", "officer:ana")
    stamp(log)
    p = stamp(log)
    check("nothing to do" in p.stdout.decode(), out_text(p))
    check(len(read_lines(log)) == 2, "a second stamp was appended")
    expect_ok(log, entries=2, timestamps=1, unstamped=0)


@test("edit one byte of a details value: fails at that line (hash)")
def _():
    log = copy("edit")
    lines = read_lines(log)
    i = ana9(lines)
    lines[i] = lines[i].replace('"n":9}', '"n":8}')
    write_lines(log, lines)
    expect_bad(log, i + 1, "edited: its hash does not match its content")


@test("edit a line and recompute its hash: fails at the next line (prev)")
def _():
    log = copy("edit-rehash")
    lines = read_lines(log)
    i = ana9(lines)
    lines[i] = lines[i].replace('"n":9}', '"n":8}')
    reseal(lines, i)
    lines[i + 1:] = read_lines(BASE)[i + 1:]
    write_lines(log, lines)
    expect_bad(log, i + 2, f"prev does not match the hash of line {i + 1}")


@test("edit a stamped line and recompute the whole chain after it: the time-stamp catches it")
def _():
    log = copy("rewrite")
    lines = read_lines(log)
    i = ana9(lines)
    lines[i] = lines[i].replace('"n":9}', '"n":8}')
    reseal(lines, i)
    write_lines(log, lines)
    expect_bad(log, 81, "head_hash is not the hash of line 80")
    # ... and also rewriting head_hash: the token is over the old head
    t = entry(lines, 81)
    lines[80] = lines[80].replace(t["details"]["head_hash"], entry(lines, 80)["hash"])
    reseal(lines, 80)
    write_lines(log, lines)
    expect_bad(log, 81, "the token is over other data, not over head_hash")


@test("delete a middle line: fails (gap)")
def _():
    log = copy("delete")
    lines = read_lines(log)
    del lines[19]
    write_lines(log, lines)
    expect_bad(log, 20, "seq 21 where 20 was expected: an entry was removed or the lines were reordered")


@test("delete the first line: fails at line 1")
def _():
    log = copy("delete-first")
    write_lines(log, read_lines(log)[1:])
    expect_bad(log, 1, "seq 2 where 1 was expected")


@test("swap two lines: fails")
def _():
    log = copy("swap")
    lines = read_lines(log)
    lines[29], lines[30] = lines[30], lines[29]
    write_lines(log, lines)
    expect_bad(log, 30, "seq 31 where 30 was expected")


@test("duplicate a line: fails")
def _():
    log = copy("dup")
    lines = read_lines(log)
    lines.insert(40, lines[39])
    write_lines(log, lines)
    expect_bad(log, 41, "seq 40 where 41 was expected: the lines were reordered or an entry was duplicated")


@test("swap two lines and renumber and rechain everything: the time-stamp catches it")
def _():
    log = copy("swap-forged")
    lines = read_lines(log)
    a, b = entry(lines, 30), entry(lines, 31)
    lines[29] = lines[29].replace('"seq":30,', '"seq":31,', 1)
    lines[30] = lines[30].replace('"seq":31,', '"seq":30,', 1)
    lines[29], lines[30] = lines[30], lines[29]
    reseal(lines, 29)
    write_lines(log, lines)
    check(entry(lines, 30)["details"] == b["details"] and entry(lines, 31)["details"] == a["details"], "forgery")
    expect_bad(log, 81, "head_hash is not the hash of line 80")


@test("alter a token (one base64 character): fails at the time-stamp entry")
def _():
    log = copy("token")
    lines = read_lines(log)
    tok = entry(lines, 87)["details"]["token"]
    der = bytearray(base64.b64decode(tok))
    der[len(der) // 2] ^= 0x01          # inside the signature or the certificate
    lines[86] = lines[86].replace(tok, base64.b64encode(bytes(der)).decode())
    reseal(lines, 86)
    write_lines(log, lines)
    expect_bad(log, 87, "bad time-stamp token")


@test("a token moved from another stamp: fails (over other data)")
def _():
    log = copy("token-moved")
    lines = read_lines(log)
    t1, t2 = entry(lines, 81)["details"]["token"], entry(lines, 87)["details"]["token"]
    lines[86] = lines[86].replace(t2, t1)
    reseal(lines, 86)
    write_lines(log, lines)
    expect_bad(log, 87, "the token is over other data, not over head_hash")


@test("a token that is not canonical base64, or not DER: fails")
def _():
    for tag, mutate, msg in (("b64", lambda t: t + "=", "not canonical base64"),
                             ("der", lambda t: base64.b64encode(base64.b64decode(t) + b"\0").decode(),
                              "not one DER ContentInfo")):
        log = copy(f"token-{tag}")
        lines = read_lines(log)
        tok = entry(lines, 81)["details"]["token"]
        lines[80] = lines[80].replace(tok, mutate(tok))
        reseal(lines, 80)
        write_lines(log, lines)
        expect_bad(log, 81, msg)


@test("time-stamps checked against roots that did not issue the TSA: fails")
def _():
    expect_bad(BASE, 81, "does not verify against the TSA roots", ca=os.path.join(KB, "root.pem"))


@test("an appended fake timestamp entry (no valid token) fails; extra members fail")
def _():
    log = copy("fake-stamp")
    lines = read_lines(log)
    last = entry(lines, 90)
    body = ('{"seq":91,"time":"2026-01-01T00:00:00.000Z","kind":"timestamp","actor":"system","details":'
            f'{{"head_seq":90,"head_hash":"{last["hash"]}","token":"AAAA"}},"prev":"{last["hash"]}"}}')
    lines.append(body[:-1] + f',"hash":"{body_hash(body)}"}}')
    write_lines(log, lines)
    expect_bad(log, 91, "bad time-stamp token: the token is not one DER ContentInfo")
    lines[90] = lines[90].replace('"token":"AAAA"}', '"token":"AAAA","x":1}')
    reseal(lines, 90)
    write_lines(log, lines)
    expect_bad(log, 91, "details must be exactly head_seq, head_hash, token")


@test("a reformatted line (a space, reordered members) fails even with its hash recomputed")
def _():
    for tag, mutate in (("space", lambda s: s.replace('"kind":', '"kind": ', 1)),
                        ("order", lambda s: s.replace('"kind":"action","actor":"officer:ana"',
                                                      '"actor":"officer:ana","kind":"action"', 1))):
        log = copy(f"reformat-{tag}")
        lines = read_lines(log)
        i = next(k for k, ln in enumerate(lines) if '"kind":"action","actor":"officer:ana"' in ln)
        m = LINE.match(mutate(lines[i]))
        body = f'{m.group(1)},"prev":"{m.group(2)}"}}'
        lines[i] = body[:-1] + f',"hash":"{body_hash(body)}"}}'
        write_lines(log, lines)
        expect_bad(log, i + 1, "not in the form the writer produces")


@test("not JSON, or an empty line: fails at that line")
def _():
    log = copy("garbage")
    lines = read_lines(log)
    lines[4] = lines[4][:-1]
    write_lines(log, lines)
    expect_bad(log, 5, "edited: not valid JSON")
    lines = read_lines(BASE)
    lines.insert(5, "")
    write_lines(log, lines)
    expect_bad(log, 6, "not valid JSON")


@test("a torn last line is reported; append and stamp after it are refused, the log untouched")
def _():
    log = copy("torn")
    with open(log, "rb") as f:
        data = f.read()
    with open(log, "wb") as f:
        f.write(data[:-40])
    expect_bad(log, 90, "incomplete last line")
    p = append(log, "action", "officer:ana", expect=4)
    check("incomplete line" in out_text(p) and "refusing to append" in out_text(p), out_text(p))
    p = stamp(log, expect=4)
    check("incomplete line" in out_text(p), out_text(p))
    with open(log, "rb") as f:
        check(f.read() == data[:-40], "the torn log was changed")


@test("append after a corrupt (complete) last line is refused")
def _():
    log = copy("corrupt-tail")
    lines = read_lines(log)
    lines[-1] = lines[-1].replace('"n":2}', '"n":3}')
    write_lines(log, lines)
    p = append(log, "action", "officer:ana", expect=4)
    check("the last line is corrupt" in out_text(p), out_text(p))


@test("what verify cannot see: truncation or rewriting after the last time-stamp")
def _():
    log = copy("trunc")
    lines = read_lines(log)
    write_lines(log, lines[:88])
    expect_ok(log, entries=88, timestamps=2, unstamped=1)
    lines[88] = lines[88].replace('"n":1}', '"n":7}')
    reseal(lines, 88)
    write_lines(log, lines)
    expect_ok(log, entries=90, timestamps=2, unstamped=3)
    # cutting a prefix that ends before a stamp also verifies: the auditor
    # must compare last_stamped_time with the stamping period (docs/audit-log.md)
    write_lines(log, read_lines(BASE)[:50])
    j = expect_ok(log, entries=50, timestamps=0, unstamped=50)
    check(j["last_stamped_time"] is None, f"{j}")


@test("append refuses bad kinds, actors and details (4) and writes nothing")
def _():
    log = copy("refuse")
    before = open(log, "rb").read()
    for kind, actor, details, msg in (
            ("Action", "officer:ana", None, "audit kind"),
            ("timestamp", "system", None, "reserved"),
            ("a" * 33, "system", None, "audit kind"),
            ("action", "officer ana", None, "audit actor"),
            ("action", "x" * 129, None, "audit actor"),
            ("action", "system", "[1]", "must be a JSON object"),
            ("action", "system", '{"a":1,"a":2}', "audit details"),
            ("action", "system", '{"a":1} x', "audit details"),
            ("action", "system", '{"a":"' + "x" * 70000 + '"}', "limit"),
            ("action", "system", '{"a":-0.0}', "no stable canonical form")):
        p = append(log, kind, actor, details, expect=4)
        check(msg in out_text(p), f"{kind}/{actor}/{(details or '')[:40]}: {out_text(p)}")
    check(open(log, "rb").read() == before, "a refused append wrote something")
    p = tg("audit", "append", log, "--kind", "action")
    check(p.returncode == 3, out_text(p))


@test("details are kept in a canonical form that verifies (unicode, escapes, numbers, nesting)")
def _():
    log = path("canon.log")
    details = ('{"name":"Jos\\u00e9 \\"Pepe\\" \\\\ \\n\\t\\u0001 ñ €","n":-12,"f":0.1,"e":1e5,"t":true,'
               '"z":null,"a":[1,{"b":[]},{}],"o":{"x":"y"}}')
    p = append(log, "action", "officer:ana", details)
    check(p.stdout.decode().strip() == "1", out_text(p))
    e = entry(read_lines(log), 1)
    check(e["details"] == json.loads(details.replace("1e5", "100000")), f"{e['details']}")
    check(list(e["details"]) == ["name", "n", "f", "e", "t", "z", "a", "o"], f"{list(e['details'])}")
    stamp(log)
    expect_ok(log, entries=2, timestamps=1, unstamped=0)


@test("stamp through an HTTP TSA (testigo tsa serve) verifies; a reply from an untrusted TSA is refused")
def _():
    port = None
    proc = None
    try:
        for _attempt in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proc = subprocess.Popen([TESTIGO, "tsa", "serve", "--keys", KA, "--listen", f"127.0.0.1:{port}"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            if ready and "listening" in proc.stdout.readline().decode():
                break
            proc.terminate()
            proc.wait()
            proc = None
        check(proc is not None, "the TSA server did not start")
        log = path("http.log")
        append(log, "login", "officer:ana")
        stamp(log, "--tsa-url", f"http://127.0.0.1:{port}/", "--tsa-ca-file", os.path.join(KA, "root.pem"))
        append(log, "logout", "officer:ana")
        stamp(log, "--tsa-url", f"http://127.0.0.1:{port}/")
        expect_ok(log, entries=4, timestamps=2, unstamped=0)
        # wrong roots at stamping time: refused (6), nothing appended
        append(log, "login", "officer:bo")
        p = stamp(log, "--tsa-url", f"http://127.0.0.1:{port}/", "--tsa-ca-file", os.path.join(KB, "root.pem"),
                  expect=6)
        check("does not verify" in out_text(p), out_text(p))
        check(len(read_lines(log)) == 5, "a refused stamp was appended")
    finally:
        if proc is not None:
            proc.terminate()
            proc.communicate(timeout=20)


@test("verify: missing log or trust anchors (4), usage (3)")
def _():
    p = tg("audit", "verify", path("nope.log"), "--ca-file", os.path.join(KA, "root.pem"))
    check(p.returncode == 4 and "cannot open" in out_text(p), out_text(p))
    p = tg("audit", "verify", BASE, "--ca-file", path("nope.pem"))
    check(p.returncode == 4, out_text(p))
    p = tg("audit", "verify", BASE)
    check(p.returncode == 3, out_text(p))
    p = tg("audit", "frobnicate")
    check(p.returncode == 3, out_text(p))
    log = path("empty.log")
    open(log, "wb").close()
    expect_ok(log, entries=0, timestamps=0, unstamped=0)


@test("the stock-tool recipe of docs/audit-log.md works as written and sees an edit")
def _():
    text = open(SPEC, encoding="utf-8").read()
    m = re.search(r"```sh recipe\n(.*?)```", text, re.S)
    check(m is not None, "no ```sh recipe block in docs/audit-log.md")
    recipe = path("recipe.sh")
    with open(recipe, "w") as f:
        f.write(m.group(1))
    env = dict(os.environ, LOG=BASE, CA=os.path.join(KA, "root.pem"))
    p = subprocess.run(["bash", "-e", recipe], capture_output=True, env=env, cwd=WORK, timeout=120)
    check(p.returncode == 0, f"recipe failed on the intact log: {out_text(p)}")
    check("chain ok: 90 lines" in p.stdout.decode(), out_text(p))
    check(p.stdout.decode().count("Verification: OK") == 2, out_text(p))
    log = copy("recipe-edit")
    lines = read_lines(log)
    i = ana9(lines)
    lines[i] = lines[i].replace('"n":9}', '"n":8}')
    write_lines(log, lines)
    env["LOG"] = log
    p = subprocess.run(["bash", "-e", recipe], capture_output=True, env=env, cwd=WORK, timeout=120)
    check(p.returncode != 0 and f"line {i + 1}: the hash does not match" in out_text(p),
          f"recipe missed the edit: {out_text(p)}")


# ------------------------------------------------------------------ main

def build_base():
    global BASE
    BASE = path("base.log")
    errors = []

    def worker(actor):
        try:
            for n in range(N_PER_PROC):
                append(BASE, "action", actor, json.dumps({"case": "C-1", "n": n}, separators=(",", ":")))
        except Exception as e:          # noqa: BLE001 — reported below
            errors.append(f"{actor}: {e}")

    threads = [threading.Thread(target=worker, args=(a,)) for a in ("officer:ana", "officer:bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "; ".join(errors))
    stamp(BASE)
    for n in range(5):
        append(BASE, "refusal", "system", json.dumps({"why": "gate", "n": n}, separators=(",", ":")))
    stamp(BASE)
    for n in range(3):
        append(BASE, "login", "officer:ana", json.dumps({"n": n}, separators=(",", ":")))


def setup():
    global WORK, KA, KB
    WORK = tempfile.mkdtemp(prefix="testigo-audit-")
    KA, KB = path("keysA"), path("keysB")
    procs = [subprocess.Popen([TESTIGO, "keys", "init", "--bits", "2048", k], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for k in (KA, KB)]
    for pr in procs:
        _o, e = pr.communicate(timeout=120)
        check(pr.returncode == 0, f"keys init failed: {e.decode()}")
    build_base()


def main():
    return tap.run(setup, lambda: WORK)


if __name__ == "__main__":
    sys.exit(main())
