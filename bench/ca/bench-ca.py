#!/usr/bin/env python3
"""bench/ca: ca/publication's CRL and OCSP builders, and testigod's OCSP
endpoint over HTTP, against the openssl CLI, measured in the same run. Called by bench/ca/run.sh; see bench/ca/README.md.
Python 3 standard library only.
"""
import argparse
import calendar
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

P = argparse.ArgumentParser()
P.add_argument("--tool", required=True)
P.add_argument("--testigod", required=True)
P.add_argument("--testigo", required=True)
P.add_argument("--store-revoked", type=int, default=100)
P.add_argument("--store-good", type=int, default=80)
P.add_argument("--work", required=True)
P.add_argument("--entries", type=int, default=100000)
P.add_argument("--good", type=int, default=10000)
P.add_argument("--requests", type=int, default=200)
P.add_argument("--crl-runs", type=int, default=5)
P.add_argument("--ocsp-runs", type=int, default=3)
P.add_argument("--seconds", type=float, default=5)
P.add_argument("--in-flight", type=int, default=8)
P.add_argument("--command", default="bench/ca/run.sh")
A = P.parse_args()
W = A.work
TOOL = A.tool
TESTIGOD = A.testigod
TESTIGO = A.testigo
LOG = open(os.path.join(W, "bench.log"), "w")


def log(msg):
    sys.stderr.write(msg + "\n")
    LOG.write(msg + "\n")
    LOG.flush()


def run(args, **kw):
    LOG.write("$ " + " ".join(args) + "\n")
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    LOG.write(p.stdout[-4000:] + p.stderr[-4000:])
    if p.returncode != 0:
        raise SystemExit("bench: %s failed (%d): %s" % (args[0:3], p.returncode, p.stderr[-1000:]))
    return p


def path(*parts):
    return os.path.join(W, *parts)


def utc(t, generalized=False):
    return time.strftime("%Y%m%d%H%M%SZ" if generalized else "%y%m%d%H%M%SZ", time.gmtime(t))


def machine():
    m = {"nproc": os.cpu_count(), "python": platform.python_version(),
         "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip(),
         "loadavg": open("/proc/loadavg").read().split()[:3]}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return m


# ------------------------------------------------------------------ fixture

