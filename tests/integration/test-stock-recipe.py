#!/usr/bin/env python3
"""The auditor guide's stock-tool recipe, extracted from docs/auditor-guide.md
exactly as an auditor would, run against a freshly sealed bundle (must pass)
and tampered copies (must fail). TAP output.

usage: test-stock-recipe.py TESTIGO SOURCE_ROOT
"""
import os, shutil, subprocess, sys, tarfile, tempfile

testigo, src = sys.argv[1], sys.argv[2]
results = []

def case(name, ok, detail=""):
    results.append((name, ok, detail))

def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)

def recipe_text():
    lines, on = [], False
    for line in open(os.path.join(src, "docs", "auditor-guide.md"), encoding="utf-8"):
        line = line.rstrip("\n")
        if line == "```sh recipe":
            on = True
            continue
        if on and line == "```":
            break
        if on:
            lines.append(line)
    assert lines, "no ```sh recipe block in docs/auditor-guide.md"
    return "\n".join(lines) + "\n"

def recipe(bundle, root, env_extra=None):
    work = tempfile.mkdtemp(prefix="recipe-", dir=tmp)
    script = os.path.join(tmp, "recipe.sh")
    env = dict(os.environ, BUNDLE=bundle, RA_ROOT=root, TSA_ROOT=root, LC_ALL="C")
    env.update(env_extra or {})
    r = run(["bash", script], cwd=work, env=env)
    shutil.rmtree(work, ignore_errors=True) if r.returncode == 0 else subprocess.run(["chmod", "-R", "u+w", work])
    return r

tmp = tempfile.mkdtemp(prefix="tg-stock-")
try:
    open(os.path.join(tmp, "recipe.sh"), "w").write(recipe_text())
    keys = os.path.join(tmp, "keys")
    r = run([testigo, "keys", "init", "--bits", "2048", keys])
    assert r.returncode == 0, r.stderr
    other = os.path.join(tmp, "other")
    assert run([testigo, "keys", "init", "--bits", "2048", other]).returncode == 0
    fx = os.path.join(tmp, "fx")
    run([sys.executable, os.path.join(src, "tests", "integration", "make-fixture.py"), fx, "--size", "200000", "--segment", "50000"], check=True)
    bundle = os.path.join(tmp, "good.tar")
    r = run([testigo, "seal", "--keys", keys, "--record", f"{fx}/record.json", "--recording", f"{fx}/recording.mkv",
             "--events", f"{fx}/events.jsonl", "--still", f"face.png={fx}/face.png", "--out", bundle])
    assert r.returncode == 0, r.stderr
    root = os.path.join(keys, "root.pem")

    r = recipe(bundle, root)
    case("recipe passes a fresh bundle", r.returncode == 0 and "STOCK CHECKS PASSED" in r.stdout, r.stderr[-500:])
    r = recipe(bundle, root, {"AT_GENTIME": "1"})
    case("recipe passes a fresh bundle at genTime", r.returncode == 0, r.stderr[-500:])
    r = recipe(bundle, os.path.join(other, "root.pem"))
    case("recipe fails with another root", r.returncode != 0)

    # one flipped byte inside each member's data
    with tarfile.open(bundle) as t:
        members = [(m.name, m.offset_data, m.size) for m in t.getmembers() if m.isfile() and m.size > 0]
    raw = open(bundle, "rb").read()
    for name, off, size in members:
        bad = bytearray(raw)
        bad[off + size // 2] ^= 0x20
        path = os.path.join(tmp, "flip.tar")
        open(path, "wb").write(bad)
        r = recipe(path, root)
        case(f"recipe fails on a flipped byte in {name}", r.returncode != 0)

    # an extra file under data/, added by re-taring an extraction with GNU tar
    ex = os.path.join(tmp, "ex")
    os.makedirs(ex)
    run(["tar", "-xf", bundle, "-C", ex], check=True)
    case_dir = os.listdir(ex)[0]
    subprocess.run(["chmod", "-R", "u+w", ex], check=True)
    open(os.path.join(ex, case_dir, "data", "extra.txt"), "w").write("x")
    extra = os.path.join(tmp, "extra.tar")
    run(["tar", "-cf", extra, "-C", ex, case_dir], check=True)
    r = recipe(extra, root)
    case("recipe fails on a file missing from the manifest", r.returncode != 0)
    # and the verifier agrees, whatever the recipe says
    r = run([testigo, "verify", "-q", "--ca-file", root, extra])
    case("testigo verify fails it too", r.returncode == 1)

    # a bundle of another channel: documents under data/documents/, no recording
    import hashlib, json
    dfx = os.path.join(tmp, "dfx")
    os.makedirs(dfx)
    message = b"From: holder@example.net\r\nSubject: request\r\n\r\nSolicitud: suspension\r\n"
    open(os.path.join(dfx, "message.eml"), "wb").write(message)
    rec = json.load(open(os.path.join(src, "evidence-schema", "examples", "valid", "v2-suspension-signed-email.json")))
    digest = hashlib.sha256(message).hexdigest()
    rec["documents"] = [{"name": "message.eml", "sha256": digest, "media_type": "message/rfc822"}]
    rec["case"]["email"]["message_sha256"] = digest
    json.dump(rec, open(os.path.join(dfx, "record.json"), "w"))
    dbundle = os.path.join(tmp, "documents.tar")
    r = run([testigo, "seal", "--keys", keys, "--record", f"{dfx}/record.json",
             "--document", f"message.eml={dfx}/message.eml", "--out", dbundle])
    assert r.returncode == 0, r.stderr
    r = recipe(dbundle, root)
    case("recipe passes a document bundle (signed e-mail, no recording)",
         r.returncode == 0 and "STOCK CHECKS PASSED" in r.stdout, r.stderr[-500:])
    with tarfile.open(dbundle) as t:
        doc = [m for m in t.getmembers() if m.name.endswith("/data/documents/message.eml")][0]
    bad = bytearray(open(dbundle, "rb").read())
    bad[doc.offset_data + doc.size // 2] ^= 0x20
    open(os.path.join(tmp, "docflip.tar"), "wb").write(bad)
    r = recipe(os.path.join(tmp, "docflip.tar"), root)
    case("recipe fails on a flipped byte in a document", r.returncode != 0)
    dex = os.path.join(tmp, "dex")
    os.makedirs(dex)
    run(["tar", "-xf", dbundle, "-C", dex], check=True)
    dcase = os.listdir(dex)[0]
    subprocess.run(["chmod", "-R", "u+w", dex], check=True)
    os.unlink(os.path.join(dex, dcase, "data", "documents", "message.eml"))
    nodoc = os.path.join(tmp, "nodoc.tar")
    run(["tar", "-cf", nodoc, "-C", dex, dcase], check=True)
    r = recipe(nodoc, root)
    case("recipe fails on a bundle with neither recording nor document",
         r.returncode != 0 and "recording-or-document" in r.stdout + r.stderr, (r.stdout + r.stderr)[-500:])
finally:
    subprocess.run(["chmod", "-R", "u+w", tmp])
    shutil.rmtree(tmp, ignore_errors=True)

print(f"1..{len(results)}")
for i, (name, ok, detail) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    if not ok and detail:
        for line in detail.splitlines():
            print(f"# {line}")
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
