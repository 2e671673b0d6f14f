"""tap.py — the TAP runner the Python test scripts share.

A script registers cases with @test(name) or add(name, fn), raises Fail
(through check) for a failed assertion, and ends with
`sys.exit(tap.run(setup, lambda: WORK))`: setup runs first ("Bail out!" when it
fails), then every case in order, one "ok"/"not ok" line each; WORK is
removed at the end unless TESTIGO_KEEP_TMP is set.
"""
import os
import shutil
import sys
import time
import traceback


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


TESTS = []


def add(name, fn):
    TESTS.append((name, fn))


def test(name):
    def deco(fn):
        add(name, fn)
        return fn
    return deco


def _remove(work):
    # Extracted bags are read-only: make their directories writable first.
    for root, dirs, _files in os.walk(work):
        for d in dirs:
            if not os.path.islink(os.path.join(root, d)):
                os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(work, ignore_errors=True)


def run(setup, work, teardown=None):
    """Runs setup and every registered case; returns the exit status.
    @work: a callable giving the work directory (setup usually makes it)."""
    t0 = time.time()
    try:
        setup()
    except Exception as e:
        print(f"Bail out! setup failed: {e}")
        traceback.print_exc(file=sys.stdout)
        return 1
    print(f"1..{len(TESTS)}", flush=True)
    failed = 0
    try:
        for i, (name, fn) in enumerate(TESTS, 1):
            t = time.time()
            try:
                fn()
                print(f"ok {i} - {name}")
            except Exception as e:
                failed += 1
                print(f"not ok {i} - {name}")
                msg = str(e) if isinstance(e, Fail) else traceback.format_exc()
                for line in msg.splitlines():
                    print(f"#   {line}")
            if time.time() - t > 10:
                print(f"#   ({time.time() - t:.1f} s)")
            sys.stdout.flush()
    finally:
        if teardown is not None:
            teardown()
        if os.environ.get("TESTIGO_KEEP_TMP"):
            print(f"# work directory kept: {work()}")
        elif work() is not None:
            _remove(work())
    print(f"# {len(TESTS)} cases, {failed} failed, {time.time() - t0:.1f} s")
    return 1 if failed else 0