def make_fixture():
    for d in ("keys",):
        shutil.rmtree(path(d), ignore_errors=True)
    log("bench: development PKI (RSA 3072) and an EC P-256 OCSP responder")
    run([TOOL, "keys", path("keys")])
    for f in ("responder.pem", "responder.key"):
        if os.path.exists(path(f)):
            os.unlink(path(f))
    run([TOOL, "responder", path("keys", "root.pem"), path("keys", "root.key"), path("responder.pem"), path("responder.key")])

    rng = random.Random(20261125)
    now = int(time.time())
    expiry = utc(now + 365 * 86400)
    serials = set()
    while len(serials) < A.entries + A.good:
        serials.add(rng.getrandbits(127) | (1 << 126))  # 16 bytes, positive, full length
    serials = sorted(serials)
    rng.shuffle(serials)
    revoked, good = serials[:A.entries], serials[A.entries:]
    ours, index = [], []
    kinds = ("keyCompromise", "cessationOfOperation", "superseded", "affiliationChanged", "certificateHold")
    for i, s in enumerate(revoked):
        t = now - rng.randint(60, 300 * 86400)
        kind = kinds[i % len(kinds)]
        hexs = "%X" % s
        if kind == "keyCompromise":
            inv = t - rng.randint(3600, 30 * 86400)
            ours.append("%s %d keyCompromise %d" % (hexs, t, inv))
            rev = "%s,keyTime,%s" % (utc(t), utc(inv, True))  # openssl ca: keyCompromise + invalidityDate
        elif kind == "certificateHold":
            ours.append("%s %d certificateHold - reject" % (hexs, t))
            rev = "%s,holdInstruction,holdInstructionReject" % utc(t)  # certificateHold + instruction
        else:
            ours.append("%s %d %s" % (hexs, t, kind))
            rev = "%s,%s" % (utc(t), kind)
        index.append("R\t%s\t%s\t%s\tunknown\t/CN=certificate %d" % (expiry, rev, hexs, i))
    with open(path("entries.txt"), "w") as f:
        f.write("\n".join(ours) + "\n")
    with open(path("crl-index.txt"), "w") as f:
        f.write("\n".join(index) + "\n")
    gl = ["V\t%s\t\t%X\tunknown\t/CN=good %d" % (expiry, s, i) for i, s in enumerate(good)]
    with open(path("ocsp-index.txt"), "w") as f:
        f.write("\n".join(index + gl) + "\n")
    with open(path("status.txt"), "w") as f:
        f.write("\n".join(ours + ["%X good" % s for s in good]) + "\n")
    for name in ("crl-index.txt", "ocsp-index.txt"):
        with open(path(name + ".attr"), "w") as f:
            f.write("unique_subject = no\n")
    with open(path("ca.cnf"), "w") as f:
        f.write("""[ ca ]
default_ca = CA_default
[ CA_default ]
database = {w}/crl-index.txt
certificate = {w}/keys/root.pem
private_key = {w}/keys/root.key
crlnumber = {w}/crlnumber
default_md = sha256
default_crl_days = 1
crl_extensions = crl_ext
unique_subject = no
[ crl_ext ]
authorityKeyIdentifier = keyid:always
""".format(w=W))
    with open(path("crlnumber"), "w") as f:
        f.write("1000\n")

    # OCSP requests: one serial each, with a nonce; 50 % revoked, 40 % good, 10 % unknown.
    shutil.rmtree(path("requests"), ignore_errors=True)
    os.mkdir(path("requests"))
    reqs = []
    for i in range(A.requests):
        r = i % 10
        s = revoked[i] if r < 5 else good[i] if r < 9 else rng.getrandbits(120) | (1 << 119)
        reqs.append(path("requests", "%03d.der" % i))
        run(["openssl", "ocsp", "-issuer", path("keys", "root.pem"), "-serial", "0x%X" % s, "-reqout", reqs[-1]])
    return reqs


# ------------------------------------------------------------------ CRL

def revoked_section(pem):
    text = run(["openssl", "crl", "-in", pem, "-noout", "-text"]).stdout
    v = run(["openssl", "crl", "-in", pem, "-noout", "-CAfile", path("keys", "root.pem"), "-verify"])
    if "verify OK" not in v.stdout + v.stderr:
        raise SystemExit("bench: %s does not verify" % pem)
    return text.split("Revoked Certificates:", 1)[1].split("Signature Algorithm", 1)[0]


def run_timed(args):
    """(wall s, user+sys CPU s, stdout) of one command."""
    LOG.write("$ " + " ".join(args) + "\n")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=LOG)
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("bench: %s failed (%d)" % (args[0:3], proc.returncode))
    return wall, ru.ru_utime + ru.ru_stime, out.decode()


def bench_crl():
    contenders = [
        ("testigo ca_crl_build (publication-tool crl --pem)",
         lambda n: [TOOL, "crl", "--pem", "--time", "--number", str(n), path("keys", "root.pem"),
                    path("keys", "root.key"), path("entries.txt"), path("testigo-crl.pem")]),
        ("openssl ca -gencrl (baseline)",
         lambda n: ["openssl", "ca", "-gencrl", "-batch", "-config", path("ca.cnf"), "-out", path("openssl-crl.pem")]),
    ]
    # Correctness first: both list the same entries, byte for byte in text form.
    run(contenders[0][1](1))
    run(contenders[1][1](1))
    a, b = revoked_section(path("testigo-crl.pem")), revoked_section(path("openssl-crl.pem"))
    n = a.count("Serial Number:")
    if n != A.entries or a != b:
        raise SystemExit("bench: the two CRLs differ (%d entries in ours)" % n)
    log("bench: CRLs checked: both verify and list the same %d entries identically" % n)
    wall = {c[0]: [] for c in contenders}
    cpu = {c[0]: [] for c in contenders}
    inner = []
    for r in range(A.crl_runs):
        for k in range(len(contenders)):
            name, mk = contenders[(r + k) % len(contenders)]
            w, c, out = run_timed(mk(r + 2))
            wall[name].append(w)
            cpu[name].append(c)
            if name.startswith("testigo"):
                inner.append(float(out.strip()))
    return wall, cpu, inner, os.path.getsize(path("testigo-crl.pem"))


