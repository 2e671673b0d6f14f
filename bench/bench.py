#!/usr/bin/env python3
"""bench.py — the measuring half of bench/run.sh (see bench/README.md).

Runs every contender of a group several times, interleaved and rotated
(round r starts with contender r mod n), after warming the page cache on the
inputs; deletes outputs and runs `sync` (untimed) between runs so a run never
pays for the previous run's writeback; runs disturbed by other processes are
redone (see run_group). Wall time comes from perf_counter around
fork+exec+wait4, user/sys time from the child's rusage (wait4), peak RSS from
polling VmHWM in /proc/PID/status: no external `time` tool is needed.

Prints the machine facts, the results table (Markdown), a "where the time
goes" table, and writes results.json + report.md to the work directory.
Exit status is 0 whether or not the goals are met: this is a measurement,
not a test.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

MiB = 1 << 20


def sh(argv, **kw):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, **kw).stdout.strip()
    except OSError:
        return ""


def machine_facts(work, testigo, src):
    facts = {}
    facts["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts["nproc"] = sh(["nproc"]) or str(len(os.sched_getaffinity(0)))
    model, flags = "unknown", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "model name" and model == "unknown":
                model = v.strip()
            elif k == "flags" and not flags:
                flags = v
    facts["cpu"] = model
    facts["sha_ni"] = "yes" if "sha_ni" in flags.split() else "no"
    facts["kernel"] = platform.release()
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                facts["memory"] = "%.1f GiB" % (int(line.split()[1]) / (1 << 20))
    facts["filesystem"] = "%s (%s)" % (sh(["stat", "-f", "-c", "%T", work]), work)
    facts["load_start"] = load()
    facts["testigo"] = sh([testigo, "version"]) or sh([testigo, "--version"])
    rev = sh(["git", "-C", src, "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"])
    facts["commit"] = rev + (" (+ uncommitted changes)" if dirty else "")
    facts["openssl"] = sh(["openssl", "version"])
    facts["sha256sum"] = sh(["sha256sum", "--version"]).splitlines()[0] if sh(["sha256sum", "--version"]) else "?"
    facts["tar"] = sh(["tar", "--version"]).splitlines()[0] if sh(["tar", "--version"]) else "?"
    return facts


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_pressure():
    """% of the last 10 s in which some runnable task waited for a CPU (PSI)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


def cpu_snap():
    """(idle, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v[:8])


def cpu_idle(seconds):
    """Fraction of all CPUs' time spent idle over the next @seconds (/proc/stat)."""
    snap = cpu_snap
    i0, t0 = snap()
    time.sleep(seconds)
    i1, t1 = snap()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit):
    """Waits up to @limit seconds until the CPUs were >= 95% idle for 5 s. (The
    1-minute load average lags by minutes; it is reported, not waited for.)"""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        idle = cpu_idle(5)
        if idle >= 0.95:
            return
        print("bench: waiting for a quiet machine: load average %.2f, CPUs %.0f%% idle (%.0f s left; busiest: %s)"
              % (load(), 100 * idle, limit - (time.monotonic() - t0), busiest()), file=sys.stderr, flush=True)


def busiest():
    """The processes that used the most CPU over the last second."""
    def sample():
        d = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            d[pid] = (comm, int(fields[11]) + int(fields[12]))
        return d
    a = sample()
    time.sleep(1)
    b = sample()
    hz = os.sysconf("SC_CLK_TCK")
    use = sorted(((b[p][1] - a[p][1]) / hz, b[p][0]) for p in b if p in a and b[p][1] > a[p][1])[::-1]
    return ", ".join("%s %.0f%%" % (c, 100 * t) for t, c in use[:4]) or "nothing in particular"


def warm(path):
    """Reads a file into the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MiB):
            pass


def settle(paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.chmod(p, 0o644)
            os.unlink(p)
    subprocess.run(["sync"], check=True)


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_timed(argv, log, poll_rss=False):
    """Runs argv; returns wall, user and sys seconds (wait4 rusage) and, with
    poll_rss, the peak RSS in KiB: the last VmHWM read from /proc/PID/status
    by a thread polling every 5 ms. (ru_maxrss is useless here: a child forked
    from this Python process inherits Python's ~25 MiB high-water mark.)"""
    import threading
    with open(log, "ab") as lf:
        lf.write(("\n$ " + " ".join(argv) + "\n").encode())
        lf.flush()
        c0 = cpu_snap()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        hwm, done = [0], threading.Event()

        def poll():
            while not done.is_set():
                hwm[0] = max(hwm[0], vm_hwm_kib(p.pid))
                done.wait(0.005)

        th = threading.Thread(target=poll) if poll_rss else None
        if th:
            th.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        c1 = cpu_snap()
        done.set()
        if th:
            th.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("bench: %s exited with %d; see %s" % (argv[0], p.returncode, log))
    hz = os.sysconf("SC_CLK_TCK")
    busy = ((c1[1] - c1[0]) - (c0[1] - c0[0])) / hz
    # CPU seconds the rest of the machine used meanwhile (kernel writeback
    # threads included, so not all of it is foreign)
    others = max(0.0, busy - ru.ru_utime - ru.ru_stime)
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "others_cpu": others,
            "peak_rss_kib": hwm[0] if poll_rss else None}


