#!/usr/bin/env python3
"""bench/recorder/bench.py — per-session cost of testigo-recorder.

N concurrent synthetic sessions (N = 1, 4, 8, 16 by default), each a
testigo-recorder between two rtc-peer participants sending PRE-ENCODED VP8
640x480@20 + Opus both ways (no encoder in the loop, peers count without
decoding). For each N: CPU % of one core and RSS of the recorder processes
(utime + stime and statm from /proc, over a steady-state window), the peers'
CPU (not the recorder's, shown to judge how loaded the machine was), the load
average, and the time from the signatory's offer to the first recorded
keyframe. With --repeat R every N is run R times (interleaved: 1,4,8,16,1,...)
and the table shows the median (min-max) CPU; ratios are to N = 1 of the
same run.

  bench.py --build DIR [--baseline-build DIR [--paired [--windows 8]]] [--sessions 1,4,8,16] [--seconds 15]
           [--repeat 1] [--threads] [--jitter-buffer-ms 0,200] [--json OUT]

--baseline-build runs every N also with another build's recorder (say, of
the commit before a change), interleaved with this build's, so the ratio
"base" compares the two in the same run on the same machine.
--paired (with --baseline-build) instead runs N sessions of each build at the
same time and measures both over the same windows (--windows of --seconds
each, CPU from the scheduler's exact accounting): the machine's swings hit
both alike, so the ratio per window is steady enough to see a change of a few
per cent, which runs one after the other (a third apart on this VM) cannot.

--jitter-buffer-ms runs every N once per value (interleaved), so the default
(0: packets go on as they arrive) is compared with rtpbin's jitter buffer in
the same run.

--threads adds, per N, the recorders' CPU and wake-ups (voluntary + involuntary
context switches) per second by thread name (digits removed: "queue5:src" and
"queue1:src" count together), per session.
"""
import argparse
import json
import collections
import os
import re
import resource
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "recorder"))
import harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STAGGER_S = 0.25  # between sessions' joins: N peers loading media and negotiating at once skew the join time


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def threads(pid):
    """{thread name without digits: [cpu ticks, context switches, count]} of a process."""
    out = collections.defaultdict(lambda: [0, 0, 0])
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
            cs = 0
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        cs += int(line.split()[1])
        except OSError:
            continue
        name = re.sub(r"[0-9]+", "", st[st.index("(") + 1:st.rindex(")")])
        fields = st.rsplit(")", 1)[1].split()
        g = out[name]
        g[0] += int(fields[11]) + int(fields[12])
        g[1] += cs
        g[2] += 1
    return out