# ------------------------------------------------------------------ OCSP

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=60):
    """A TCP connect probe (no HTTP): the server is listening."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("bench: server exited early (%d)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("bench: server on port %d did not come up" % port)


def store_path(*parts):
    return path("store", "state", *parts)


def unix(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def make_store():
    """A testigod CA store: certificates issued with `testigo ca issue`,
    some revoked or suspended, and the same set as an openssl index."""
    shutil.rmtree(path("store"), ignore_errors=True)
    os.makedirs(path("store", "certs"))
    log("bench: CA store (testigo ca init), %d certificates (testigo ca issue)" % (A.store_revoked + A.store_good))
    run([TESTIGO, "ca", "init", "--state", store_path()])
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", path("store", "holder.key"), "-subj", "/CN=bench holder", "-out", path("store", "holder.csr")])
    serials = []
    for i in range(A.store_revoked + A.store_good):
        p = run([TESTIGO, "ca", "issue", "--state", store_path(), "--name", "Bench Holder %d" % i,
                 "--id", "V-%08d" % (20000000 + i), "--email", "holder%d@example.org" % i,
                 "--csr", path("store", "holder.csr"), "--out-cert", path("store", "certs", "%d.pem" % i)])
        serials.append(p.stdout.strip())
    revoked, good = serials[:A.store_revoked], serials[A.store_revoked:]
    # Revocations and suspensions go through the evidence gate (`testigo ca
    # apply`, a sealed bundle each), which is not what is measured here: the
    # rows are written as the gate writes them (ca/gate.c).
    rng = random.Random(20261125)
    now = int(time.time())
    db = sqlite3.connect(store_path("ca.db"), timeout=30)
    for i, s in enumerate(revoked):
        t = now - rng.randint(60, 300 * 86400)
        kind = i % 5
        if kind == 4:
            db.execute("UPDATE certs SET state = 'held', revocation_time = ?2, reason = 6, invalidity_time = NULL,"
                       " hold_deadline = ?3, hold_case = 'bench' WHERE serial = ?1", (s, now - 60, now + 10 * 86400))
        else:
            reason = (1, 5, 4, 3)[kind]  # keyCompromise, cessationOfOperation, superseded, affiliationChanged
            inv = t - rng.randint(3600, 30 * 86400) if reason == 1 else None
            db.execute("UPDATE certs SET state = 'revoked', revocation_time = ?2, reason = ?3, invalidity_time = ?4,"
                       " hold_deadline = NULL WHERE serial = ?1", (s, t, reason, inv))
    db.commit()
    db.close()

    # The same set, as the store reports it, for openssl ocsp -index.
    certs = json.loads(run([TESTIGO, "ca", "list", "--state", store_path(), "--json"]).stdout)
    lines, states = [], {}
    for c in certs:
        exp = utc(unix(c["not_after"]))
        subj = "/CN=%s/serialNumber=%s" % (c["name"], c["national_id"])
        states[c["serial"]] = c["state"]
        if c["state"] == "valid":
            lines.append("V\t%s\t\t%s\tunknown\t%s" % (exp, c["serial"], subj))
            continue
        rt = utc(unix(c["revocation_time"]))
        if c["state"] == "held":
            rev = "%s,holdInstruction,holdInstructionReject" % rt
        elif c["reason"] == "keyCompromise":
            rev = "%s,keyTime,%s" % (rt, utc(unix(c["invalidity_time"]), True))  # + invalidityDate
        else:
            rev = "%s,%s" % (rt, c["reason"])
        lines.append("R\t%s\t%s\t%s\tunknown\t%s" % (exp, rev, c["serial"], subj))
    with open(path("store", "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path("store", "index.txt.attr"), "w") as f:
        f.write("unique_subject = no\n")
    if sorted(states) != sorted(serials) or sum(v != "valid" for v in states.values()) != A.store_revoked:
        raise SystemExit("bench: the store does not list the certificates it issued")

    # The questions: 50 % revoked or suspended, 40 % good, 10 % unknown.
    shutil.rmtree(path("store", "requests"), ignore_errors=True)
    os.mkdir(path("store", "requests"))
    reqs = []
    for i in range(A.requests):
        r, k = i % 10, i // 10
        s = ("%X" % (rng.getrandbits(120) | (1 << 119)) if r == 9 else
             revoked[(k * 5 + r) % len(revoked)] if r < 5 else good[(k * 4 + r - 5) % len(good)])
        reqs.append(path("store", "requests", "%03d.der" % i))
        run(["openssl", "ocsp", "-issuer", store_path("ca", "ca.pem"), "-serial", "0x" + s, "-reqout", reqs[-1]])
    return reqs, revoked[0], good[0]


def start_server(kind):
    """(process, url) of testigod or openssl ocsp on a loopback port."""
    log_f = open(path("%s.log" % kind), "ab")
    if kind == "testigod":
        args = [TESTIGOD, "--state-dir", store_path(), "--listen", "127.0.0.1:0"]
        LOG.write("$ " + " ".join(args) + "\n")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log_f, start_new_session=True)
        line = proc.stdout.readline().decode()
        if "listening on " not in line:
            stop_server(proc)
            raise SystemExit("bench: testigod did not start: %r (see %s)" % (line, path("testigod.log")))
        base = line.split("listening on ", 1)[1].strip().rstrip("/")
        return proc, base + "/ocsp"
    port = free_port()
    args = ["openssl", "ocsp", "-index", path("store", "index.txt"), "-port", str(port), "-multi", "2",
            "-rsigner", store_path("ca", "ocsp.pem"), "-rkey", store_path("ca", "ocsp.key"),
            "-CA", store_path("ca", "ca.pem"), "-rmd", "sha256", "-nmin", "10"]
    LOG.write("$ " + " ".join(args) + "\n")
    # openssl's -multi makes the server lead its own process group (setpgid,
    # which fails in a session leader), so stop_server ends it with its workers
    proc = subprocess.Popen(args, stdout=log_f, stderr=log_f)
    wait_port(port, proc)
    return proc, "http://127.0.0.1:%d/ocsp" % port


def stop_server(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group led by the server we started
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


def group_cpu(pgid):
    """User + sys CPU seconds of the processes in group @pgid (a server and
    its workers), including children they reaped."""
    ticks = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(st[2]) == pgid:
            ticks += sum(int(x) for x in st[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def ocsp_status(text):
    """The Cert Status, reason and revocation time lines of -resp_text."""
    keep = ("Cert Status:", "Revocation Time:", "Revocation Reason:")
    return tuple(l.strip() for l in text.splitlines() if l.strip().startswith(keep))


def check_servers(urls, reqs, revoked, good):
    """Each server: `openssl ocsp -url -serial` verified with the nonce, and
    the same answers as the other one for a sample of the requests."""
    ca = store_path("ca", "ca.pem")
    for kind, url in urls.items():
        for serial, want in ((good, "good"), (revoked, "revoked")):
            p = run(["openssl", "ocsp", "-url", url, "-issuer", ca, "-CAfile", ca, "-serial", "0x" + serial, "-resp_text"])
            out = p.stdout + p.stderr
            if "Response verify OK" not in out or "OCSP Nonce" not in out or "0x%s: %s" % (serial, want) not in out:
                raise SystemExit("bench: %s does not answer %s correctly (verified, with nonce)" % (kind, serial))
    answers = {}
    for kind, url in urls.items():
        answers[kind] = [ocsp_status(run(["openssl", "ocsp", "-reqin", r, "-url", url, "-CAfile", ca,
                                          "-resp_text"]).stdout) for r in reqs[:20]]
    a, b = answers.values()
    if a != b or not all(a):
        raise SystemExit("bench: testigod and openssl answer differently: %r vs %r" % (a, b))
    seen = sorted(set(x[0] for x in a))
    log("bench: testigod and openssl ocsp agree on %d sampled requests (%s); answers verify, nonces echoed"
        % (len(a), ", ".join(seen)))


def bench_ocsp(reqs):
    inproc = [
        ("library, EC P-256 responder, 2 processes", ["--processes", "2", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, EC P-256 responder, 1 process x 2 threads", ["--threads", "2", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, EC P-256 responder, 1 process x 1 thread", ["--threads", "1", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, RSA-3072 CA key, 2 processes", ["--processes", "2", path("keys", "root.pem"), path("keys", "root.key"), "-"]),
    ]
    store_reqs, revoked, good = make_store()
    results, per_cpu, client_cpu, conns, errors = {}, {}, {}, {}, {}
    for name, args in inproc:
        results[name] = []
    procs = {}
    try:
        for kind in ("testigod", "openssl"):
            procs[kind] = start_server(kind)
        check_servers({k: v[1] for k, v in procs.items()}, store_reqs, revoked, good)
    finally:
        for proc, _ in procs.values():
            stop_server(proc)
    http = {"HTTP: testigod POST /ocsp, keep-alive": ("testigod", False),
            "HTTP: openssl ocsp -index -multi 2, keep-alive (baseline)": ("openssl", False),
            "HTTP: testigod POST /ocsp, new connection per request": ("testigod", True),
            "HTTP: openssl ocsp -index -multi 2, new connection per request (baseline)": ("openssl", True)}
    for name in http:
        results[name] = []
    names = list(inproc) + list(http.items())
    for r in range(A.ocsp_runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for item in order:
            if isinstance(item[1], list):
                name, args = item
                _, c, out = run_timed([TOOL, "ocsp-bench", "--seconds", str(A.seconds), *args, path("status.txt"), *reqs])
                j = json.loads(out)
                results[name].append(j["per_second"])
                per_cpu.setdefault(name, []).append(j["responses"] / c)
            else:
                name, (kind, fresh) = item
                proc, url = start_server(kind)
                try:
                    s0 = group_cpu(proc.pid)
                    w, c, out = run_timed([TOOL, "ocsp-load", "--url", url, "--in-flight", str(A.in_flight),
                                           "--seconds", str(A.seconds)] + (["--new-connections"] if fresh else [])
                                          + store_reqs)
                    server_cpu = group_cpu(proc.pid) - s0
                finally:
                    stop_server(proc)
                j = json.loads(out)
                if j["errors"] > 0:
                    log("bench: WARNING: %s had %d errors (see bench.log)" % (name, j["errors"]))
                results[name].append(j["per_second"])
                per_cpu.setdefault(name, []).append(j["responses"] / max(server_cpu, 0.01))
                client_cpu.setdefault(name, []).append(c / w)
                conns.setdefault(name, []).append(j["connections"])
                errors.setdefault(name, []).append(j["errors"])
    return results, per_cpu, client_cpu, conns, errors, len(store_reqs)


def main():
    m0 = machine()
    reqs = make_fixture()
    wall, cpu, inner, size = bench_crl()
    ocsp, per_cpu, client_cpu, conns, errors, n_store = bench_ocsp(reqs)
    m1 = machine()

    base = statistics.median(wall["openssl ca -gencrl (baseline)"])
    out = ["# bench/ca — %s" % A.command, "",
           "machine: %s, %s cores, %s; load average %s at start, %s at end" % (
               m0.get("cpu", "?"), m0["nproc"], m0["openssl"], " ".join(m0["loadavg"]), " ".join(m1["loadavg"])),
           "", "## CRL with %d revoked entries (PEM, %d bytes; RSA-3072 CA key)" % (A.entries, size), "",
           "| contender | median wall s | min wall s | median CPU s | speed-up vs openssl (median wall) | goal | met |",
           "|---|---|---|---|---|---|---|"]
    for name, ts in wall.items():
        med = statistics.median(ts)
        goal = "≤ 1 s" if name.startswith("testigo") else ""
        met = ("yes" if med <= 1 else "no") if goal else ""
        out.append("| %s | %.3f | %.3f | %.3f | %.2f× | %s | %s |" % (
            name, med, min(ts), statistics.median(cpu[name]), base / med, goal, met))
    out.append("| ca_crl_build alone (inside the process above) | %.3f | %.3f | | %.2f× | ≤ 1 s | %s |" % (
        statistics.median(inner), min(inner), base / statistics.median(inner),
        "yes" if statistics.median(inner) <= 1 else "no"))
    ka = "HTTP: openssl ocsp -index -multi 2, keep-alive (baseline)"
    nc = "HTTP: openssl ocsp -index -multi 2, new connection per request (baseline)"
    out += ["", "## OCSP responses per second (1 serial + nonce per request; %g s per run, %d runs)" % (A.seconds, A.ocsp_runs), "",
            "| contender | median /s | max /s | per CPU-second of the responder (median) | load generator CPU (share of one core) | connections (median) | errors | ratio vs openssl HTTP, its better mode (median) | goal | met |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rs in ocsp.items():
        med = statistics.median(rs)
        base = max(statistics.median(ocsp[ka]), statistics.median(ocsp[nc]))  # openssl's better mode
        goal = "≥ 5000/s on 2 cores" if name in ("library, EC P-256 responder, 2 processes",
                                                  "HTTP: testigod POST /ocsp, keep-alive") else ""
        met = ("yes" if med >= 5000 else "no") if goal else ""
        pc = "%.0f" % statistics.median(per_cpu[name]) if name in per_cpu else ""
        cc = "%.0f %%" % (100 * statistics.median(client_cpu[name])) if name in client_cpu else ""
        cn = "%d" % statistics.median(conns[name]) if name in conns else ""
        er = "%d" % sum(errors[name]) if name in errors else ""
        out.append("| %s | %.0f | %.0f | %s | %s | %s | %s | %.2f× | %s | %s |" % (name, med, max(rs), pc, cc, cn, er, med / base, goal, met))
    out += ["", "Library rows: %d requests against an in-memory status table (%d revoked + %d good). HTTP rows: %d requests against testigod's CA store (%d revoked or"
            " suspended + %d good certificates issued by `testigo ca issue`) and the same set as an openssl"
            " index; the load generator (publication-tool ocsp-load, libsoup, %d POSTs in flight) runs on the"
            " same 2 cores as the server. openssl ocsp answers HTTP/1.0 and closes every connection, so it"
            " has no keep-alive mode of its own; every ratio is against the better of its two rows."
            % (len(reqs), A.entries, A.good, n_store, A.store_revoked, A.store_good, A.in_flight)]
    report = "\n".join(out) + "\n"
    print(report)
    with open(path("report.md"), "w") as f:
        f.write(report)
    with open(path("results.json"), "w") as f:
        json.dump({"command": A.command, "machine_start": m0, "machine_end": m1, "crl_wall": wall, "crl_cpu": cpu,
                   "crl_build": inner, "ocsp": ocsp, "ocsp_per_cpu_second": per_cpu,
                   "ocsp_client_cpu_share": client_cpu, "ocsp_connections": conns, "ocsp_errors": errors,
                   "entries": A.entries}, f, indent=1)


if __name__ == "__main__":
    main()
