#!/usr/bin/env python3
"""Writes a synthetic session for tests and benchmarks: a recording of random
bytes, events.jsonl with a rolling SHA-256 chain over it (the format of
docs/bundle-format.md), and a validation record taken from the schema examples.

usage: make-fixture.py OUTDIR [--size BYTES] [--segment BYTES] [--example NAME]
"""
import argparse, hashlib, json, os, shutil, sys

ap = argparse.ArgumentParser()
ap.add_argument("outdir")
ap.add_argument("--size", type=int, default=3_000_000)
ap.add_argument("--segment", type=int, default=1_000_000)
ap.add_argument("--example", default="approved-teleconference")
ap.add_argument("--seed", default="testigo")
a = ap.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
examples = os.path.join(here, "..", "..", "evidence-schema", "examples", "valid")
os.makedirs(a.outdir, exist_ok=True)
record_path = os.path.join(a.outdir, "record.json")
shutil.copyfile(os.path.join(examples, a.example + ".json"), record_path)
record = json.load(open(record_path))
case_id = record["case"]["id"]

# Deterministic pseudo-random bytes (SHA-256 in counter mode), streamed.
rec_path = os.path.join(a.outdir, "recording.mkv")
prev = bytes(32)
events = []
def ev(**kw):
    kw = {"seq": len(events), **kw}
    events.append(kw)

ev(time="2025-03-03T09:00:02.000Z", type="session-start", version=1, session_id="s-test",
   case_id=case_id, officer_id=record["officer"]["id"])
ev(time="2025-03-03T09:01:12.004Z", type="part-start", part=0, file="recording.mkv", running_time_ns=0)
block = b""
counter = 0
with open(rec_path, "wb") as f:
    off = 0
    while off < a.size:
        n = min(a.segment, a.size - off)
        seg = hashlib.sha256()
        left = n
        while left:
            if not block:
                block = hashlib.sha256(f"{a.seed}:{counter}".encode()).digest() * 2048
                counter += 1
            take = block[:left]
            block = block[len(take):]
            f.write(take)
            seg.update(take)
            left -= len(take)
        h = seg.digest()
        c = hashlib.sha256(prev + h).digest()
        ev(time="2025-03-03T09:01:13.000Z", type="segment", file="recording.mkv", offset=off, length=n,
           sha256=h.hex(), chain=c.hex(), running_time_ns=(len(events)) * 5_000_000_000)
        prev = c
        off += n
ev(time="2025-03-03T09:14:41.000Z", type="session-end", result=record["outcome"]["result"])

with open(os.path.join(a.outdir, "events.jsonl"), "w") as f:
    for e in events:
        f.write(json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n")
# A tiny valid PNG still (1x1 grey).
png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                    "3a7e9b550000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")
for name in ("doc-front.png", "doc-back.png", "face.png"):
    with open(os.path.join(a.outdir, name), "wb") as f:
        f.write(png)
print(case_id)
