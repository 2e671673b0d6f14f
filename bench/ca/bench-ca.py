#!/usr/bin/env python3
"""bench/ca: ca/publication's CRL and OCSP builders against the openssl CLI,
measured in the same run. Called by bench/ca/run.sh; see bench/ca/README.md.
Python 3 standard library only.
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

P = argparse.ArgumentParser()
P.add_argument("--tool", required=True)
P.add_argument("--work", required=True)
P.add_argument("--entries", type=int, default=100000)
P.add_argument("--good", type=int, default=10000)
P.add_argument("--requests", type=int, default=200)
P.add_argument("--crl-runs", type=int, default=5)
P.add_argument("--ocsp-runs", type=int, default=3)
P.add_argument("--seconds", type=float, default=5)
P.add_argument("--connections", type=int, default=8)
P.add_argument("--command", default="bench/ca/run.sh")
A = P.parse_args()
W = A.work
TOOL = A.tool
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


def start_server(kind, port):
    if kind == "testigo":
        args = [TOOL, "ocsp-serve", "--port", str(port), "--processes", "2", "--validity", "3600",
                path("responder.pem"), path("responder.key"), path("keys", "root.pem"), path("status.txt")]
    else:
        args = ["openssl", "ocsp", "-index", path("ocsp-index.txt"), "-port", str(port), "-multi", "2",
                "-rsigner", path("responder.pem"), "-rkey", path("responder.key"), "-CA", path("keys", "root.pem"),
                "-rmd", "sha256", "-nmin", "60"]
    LOG.write("$ " + " ".join(args) + "\n")
    # Each server ends up leading its own process group, so that stop_server
    # can end it with its workers: ours through a new session, openssl's
    # -multi by calling setpgid itself (which fails in a session leader).
    proc = subprocess.Popen(args, stdout=LOG, stderr=LOG, start_new_session=(kind == "testigo"))
    wait_port(port, proc)
    return proc


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


def check_server(port, reqs):
    """One revoked and one good answer through `openssl ocsp -url`, verified."""
    for req in (reqs[0], reqs[5]):
        p = run(["openssl", "ocsp", "-reqin", req, "-url", "http://127.0.0.1:%d/" % port,
                 "-CAfile", path("keys", "root.pem"), "-respout", path("check.der")])
        if "Response verify OK" not in p.stdout + p.stderr:
            raise SystemExit("bench: a response from port %d does not verify" % port)
    text = run(["openssl", "ocsp", "-respin", path("check.der"), "-resp_text", "-noverify"]).stdout
    if "Cert Status: good" not in text or "OCSP Nonce" not in text:
        raise SystemExit("bench: unexpected response from port %d" % port)
    text = run(["openssl", "ocsp", "-reqin", reqs[0], "-url", "http://127.0.0.1:%d/" % port,
                "-resp_text", "-noverify"]).stdout
    if "Cert Status: revoked" not in text or "Revocation Reason" not in text:
        raise SystemExit("bench: the revoked serial is not revoked on port %d" % port)


def bench_ocsp(reqs):
    inproc = [
        ("library, EC P-256 responder, 2 processes", ["--processes", "2", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, EC P-256 responder, 1 process x 2 threads", ["--threads", "2", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, EC P-256 responder, 1 process x 1 thread", ["--threads", "1", path("responder.pem"), path("responder.key"), path("keys", "root.pem")]),
        ("library, RSA-3072 CA key, 2 processes", ["--processes", "2", path("keys", "root.pem"), path("keys", "root.key"), "-"]),
    ]
    results = {}
    per_cpu = {}
    for name, args in inproc:
        results[name] = []
    servers = {"testigo": free_port(), "openssl": free_port()}
    for kind, port in servers.items():
        proc = start_server(kind, port)
        try:
            check_server(port, reqs)
        finally:
            stop_server(proc)
    log("bench: both HTTP responders answer correctly (verified, nonce echoed)")
    http = {"HTTP: publication-tool ocsp-serve (2 workers)": "testigo",
            "HTTP: openssl ocsp -index -multi 2 (baseline)": "openssl"}
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
                name, kind = item
                port = servers[kind]
                proc = start_server(kind, port)
                try:
                    p = run([TOOL, "ocsp-load", "--port", str(port), "--connections", str(A.connections),
                             "--seconds", str(A.seconds), *reqs])
                finally:
                    stop_server(proc)
                j = json.loads(p.stdout)
                if j["errors"] > 0.01 * max(1, j["responses"]):
                    log("bench: WARNING: %s had %d errors" % (name, j["errors"]))
                results[name].append(j["per_second"])
    return results, per_cpu


def main():
    m0 = machine()
    reqs = make_fixture()
    wall, cpu, inner, size = bench_crl()
    ocsp, per_cpu = bench_ocsp(reqs)
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
    base = statistics.median(ocsp["HTTP: openssl ocsp -index -multi 2 (baseline)"])
    out += ["", "## OCSP responses per second (%d pre-made requests, 1 serial + nonce each; %g s per run)" % (len(reqs), A.seconds), "",
            "| contender | median /s | max /s | per CPU-second (median) | ratio vs openssl HTTP (median) | goal | met |",
            "|---|---|---|---|---|---|---|"]
    for name, rs in ocsp.items():
        med = statistics.median(rs)
        goal = "≥ 5000/s on 2 cores" if name in ("library, EC P-256 responder, 2 processes",
                                                  "HTTP: publication-tool ocsp-serve (2 workers)") else ""
        met = ("yes" if med >= 5000 else "no") if goal else ""
        pc = "%.0f" % statistics.median(per_cpu[name]) if name in per_cpu else ""
        out.append("| %s | %.0f | %.0f | %s | %.2f× | %s | %s |" % (name, med, max(rs), pc, med / base, goal, met))
    out += ["", "HTTP rows: the load generator (publication-tool ocsp-load, %d connections, one request per"
            " connection) runs on the same 2 cores as the server." % A.connections]
    report = "\n".join(out) + "\n"
    print(report)
    with open(path("report.md"), "w") as f:
        f.write(report)
    with open(path("results.json"), "w") as f:
        json.dump({"command": A.command, "machine_start": m0, "machine_end": m1, "crl_wall": wall, "crl_cpu": cpu,
                   "crl_build": inner, "ocsp": ocsp, "ocsp_per_cpu_second": per_cpu, "entries": A.entries}, f, indent=1)


if __name__ == "__main__":
    main()