def cpu_ns(pid):
    """Time on CPU of a process (all its threads), in ns, from the scheduler's
    own accounting (/proc/PID/task/*/schedstat: exact, not tick-sampled)."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            continue
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(n, build, media, seconds, workroot, jitter_ms=0):
    sessions = []
    try:
        for i in range(n):
            w = harness.tempdir_in(workroot, "n%d-s%d-" % (n, i))
            s = harness.Session(os.path.join(build, "recorder", "testigo-recorder"),
                                os.path.join(build, "tests", "recorder", "rtc-peer"), media, w,
                                session_id="bench-%d-%d" % (n, i),
                                extra_args=("--jitter-buffer-ms", str(jitter_ms)) if jitter_ms else ())
            sessions.append(s)
        for s in sessions:
            if s.wait_for(lambda m: m.get("type") == "ready", 30) is None:
                raise RuntimeError("a recorder did not start (see %s)" % s.workdir)
        for s in sessions:
            s.join("officer", no_decode=True)
            time.sleep(STAGGER_S)
        time.sleep(1.0)
        for s in sessions:
            s.join("signatory", no_decode=True)
            time.sleep(STAGGER_S)
        delays = []
        for s in sessions:
            fk = s.wait_for(lambda m: m.get("type") == "first-keyframe" and m.get("peer") == "signatory", 60)
            if fk:
                delays.append(fk["delay_ms"])
        time.sleep(3.0)  # settle
        pids = [s.rec.p.pid for s in sessions]
        peer_pids = [p.p.pid for s in sessions for p in s.peers.values()]
        load0 = loadavg()
        t0 = time.monotonic()
        c0 = [cpu_ticks(p) for p in pids]
        p0 = [cpu_ticks(p) for p in peer_pids]
        th0 = [threads(p) for p in pids]
        frames0 = [min(s.peer_stats(p).get("video_frames", 0) for p in harness.PARTIES) for s in sessions]
        rss = []
        end = t0 + seconds
        while time.monotonic() < end:
            time.sleep(1.0)
            rss.append(statistics.mean(rss_bytes(p) for p in pids))
        c1 = [cpu_ticks(p) for p in pids]
        p1 = [cpu_ticks(p) for p in peer_pids]
        th1 = [threads(p) for p in pids]
        dt = time.monotonic() - t0
        load1 = loadavg()
        if None in c0 or None in c1:
            raise RuntimeError("a recorder exited during the measurement")
        cpu = [100.0 * (b - a) / TICK / dt for a, b in zip(c0, c1)]
        peers_cpu = sum(100.0 * (b - a) / TICK / dt for a, b in zip(p0, p1) if a is not None and b is not None)
        # Frames relayed during the window: the relay keeps up (20 fps sent).
        frames1 = [min(s.peer_stats(p).get("video_frames", 0) for p in harness.PARTIES) for s in sessions]
        fps = [(b - a) / dt for a, b in zip(frames0, frames1)]
        per_thread = collections.defaultdict(lambda: [0.0, 0.0, 0])  # per session: cpu %, wake-ups/s, threads
        for a, b in zip(th0, th1):
            for name, (ticks, cs, count) in b.items():
                t0_, cs0, _ = a.get(name, (0, 0, 0))
                g = per_thread[name]
                g[0] += 100.0 * (ticks - t0_) / TICK / dt / n
                g[1] += (cs - cs0) / dt / n
                g[2] = max(g[2], count)
    finally:
        for s in sessions:
            try:
                s.stop(timeout=20)
            finally:
                s.kill_all()
    return {
        "sessions": n,
        "jitter_buffer_ms": jitter_ms,
        "cpu_pct_per_session": statistics.mean(cpu),
        "cpu_pct_per_session_max": max(cpu),
        "cpu_pct_total": sum(cpu),
        "peers_cpu_pct_total": peers_cpu,
        "rss_mb_per_session": max(rss) / 1e6,
        "first_keyframe_ms_median": statistics.median(delays) if delays else None,
        "first_keyframe_ms_max": max(delays) if delays else None,
        "keyframes_seen": len(delays),
        "first_keyframe_ms": delays,
        "min_relayed_fps": min(fps),
        "load_start": load0,
        "load_end": load1,
        "threads": {k: v for k, v in per_thread.items()},
    }


def run_paired(n, builds, media, seconds, windows, workroot):
    """N sessions of each build at the same time, measured over the same
    windows: what the machine's load does to one it does to the other, so
    the ratio per window is far steadier than that of runs one after the
    other (on this kind of VM one process's CPU swings by a third between
    runs)."""
    sessions = {label: [] for label, _ in builds}
    try:
        for i in range(n):
            for label, build in builds:
                w = harness.tempdir_in(workroot, "p%d-%s-%d-" % (n, label, i))
                sessions[label].append(harness.Session(
                    os.path.join(build, "recorder", "testigo-recorder"),
                    os.path.join(build, "tests", "recorder", "rtc-peer"), media, w,
                    session_id="paired-%s-%d-%d" % (label, n, i)))
        for label, _ in builds:
            for s in sessions[label]:
                if s.wait_for(lambda m: m.get("type") == "ready", 30) is None:
                    raise RuntimeError("a recorder did not start (see %s)" % s.workdir)
        for party in ("officer", "signatory"):
            for i in range(n):
                for label, _ in builds:
                    sessions[label][i].join(party, no_decode=True)
                    time.sleep(STAGGER_S)
        for label, _ in builds:
            for s in sessions[label]:
                if s.wait_for(lambda m: m.get("type") == "first-keyframe" and m.get("peer") == "signatory", 60) is None:
                    raise RuntimeError("a session recorded no keyframe (see %s)" % s.workdir)
        time.sleep(3.0)  # settle
        pids = {label: [s.rec.p.pid for s in sessions[label]] for label, _ in builds}
        per_window = {label: [] for label, _ in builds}
        prev = {label: [cpu_ns(p) for p in pids[label]] for label, _ in builds}
        t_prev = time.monotonic()
        for _ in range(windows):
            time.sleep(seconds)
            cur = {label: [cpu_ns(p) for p in pids[label]] for label, _ in builds}
            t = time.monotonic()
            for label, _ in builds:
                if None in cur[label]:
                    raise RuntimeError("a recorder exited during the measurement")
                per_window[label].append(statistics.mean(
                    100.0 * (c - p) / 1e9 / (t - t_prev) for c, p in zip(cur[label], prev[label])))
            prev, t_prev = cur, t
    finally:
        for label, _ in builds:
            for s in sessions[label]:
                try:
                    s.stop(timeout=20)
                finally:
                    s.kill_all()
    (la, _), (lb, _) = builds
    return {"sessions": n, "windows_s": seconds, "cpu_pct_per_session": per_window,
            "ratios": [a / b for a, b in zip(per_window[la], per_window[lb])]}


def main_paired(a, ns):
    work = harness.tempdir("testigo-bench-rec-")
    media = harness.make_media(os.path.join(work, "media.webm"), seconds=20, pattern="smpte100", speed=3)
    builds = [("this", a.build), ("baseline", a.baseline_build)]
    results = []
    for n in ns:
        r = run_paired(n, builds, media, a.seconds, a.windows, work)
        results.append(r)
        print("# paired N=%d: ratio per window %s" % (n, " ".join("%.3f" % x for x in r["ratios"])),
              file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print("paired: N sessions of this build and N of the baseline (%s) at once, %d windows of %d s; "
          "recorder CPU %% of one core per session (scheduler time, /proc/PID/task/*/schedstat), median (min-max) "
          "over the windows; ratio: this / baseline in the same window" % (a.baseline_build, a.windows, a.seconds))
    print("| N | this: CPU %/session | baseline: CPU %/session | ratio (median) | ratio (min-max) |")
    print("|---|---|---|---|---|")
    for r in results:
        t, b = r["cpu_pct_per_session"]["this"], r["cpu_pct_per_session"]["baseline"]
        print("| %d | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %.3f | %.3f-%.3f |" % (
            r["sessions"], statistics.median(t), min(t), max(t), statistics.median(b), min(b), max(b),
            statistics.median(r["ratios"]), min(r["ratios"]), max(r["ratios"])))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"paired": results}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--baseline-build", help="another build whose recorder runs interleaved, for the ratio base")
    ap.add_argument("--sessions", default="1,4,8,16")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", action="store_true", help="per-thread-name CPU and wake-ups")
    ap.add_argument("--jitter-buffer-ms", default="0",
                    help="comma-separated recorder --jitter-buffer-ms values, each run at every N "
                         "(0: packets go on as they arrive, the default)")
    ap.add_argument("--paired", action="store_true",
                    help="run this build's and the baseline's sessions at the same time (needs --baseline-build); "
                         "--seconds is then the length of each of --windows windows")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--json")
    a = ap.parse_args()
    ns = [int(x) for x in a.sessions.split(",")]
    if a.paired:
        if not a.baseline_build:
            ap.error("--paired needs --baseline-build")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(4096, hard) if hard != resource.RLIM_INFINITY else 4096, hard))
        main_paired(a, ns)
        return
    jbs = [int(x) for x in a.jitter_buffer_ms.split(",")]
    # 3 processes per session, 3 pipes each, plus what GStreamer opens
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard) if hard != resource.RLIM_INFINITY else 4096, hard))
    work = harness.tempdir("testigo-bench-rec-")
    media = harness.make_media(os.path.join(work, "media.webm"), seconds=20, pattern="smpte100", speed=3)
    kbps = os.path.getsize(media) * 8 / 20 / 1000
    builds = [("this", a.build)] + ([("baseline", a.baseline_build)] if a.baseline_build else [])
    # a key: (N, jitter buffer ms, build label)
    keys = [(n, jb, b[0]) for n in ns for jb in jbs for b in builds]
    build_dir = dict(builds)
    runs = {k: [] for k in keys}
    for rep in range(a.repeat):
        for k in keys:
            r = run(k[0], build_dir[k[2]], media, a.seconds, work, k[1])
            runs[k].append(r)
            print("# run %d N=%d jitter-buffer %d ms, %s build: %.2f %%/session, load %.1f-%.1f, peers %.0f %%"
                  % (rep + 1, k[0], k[1], k[2], r["cpu_pct_per_session"], r["load_start"], r["load_end"],
                     r["peers_cpu_pct_total"]), file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)

    def med(k, key):
        return statistics.median(r[key] for r in runs[k])

    def label(k):
        return "%d ms" % k[1] if k[1] else "none"

    print("pre-encoded media: VP8 640x480@20 + Opus, %.0f kbit/s per direction; %d CPUs; window %d s; "
          "%d run(s) per N, median (min-max)" % (kbps, os.cpu_count(), a.seconds, a.repeat))
    print("ratio N: to N = %d with the same build and jitter buffer; ratio jb: to jitter buffer %s at the same N "
          "and build%s" % (ns[0], label((0, jbs[0])),
                           "; ratio base: to the baseline build (%s) at the same N and jitter buffer" % a.baseline_build
                           if a.baseline_build else ""))
    print("| N | build | jitter buffer | recorder CPU %/session (one core) | ratio N | ratio jb | ratio base "
          "| total recorder CPU % | peers' CPU % | load avg | RSS MB/session | ratio N | first keyframe ms (median / max) "
          "| sessions with keyframe | min relayed fps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    alld = {k: [d for r in runs[k] for d in r["first_keyframe_ms"]] for k in keys}
    for k in keys:
        n = k[0]
        cpus = [r["cpu_pct_per_session"] for r in runs[k]]
        base_n, base_jb, base_b = (ns[0], k[1], k[2]), (n, jbs[0], k[2]), (n, k[1], builds[-1][0])
        print("| %d | %s | %s | %.2f (%.2f-%.2f) | %.2f | %.2f | %.2f | %.1f | %.0f | %.1f-%.1f | %.1f | %.2f "
              "| %s / %s | %d/%d | %.1f |" % (
                  n, k[2], label(k), statistics.median(cpus), min(cpus), max(cpus),
                  statistics.median(cpus) / med(base_n, "cpu_pct_per_session"),
                  statistics.median(cpus) / med(base_jb, "cpu_pct_per_session"),
                  statistics.median(cpus) / med(base_b, "cpu_pct_per_session"),
                  med(k, "cpu_pct_total"), med(k, "peers_cpu_pct_total"),
                  min(r["load_start"] for r in runs[k]), max(r["load_end"] for r in runs[k]),
                  med(k, "rss_mb_per_session"), med(k, "rss_mb_per_session") / med(base_n, "rss_mb_per_session"),
                  "%.0f" % statistics.median(alld[k]) if alld[k] else "-",
                  "%.0f" % max(alld[k]) if alld[k] else "-",
                  min(r["keyframes_seen"] for r in runs[k]), n, min(r["min_relayed_fps"] for r in runs[k])))
    if a.threads:
        for k in keys:
            r = runs[k][-1]
            print("\nN = %d, %s build, jitter buffer %s (last run), per session: thread name | threads | CPU %% "
                  "| wake-ups/s" % (k[0], k[2], label(k)))
            for name, (cpu, cs, count) in sorted(r["threads"].items(), key=lambda x: -x[1][0] - x[1][1] / 1e4):
                if cpu >= 0.005 or cs >= 1:
                    print("  %-20s %3d %6.2f %7.0f" % (name, count, cpu, cs))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"media_kbps": kbps, "runs": {"%d/%d/%s" % k: runs[k] for k in keys}}, f, indent=1)

if __name__ == "__main__":
    main()
