#!/usr/bin/env python3
"""Seal and verify show progress on a terminal for large inputs, and stay
quiet when stderr is not a terminal. TAP output.

usage: test-progress.py TESTIGO SOURCE_ROOT
"""
import os, pty, select, shutil, subprocess, sys, tempfile

testigo, src = sys.argv[1], sys.argv[2]
results = []

def on_pty(cmd):
    """Runs cmd with stderr on a pseudo-terminal; returns (exit status, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(), out.decode(errors="replace")

tmp = tempfile.mkdtemp(prefix="tg-progress-")
try:
    keys = os.path.join(tmp, "keys")
    subprocess.run([testigo, "keys", "init", "--bits", "2048", keys], check=True, capture_output=True)
    fx = os.path.join(tmp, "fx")
    subprocess.run([sys.executable, os.path.join(src, "tests", "integration", "make-fixture.py"), fx,
                    "--size", str(80 << 20), "--segment", str(8 << 20)], check=True, capture_output=True)
    seal = [testigo, "seal", "--keys", keys, "--record", f"{fx}/record.json",
            "--recording", f"{fx}/recording.mkv", "--events", f"{fx}/events.jsonl"]
    b1 = os.path.join(tmp, "a.tar")
    rc, shown = on_pty(seal + ["--out", b1])
    results.append(("seal on a terminal shows progress to 100 %", rc == 0 and "sealing:" in shown and "100%" in shown))
    rc, shown = on_pty([testigo, "verify", "--ca-file", f"{keys}/root.pem", b1])
    results.append(("verify on a terminal shows progress to 100 %", rc == 0 and "verifying:" in shown and "100%" in shown))
    rc, shown = on_pty([testigo, "verify", "-q", "--ca-file", f"{keys}/root.pem", b1])
    results.append(("verify -q shows none", rc == 0 and "verifying:" not in shown))
    b2 = os.path.join(tmp, "b.tar")
    r = subprocess.run(seal + ["--out", b2], capture_output=True, text=True)
    results.append(("seal with stderr not a terminal prints no progress", r.returncode == 0 and "sealing:" not in r.stderr))
    r = subprocess.run([testigo, "verify", "--ca-file", f"{keys}/root.pem", b2], capture_output=True, text=True)
    results.append(("verify with stderr not a terminal prints no progress", r.returncode == 0 and "verifying:" not in r.stderr))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print(f"1..{len(results)}")
for i, (name, ok) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
sys.exit(0 if all(ok for _, ok in results) else 1)
