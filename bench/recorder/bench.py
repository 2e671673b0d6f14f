#!/usr/bin/env python3
"""bench/recorder/bench.py — per-session cost of testigo-recorder.

N concurrent synthetic sessions (N = 1, 4, 8 by default), each a
testigo-recorder between two rtc-peer participants sending PRE-ENCODED VP8
640x480@20 + Opus both ways (no encoder in the loop, peers count without
decoding). For each N: CPU % of one core and RSS of the recorder processes
(from /proc, over a steady-state window), and the time from the signatory's
offer to the first recorded keyframe. Prints a table with ratios to N=1.

  bench.py --build DIR [--sessions 1,4,8] [--seconds 10] [--json OUT]
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "recorder"))
import harness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE


def run(n, build, media, seconds, workroot):
    sessions = []
    for i in range(n):
        w = harness.tempdir_in(workroot, "n%d-s%d-" % (n, i))
        s = harness.Session(os.path.join(build, "recorder", "testigo-recorder"),
                            os.path.join(build, "tests", "recorder", "rtc-peer"), media, w,
                            session_id="bench-%d-%d" % (n, i))
        sessions.append(s)
    for s in sessions:
        s.wait_for(lambda m: m.get("type") == "ready", 10)
        s.join("officer", no_decode=True)
    time.sleep(1.0)
    for s in sessions:
        s.join("signatory", no_decode=True)
    delays = []
    for s in sessions:
        fk = s.wait_for(lambda m: m.get("type") == "first-keyframe" and m.get("peer") == "signatory", 30)
        if fk:
            delays.append(fk["delay_ms"])
    time.sleep(2.0)  # settle
    pids = [s.rec.p.pid for s in sessions]
    t0 = time.monotonic()
    c0 = [cpu_ticks(p) for p in pids]
    rss = []
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        rss.append(statistics.mean(rss_bytes(p) for p in pids))
    c1 = [cpu_ticks(p) for p in pids]
    dt = time.monotonic() - t0
    cpu = [100.0 * (b - a) / TICK / dt for a, b in zip(c0, c1)]
    received = [min(s.peer_stats(p).get("video_frames", 0) for p in harness.PARTIES) for s in sessions]
    for s in sessions:
        s.stop()
        s.kill_all()
    return {
        "sessions": n,
        "cpu_pct_per_session": statistics.mean(cpu),
        "cpu_pct_total": sum(cpu),
        "rss_mb_per_session": max(rss) / 1e6,
        "first_keyframe_ms_median": statistics.median(delays) if delays else None,
        "first_keyframe_ms_max": max(delays) if delays else None,
        "keyframes_seen": len(delays),
        "min_video_frames_received": min(received),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--sessions", default="1,4,8")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = harness.tempdir("testigo-bench-rec-")
    media = harness.make_media(os.path.join(work, "media.webm"), seconds=20, pattern="smpte100", speed=3)
    kbps = os.path.getsize(media) * 8 / 20 / 1000
    results = []
    for n in [int(x) for x in a.sessions.split(",")]:
        results.append(run(n, a.build, media, a.seconds, work))
        print("# N=%d done" % n, file=sys.stderr)
    base = results[0]
    print("pre-encoded media: VP8 640x480@20 + Opus, %.0f kbit/s per direction; %d CPUs; window %d s"
          % (kbps, os.cpu_count(), a.seconds))
    print("| N | recorder CPU %/session (one core) | ratio | total CPU % | RSS MB/session | ratio "
          "| first keyframe ms (median / max) | sessions with keyframe | min frames relayed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %d | %.2f | %.2f | %.1f | %.1f | %.2f | %s / %s | %d/%d | %d |" % (
            r["sessions"], r["cpu_pct_per_session"], r["cpu_pct_per_session"] / base["cpu_pct_per_session"],
            r["cpu_pct_total"], r["rss_mb_per_session"], r["rss_mb_per_session"] / base["rss_mb_per_session"],
            r["first_keyframe_ms_median"], r["first_keyframe_ms_max"], r["keyframes_seen"], r["sessions"],
            r["min_video_frames_received"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"media_kbps": kbps, "results": results}, f, indent=1)
    import shutil
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