class Contender:
    def __init__(self, key, label, argv, outputs=(), nbytes=0, prepare=None, poll_rss=True):
        self.key, self.label, self.argv, self.outputs = key, label, argv, list(outputs)
        self.nbytes, self.prepare, self.poll_rss, self.runs = nbytes, prepare, poll_rss, []
        self.disturbed = []  # runs redone because other processes took CPU

    def med(self, field="wall"):
        return statistics.median(r[field] for r in self.runs)

    def min(self, field="wall"):
        return min(r[field] for r in self.runs)

    def max(self, field="wall"):
        return max(r[field] for r in self.runs)


INTERFERED = 0.5  # other CPU use, in cores, above which a run counts as disturbed


def interfered(res):
    return res["others_cpu"] / res["wall"] > INTERFERED


def run_group(name, contenders, rounds, log, pause=0.0, retries=0):
    """Runs every contender @rounds times, interleaved and rotated. A run during
    which the rest of the machine used more than INTERFERED cores is kept in
    c.disturbed and run again after waiting for quiet, at most @retries times
    per group; when the budget is spent, disturbed runs count as they are."""
    n = len(contenders)
    for r in range(rounds):
        order = contenders[r % n:] + contenders[:r % n]
        for c in order:
            while True:
                settle(c.outputs)
                time.sleep(pause)
                if c.prepare:
                    c.prepare()
                res = run_timed(c.argv, log, c.poll_rss)
                settle(c.outputs)
                res["disturbed"] = interfered(res)
                print("  %-6s round %d/%d  %-42s %7.3f s  (rest of machine: %.2f CPU s)%s"
                      % (name, r + 1, rounds, c.label, res["wall"], res["others_cpu"],
                         "  disturbed" if res["disturbed"] else ""), file=sys.stderr, flush=True)
                if res["disturbed"] and retries > 0:
                    retries -= 1
                    c.disturbed.append(res)
                    wait_quiet(20)
                    continue
                c.runs.append(res)
                break


def fmt_ratio(x):
    return "%.2f×" % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testigo", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--pause", type=float, default=4.0,
                    help="seconds to idle before each run of a writing contender (see README)")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="wait up to this long for >= 95% idle CPUs before starting")
    a = ap.parse_args()

    work, fx, keys, T = a.work, a.fixture, a.keys, a.testigo
    here = os.path.dirname(os.path.abspath(__file__))
    log = os.path.join(work, "bench.log")
    open(log, "w").close()
    wait_quiet(a.wait_quiet)
    facts = machine_facts(work, T, a.src)
    facts["cpu_pressure_start"] = cpu_pressure()
    facts["cpu_idle_start"] = round(100 * cpu_idle(2))
    facts["command"] = a.command
    facts["runs"] = a.runs

    print("## Machine", flush=True)
    for k in ("date", "command", "commit", "testigo", "nproc", "cpu", "sha_ni", "memory", "kernel",
              "filesystem", "openssl", "sha256sum", "tar", "load_start", "cpu_idle_start", "cpu_pressure_start", "runs"):
        print("- %s: %s" % (k, facts[k]))
    warnings = []
    if facts["load_start"] > 0.5 or facts["cpu_idle_start"] < 90:
        warnings.append("at start: load average %.2f (flagged above 0.5), CPUs %d%% idle over 2 s (flagged below 90%%): "
                        "other processes may skew the timings (busiest: %s)"
                        % (facts["load_start"], facts["cpu_idle_start"], busiest()))
        print("WARNING: " + warnings[-1], flush=True)

    # Inputs in the page cache; one untimed seal makes the bundle verify reads
    # and touches the page-cache/allocator paths once before anything is timed.
    stills = sorted(f for f in os.listdir(fx) if f.endswith(".png"))
    for f in ["record.json", "events.jsonl", "recording.mkv"] + stills:
        warm(os.path.join(fx, f))
    rec_bytes = os.path.getsize(os.path.join(fx, "recording.mkv"))
    bundle = os.path.join(work, "verify-input.tar")

    def seal_argv(out):
        argv = [T, "seal", "--keys", keys, "--record", os.path.join(fx, "record.json"),
                "--recording", os.path.join(fx, "recording.mkv"), "--events", os.path.join(fx, "events.jsonl"),
                "--out", out]
        for s in stills:
            argv += ["--still", "%s=%s" % (s, os.path.join(fx, s))]
        return argv

    settle([bundle])
    print("warm-up: sealing %s (untimed)" % bundle, file=sys.stderr, flush=True)
    run_timed(seal_argv(bundle), log)
    bundle_bytes = os.path.getsize(bundle)

    # The naive pipeline is checked once with stock tools, so the baseline is
    # known to produce a real bundle.
    naive = os.path.join(here, "naive-seal.sh")
    chk_tmp, chk_out = os.path.join(work, "naive-check"), os.path.join(work, "naive-check.tar")
    settle([chk_tmp, chk_out])
    os.makedirs(chk_tmp)
    run_timed(["bash", naive, fx, keys, chk_out, chk_tmp, "nosync"], log)
    check = subprocess.run(["bash", "-c", """set -euo pipefail
        cd "$1"; case=$(ls | grep -vx tsa); cd "$case"
        openssl cms -verify -binary -inform DER -in tagmanifest-sha256.txt.p7s -content tagmanifest-sha256.txt \
            -CAfile "$2/root.pem" -purpose any -out /dev/null
        openssl ts -verify -data tagmanifest-sha256.txt.p7s -in tagmanifest-sha256.txt.p7s.tsr -CAfile "$2/root.pem"
        sha256sum -c --strict --quiet tagmanifest-sha256.txt
        test "$(tar -tf "$3" | wc -l)" -ge 19
        """, "check", chk_tmp, keys, chk_out], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit("bench: the naive pipeline's bundle does not verify with stock tools:\n" + check.stdout + check.stderr)
    settle([chk_tmp, chk_out])

    # ---- seal group
    def naive_contender(key, label, mode, hasher):
        tmp, out = os.path.join(work, key + ".d"), os.path.join(work, key + ".tar")
        return Contender(key, label, ["bash", naive, fx, keys, out, tmp, mode, hasher], [tmp, out],
                         bundle_bytes, prepare=lambda: os.makedirs(tmp), poll_rss=False)

    seal_out = os.path.join(work, "seal.tar")
    seal = Contender("seal", "testigo seal (fsync)", seal_argv(seal_out), [seal_out], bundle_bytes)
    naive_sync = naive_contender("naive", "naive pipeline + sync", "sync", "sha256sum")
    naive_nosync = naive_contender("naive-nosync", "naive pipeline, no sync", "nosync", "sha256sum")
    naive_ossl = naive_contender("naive-openssl", "naive, openssl dgst for sha256sum, + sync", "sync", "openssl")
    dd_out = os.path.join(work, "dd.out")
    dd = Contender("dd", "dd bs=1M conv=fsync (plain copy)",
                   ["dd", "if=" + os.path.join(fx, "recording.mkv"), "of=" + dd_out, "bs=1M", "conv=fsync",
                    "status=none"], [dd_out], rec_bytes)
    seal_group = [seal, naive_sync, naive_nosync, naive_ossl, dd]
    run_group("seal", seal_group, a.runs, log, a.pause, a.runs)

    # ---- verify group
    warm(bundle)
    verify = Contender("verify", "testigo verify", [T, "verify", "--ca-file", os.path.join(keys, "root.pem"), bundle],
                       [], bundle_bytes)
    dgst = Contender("dgst", "openssl dgst -sha256", ["openssl", "dgst", "-sha256", bundle], [], bundle_bytes)
    s256 = Contender("sha256sum", "sha256sum", ["sha256sum", bundle], [], bundle_bytes)
    verify_group = [verify, dgst, s256]
    run_group("verify", verify_group, a.runs, log, 0.0, a.runs)
    facts["load_end"] = load()
    facts["cpu_pressure_end"] = cpu_pressure()
    if facts["load_end"] > 0.5:
        warnings.append("load average %.2f > 0.5 at the end (busiest: %s)" % (facts["load_end"], busiest()))

    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"facts": facts, "bundle_bytes": bundle_bytes,
                   "contenders": {c.key: {"label": c.label, "runs": c.runs, "disturbed_redone": c.disturbed}
                                  for c in seal_group + verify_group},
                   "goals": {"seal_speedup": naive_sync.med() / seal.med(), "verify_ratio": dgst.med() / verify.med(),
                             "verify_peak_rss_mib": verify.max("peak_rss_kib") / 1024}}, f, indent=1)

    # ---- table
    rows = []

    def row(c, base, goal=None, goal_ok=None):
        mibs = c.nbytes / MiB / c.med()
        if base is None:
            ratio = "—"
        elif base is c:
            ratio = "1.00× (baseline)"
        else:
            ratio = "%s (min %s)" % (fmt_ratio(base.med() / c.med()), fmt_ratio(base.min() / c.min()))
        met = "—" if goal_ok is None else ("met" if goal_ok else "NOT met")
        rows.append([c.label, "%.3f" % c.med(), "%.3f" % c.min(), "%.0f" % mibs, ratio, goal or "—", met])

    seal_speedup = naive_sync.med() / seal.med()
    verify_ratio = dgst.med() / verify.med()
    rss_mib = verify.max("peak_rss_kib") / 1024
    row(seal, naive_sync, "≥ 2.00× vs naive + sync", seal_speedup >= 2.0)
    row(naive_sync, naive_sync)
    row(naive_nosync, naive_sync)
    row(naive_ossl, naive_sync)
    row(dd, naive_sync)
    row(verify, dgst, "≥ 0.90× of openssl dgst", verify_ratio >= 0.9)
    row(dgst, dgst)
    row(s256, dgst)
    rows.append(["testigo verify peak RSS (MiB; max of runs)", "%.1f (median)" % (verify.med("peak_rss_kib") / 1024),
                 "%.1f (max %.1f)" % (verify.min("peak_rss_kib") / 1024, rss_mib), "—", "—", "≤ 32 MiB",
                 "met" if rss_mib <= 32 else "NOT met"])
    head = ["contender", "median s", "min s", "MiB/s", "ratio vs baseline", "goal", "met"]

    def table(head, rows):
        w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        out = ["| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(head)) + " |",
               "|" + "|".join("-" * (x + 2) for x in w) + "|"]
        out += ["| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |" for r in rows]
        return "\n".join(out)

    cost = []
    for c in seal_group + verify_group:
        cpu = c.med("user") + c.med("sys")
        cost.append([c.label, "%.3f" % c.med(), "%.3f" % c.med("user"), "%.3f" % c.med("sys"),
                     "%.0f%%" % (100 * cpu / c.med()), "%.2f" % c.med("others_cpu"),
                     "%d / %d" % (len(c.disturbed), sum(r["disturbed"] for r in c.runs)),
                     "%.1f" % (c.max("peak_rss_kib") / 1024) if c.poll_rss else "— (several processes)"])
    cost_head = ["contender", "median wall s", "median user s", "median sys s", "CPU/wall", "rest of machine CPU s",
                 "disturbed: redone / kept", "peak RSS MiB"]

    report = []
    report.append("## Results (%d runs each, interleaved; ratios from medians, min-vs-min in brackets)" % a.runs)
    report.append("bundle: %d bytes (%.0f MiB); recording: %d bytes\n" % (bundle_bytes, bundle_bytes / MiB, rec_bytes))
    report.append(table(head, rows))
    report.append("\nRatio = baseline time / contender time (> 1: the contender is faster; for verify it is the "
                  "throughput ratio). Seal rows: baseline \"naive pipeline + sync\"; verify rows: baseline "
                  "\"openssl dgst -sha256\" over the same bundle bytes.\n")
    report.append("## Where the time goes (medians; user+sys above 100%% of wall = more than one core busy; "
                  "wall not covered by CPU = waiting for the disk or for a core; \"rest of machine\" = CPU seconds "
                  "used by everything else during the run, kernel writeback included; a run during which it exceeded "
                  "%.1f core is disturbed: redone after waiting for quiet, up to %d times per group, else kept)\n"
                  % (INTERFERED, a.runs))
    report.append(table(cost_head, cost))
    report.append("\n- load average: %.2f at start, %.2f at end; CPU pressure (PSI some avg10): %s%% at start, %s%% at end"
                  % (facts["load_start"], facts["load_end"], facts["cpu_pressure_start"], facts["cpu_pressure_end"]))
    for w in warnings:
        report.append("- WARNING: " + w)
    text = "\n".join(report)
    print(text)
    with open(os.path.join(work, "report.md"), "w") as f:
        f.write(text + "\n")
    print("\n(raw runs: %s; command output: %s)" % (os.path.join(work, "results.json"), log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
