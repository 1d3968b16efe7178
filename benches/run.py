#!/usr/bin/env python3
"""The project's benchmark report (issue #8); run it through benches/run.sh.

Builds in release, runs every benchmark of the project on this machine and
writes, from what it measured and nothing else:

- docs/BENCHMARKS.md      the report (tables, targets, machine, versions);
- benches/results/latest.json  every row with all its runs;
- docs/bench/*.svg        throughput by size, peak RSS by size.

Every row is a median of at least 3 runs (the Rust benchmarks interleave
their rounds; the external tools here are run round-robin), and every ratio
is the median of per-run ratios against a baseline measured in the same
run. With --quick everything runs once on tiny inputs and the outputs go to
target/vault-bench/quick/ instead (CI uses this so the code cannot rot).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target"
RELEASE = TARGET / "release"
MIB = 1 << 20


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def out(cmd, **kw):
    """stdout of a command that must succeed."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def try_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def timed(cmd, stdout=subprocess.DEVNULL, env=None):
    """Runs cmd; returns (wall seconds, peak RSS in KiB, stdout text if
    captured). Fails loudly on a non-zero exit.

    Peak RSS comes from GNU time (`%M`, the child's own high-water mark):
    Python starts children with vfork, and Linux carries the parent's RSS
    into a vforked child's ru_maxrss, so wait4 would report at least
    Python's own size."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile(mode="r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], stdout=stdout, stderr=err, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {err.read().decode(errors='replace')[-2000:]}")
        peak_kib = int(rss.read().split()[-1])
    return wall, peak_kib, p.stdout.decode() if stdout == subprocess.PIPE else ""


def med(v):
    return statistics.median(v)


class Rows:
    """Rows in the same shape as benches/report.rs writes."""

    def __init__(self, bench):
        self.bench = bench
        self.rows = []

    def add(self, id, name, unit, runs, baseline=None, ratios=None):
        row = {"id": id, "name": name, "unit": unit, "value": med(runs), "runs": runs}
        if baseline is not None:
            row.update(baseline=baseline, ratio=med(ratios), ratio_runs=ratios)
        self.rows.append(row)

    def doc(self, quick):
        return {"bench": self.bench, "quick": quick, "rows": self.rows}


# ---------------------------------------------------------------- machine


def machine():
    info = Path("/proc/cpuinfo").read_text()
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    wanted = ["aes", "pclmulqdq", "vaes", "vpclmulqdq", "sha_ni", "avx2", "avx512f"]
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    fs = try_out(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(TARGET)]) or "unknown"
    lock = (ROOT / "Cargo.lock").read_text()

    def crate(name):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
        return m.group(1) if m else "?"

    pg = try_out(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", "SHOW server_version"])
    return {
        "cpu": model,
        "cpu_flags": [f for f in wanted if f in flags],
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / MIB, 1),
        "kernel": os.uname().release,
        "filesystem": fs,
        "versions": {
            "rustc": try_out(["rustc", "--version"]),
            "openssl": try_out(["openssl", "version"]),
            "age": try_out(["age", "--version"]),
            "gpg": (try_out(["gpg", "--version"]).splitlines() or [""])[0],
            "wrk": (try_out(["wrk", "--version"]).splitlines() or [""])[0],
            "postgresql": pg,
            "crates": {c: crate(c) for c in ["aws-lc-rs", "aws-lc-sys", "aes-gcm", "object_store", "sqlx", "libsqlite3-sys", "axum", "hyper", "tokio"]},
            "s3s-fs": "0.14.1 (benches/run.sh installs it)",
        },
        "git_commit": try_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(try_out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])),
    }


# ---------------------------------------------------------- Rust benches


def cargo_benches(quick, results):
    env = dict(os.environ, VAULT_BENCH_OUT=str(results))
    if quick:
        env["VAULT_BENCH_QUICK"] = "1"
    for pkg, bench in [("vault-core", "format"), ("vault-core", "storage"), ("vault-core", "lifecycle"), ("vault-ffi", "overhead")]:
        log(f"cargo bench -p {pkg} --bench {bench}")
        t0 = time.time()
        subprocess.run(["cargo", "bench", "-q", "-p", pkg, "--all-features", "--bench", bench], check=True, env=env, cwd=ROOT)
        log(f"  {bench}: {time.time() - t0:.0f} s")


# ------------------------------------------------- file tools vs the vault


def make_input(path, size):
    """A PDF header and random bytes (documents are compressed already)."""
    with open(path, "wb") as f:
        f.write(b"%PDF-1.7\n")
        left = size - 9
        with open("/dev/urandom", "rb") as r:
            while left:
                n = min(left, 8 * MIB)
                f.write(r.read(n))
                left -= n


def new_vault(work, name):
    d = work / name
    out([str(RELEASE / "vault"), "init", "--dir", str(d)])
    return d / "vault.toml"


def tools(quick, work, shm, rounds):
    """age / gpg / openssl enc / cat against the vault, on the same file:
    wall time and peak RSS, round-robin."""
    size = 4 * MIB if quick else 1024 * MIB
    rows = Rows("tools")
    src = shm / "input.pdf"
    make_input(src, size)
    # Keys and prepared ciphertexts (not timed).
    keydir = work / "keys"
    keydir.mkdir()
    out(["age-keygen", "-o", str(keydir / "age.key")])
    recipient = re.search(r"public key: (\S+)", (keydir / "age.key").read_text()).group(1)
    (keydir / "pass").write_text("correct horse battery staple\n")
    (keydir / "data.key").write_text(os.urandom(32).hex())
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    genv = dict(os.environ, GNUPGHOME=str(gnupg))
    gpg = ["gpg", "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback", "--passphrase-file", str(keydir / "pass")]
    pw = ["-pass", f"file:{keydir / 'pass'}"]
    seal = str(RELEASE / "examples" / "seal_file")
    core = str(RELEASE / "examples" / "core_put")
    key = str(keydir / "data.key")

    def encrypt_to(dest):
        """Each tool's encryption of src into dest."""
        return {
            "age": (["age", "-r", recipient, "-o", dest, str(src)], None),
            "gpg": (gpg + ["--symmetric", "--cipher-algo", "AES256", "-o", dest, str(src)], genv),
            "gpg_z0": (gpg + ["--symmetric", "--cipher-algo", "AES256", "-z", "0", "-o", dest, str(src)], genv),
            "openssl": (["openssl", "enc", "-aes-256-ctr", "-pbkdf2", *pw, "-in", str(src), "-out", dest], None),
            "vault": ([seal, "seal", key, str(src), dest], None),
            "vault_1t": ([seal, "seal-1t", key, str(src), dest], None),
        }

    # The ciphertexts the decryption rows read (made once, not timed).
    cipher = {n: str(shm / f"c.{n}") for n in ["age", "gpg", "gpg_z0", "openssl", "vault"]}
    for n, path in cipher.items():
        cmd, env = encrypt_to(path)[n]
        timed(cmd, env=env)
    null = "/dev/null"
    encrypt = encrypt_to(null)
    decrypt = {
        "age": (["age", "-d", "-i", str(keydir / "age.key"), "-o", null, cipher["age"]], None),
        "gpg": (gpg + ["-d", "-o", null, cipher["gpg"]], genv),
        "gpg_z0": (gpg + ["-d", "-o", null, cipher["gpg_z0"]], genv),
        "openssl": (["openssl", "enc", "-d", "-aes-256-ctr", "-pbkdf2", *pw, "-in", cipher["openssl"], "-out", null], None),
        "vault": ([seal, "open", key, cipher["vault"], null], None),
        "vault_1t": ([seal, "open-1t", key, cipher["vault"], null], None),
    }
    labels = {
        "age": "age 1.x, X25519 recipient",
        "gpg": "gpg --symmetric --cipher-algo AES256 (default compression)",
        "gpg_z0": "gpg --symmetric --cipher-algo AES256 -z 0 (no compression)",
        "openssl": "openssl enc -aes-256-ctr -pbkdf2 (no authentication)",
        "vault": "vault stream format, read and sealed on every core (examples/seal_file)",
        "vault_1t": "vault stream format, 1 thread (examples/seal_file)",
    }
    # seal_file opens on one core, with the input read on a second thread.
    labels = {"encrypt": labels, "decrypt": dict(labels, vault="vault stream format, input read on a 2nd thread (examples/seal_file)")}
    # Put/get through the whole vault on local files (fsync, SQLite, audit)
    # against cat to the same disk.
    config = new_vault(work, "tools-vault")
    disk_copy = work / "copy.pdf"
    walls = {k: [] for k in ["enc_" + n for n in encrypt] + ["dec_" + n for n in decrypt] + ["put", "get", "cat_put", "cat_get"]}
    rss = {k: [] for k in walls}
    for r in range(rounds):
        log(f"  tools round {r + 1}/{rounds}")
        for n, (cmd, env) in encrypt.items():
            w, m, _ = timed(cmd, env=env)
            walls["enc_" + n].append(w)
            rss["enc_" + n].append(m)
        for n, (cmd, env) in decrypt.items():
            w, m, _ = timed(cmd, env=env)
            walls["dec_" + n].append(w)
            rss["dec_" + n].append(m)
        w, m, ids = timed([core, "put", str(config), str(src)], stdout=subprocess.PIPE)
        walls["put"].append(w)
        rss["put"].append(m)
        tenant, doc = ids.split()
        w, m, got = timed([core, "get", str(config), tenant, doc], stdout=subprocess.PIPE)
        assert int(got) == size, got
        walls["get"].append(w)
        rss["get"].append(m)
        # cat to the same disk, made durable as the vault's put is.
        w, m, _ = timed(["sh", "-c", 'cat "$1" > "$2" && sync "$2"', "sh", str(src), str(disk_copy)])
        walls["cat_put"].append(w)
        rss["cat_put"].append(m)
        w, m, _ = timed(["cat", str(disk_copy)])
        walls["cat_get"].append(w)
        rss["cat_get"].append(m)
        disk_copy.unlink()
    mb = lambda ws: [size / w / 1e6 for w in ws]
    mib = size // MIB
    others = [k for k in encrypt if not k.startswith("vault")]
    for op, pre in [("encrypt", "enc_"), ("decrypt", "dec_")]:
        for n in others:
            rows.add(f"tools.{op}.{n}", f"{op} {mib} MiB, {labels[op][n]}", "MB/s", mb(walls[pre + n]))
        for me in ["vault", "vault_1t"]:
            mine = walls[pre + me]
            for n in others:
                rows.add(
                    f"tools.{op}.{me}_vs_{n}", f"{op} {mib} MiB, {labels[op][me]}", "MB/s", mb(mine),
                    baseline=f"tools.{op}.{n}", ratios=[t / v for t, v in zip(walls[pre + n], mine)],
                )
    rows.add("tools.cat_put", f"cat {mib} MiB to a file on the same disk, then sync", "MB/s", mb(walls["cat_put"]))
    rows.add("tools.vault_put", f"vault put {mib} MiB, local files + SQLite (examples/core_put)", "MB/s", mb(walls["put"]),
             baseline="tools.cat_put", ratios=[c / v for c, v in zip(walls["cat_put"], walls["put"])])
    rows.add("tools.cat_get", f"cat the {mib} MiB file to /dev/null", "MB/s", mb(walls["cat_get"]))
    rows.add("tools.vault_get", f"vault get {mib} MiB, local files + SQLite, to a discarding sink", "MB/s", mb(walls["get"]),
             baseline="tools.cat_get", ratios=[c / v for c, v in zip(walls["cat_get"], walls["get"])])
    what = {"put": "vault put", "get": "vault get", "cat_put": "cat to disk + sync", "cat_get": "cat to /dev/null"}
    for pre, op in [("enc_", "encrypt"), ("dec_", "decrypt")]:
        what.update({pre + n: f"{op}, {labels[op][n]}" for n in labels[op]})
    for k, v in walls.items():
        rows.add(f"tools.wall.{k}", f"wall time, {mib} MiB: {what[k]}", "s", v)
    for k, v in rss.items():
        rows.add(f"tools.rss.{k}", f"peak RSS, {mib} MiB: {what[k]}", "MiB", [x / 1024 for x in v])
    for f in shm.iterdir():
        f.unlink()
    return rows


def rss_by_size(quick, work, shm, rounds):
    """Peak RSS of vault put/get and of the format's seal/open by file size."""
    rows = Rows("rss")
    sizes = [1, 2, 4] if quick else [16, 128, 1024]
    config = new_vault(work, "rss-vault")
    key = work / "keys" / "data.key"
    seal = str(RELEASE / "examples" / "seal_file")
    core = str(RELEASE / "examples" / "core_put")
    for mib in sizes:
        src = shm / f"in-{mib}.pdf"
        make_input(src, mib * MIB)
        got = {k: [] for k in ["put", "get", "seal", "open"]}
        for _ in range(rounds):
            _, m, ids = timed([core, "put", str(config), str(src)], stdout=subprocess.PIPE)
            got["put"].append(m / 1024)
            tenant, doc = ids.split()
            _, m, _ = timed([core, "get", str(config), tenant, doc], stdout=subprocess.PIPE)
            got["get"].append(m / 1024)
            _, m, _ = timed([seal, "seal", str(key), str(src), str(shm / "s.vault")])
            got["seal"].append(m / 1024)
            _, m, _ = timed([seal, "open", str(key), str(shm / "s.vault"), "/dev/null"])
            got["open"].append(m / 1024)
        for k, v in got.items():
            rows.add(f"rss.{k}.{mib}", f"peak RSS, {k} {mib} MiB", "MiB", v)
        src.unlink()
        (shm / "s.vault").unlink()
    return rows


def cores(quick, work, rounds):
    """Parallel puts with the process on 1 core, then on 2 (taskset)."""
    rows = Rows("cores")
    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2 or not shutil.which("taskset"):
        log("  fewer than 2 cores: scaling rows skipped")
        return rows
    count, kib, writers = (8, 256, 4) if quick else (96, 4096, 8)
    config = new_vault(work, "cores-vault")
    core = str(RELEASE / "examples" / "core_put")
    one, two, ratio = [], [], []
    for _ in range(rounds):
        res = {}
        for cpus in ["0", "0,1"]:
            _, _, line = timed(["taskset", "-c", cpus, core, "parallel", str(config), str(count), str(kib), str(writers)], stdout=subprocess.PIPE)
            docs, mbs, workers = line.split()
            assert int(workers) == len(cpus.split(",")), line
            res[cpus] = float(mbs)
        one.append(res["0"])
        two.append(res["0,1"])
        ratio.append(res["0,1"] / res["0"])
    label = f"{count} puts of {kib // 1024 if kib >= 1024 else kib} {'MiB' if kib >= 1024 else 'KiB'}, {writers} concurrent writers, local files + SQLite"
    rows.add("cores.put.1", f"{label}, 1 core", "MB/s", one)
    rows.add("cores.put.2", f"{label}, 2 cores", "MB/s", two, baseline="cores.put.1", ratios=ratio)
    return rows


def wrk_ms(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", s)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def http(quick, work, rounds):
    rows = Rows("http")
    size_mib, secs = (4, 1) if quick else (1024, 10)
    runs = []
    for r in range(rounds):
        log(f"  benches/server.sh {size_mib} {secs} ({r + 1}/{rounds})")
        path = work / f"http-{r}.json"
        env = dict(os.environ, BENCH_JSON=str(path), BENCH_NO_BUILD="1", TMPDIR=str(work))
        subprocess.run(["bash", str(ROOT / "benches" / "server.sh"), str(size_mib), str(secs)], check=True, env=env, stdout=subprocess.DEVNULL)
        runs.append(json.loads(path.read_text()))
    b = runs[0]["bytes"]
    rate = lambda key, who: [b / x[key][who] / 1e6 for x in runs]
    for op, key in [("upload", "upload_s"), ("download", "download_s")]:
        rows.add(f"http.{op}.core", f"{size_mib} MiB {op}, vault core API (no HTTP)", "MB/s", rate(key, "core"))
        rows.add(f"http.{op}.plain", f"{size_mib} MiB {op}, bare axum file server (no crypto, DB, audit)", "MB/s", rate(key, "plain"))
        rows.add(f"http.{op}.vault", f"{size_mib} MiB {op}, vault serve (curl, loopback)", "MB/s", rate(key, "vault"),
                 baseline=f"http.{op}.core", ratios=[x[key]["core"] / x[key]["vault"] for x in runs])
        rows.add(f"http.{op}.vault_vs_plain", f"{size_mib} MiB {op}, vault serve (same runs)", "MB/s", rate(key, "vault"),
                 baseline=f"http.{op}.plain", ratios=[x[key]["plain"] / x[key]["vault"] for x in runs])
    rows.add("http.rss.idle", "vault serve peak RSS, idle", "MiB", [x["rss_kib"]["vault_idle"] / 1024 for x in runs])
    rows.add("http.rss.vault", f"vault serve peak RSS after the {size_mib} MiB round trip", "MiB", [x["rss_kib"]["vault"] / 1024 for x in runs])
    rows.add("http.rss.plain", "bare server peak RSS after the same", "MiB", [x["rss_kib"]["plain"] / 1024 for x in runs])
    conns = runs[0]["small"]["connections"]
    for who, label in [("plain", "bare axum file server"), ("vault", "vault serve")]:
        rps = [x["small"][who]["rps"] for x in runs]
        extra = {}
        if who == "vault":
            extra = dict(baseline="http.small.plain.rps", ratios=[x["small"]["vault"]["rps"] / x["small"]["plain"]["rps"] for x in runs])
        rows.add(f"http.small.{who}.rps", f"200 KiB uploads, {conns} connections, {secs} s: {label}", "docs/s", rps, **extra)
        rows.add(f"http.small.{who}.p50", f"200 KiB uploads, {label}: p50 latency", "ms", [wrk_ms(x["small"][who]["p50"]) for x in runs])
        rows.add(f"http.small.{who}.p99", f"200 KiB uploads, {label}: p99 latency", "ms", [wrk_ms(x["small"][who]["p99"]) for x in runs])
    bad = sum(x["small"]["vault"]["non2xx"] for x in runs)
    if bad:
        raise SystemExit(f"{bad} vault uploads under load were not 2xx")
    return rows


# ------------------------------------------------------------- the report


def index(benches):
    return {r["id"]: r for b in benches.values() for r in b["rows"]}


def fmt(v, unit):
    if v != v:  # NaN
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f} {unit}"
    if abs(v) >= 10:
        return f"{v:.1f} {unit}"
    return f"{v:.2f} {unit}" if abs(v) >= 0.1 else f"{v:.3f} {unit}"


def table(benches, bench, title):
    b = benches.get(bench)
    if not b:
        return f"_{title}: not run._\n"
    ids = index(benches)
    lines = ["| measurement | median | runs | ratio | baseline (same run) |", "|---|---:|---:|---:|---|"]
    for r in b["rows"]:
        ratio = f"{r['ratio']:.2f}×" if "ratio" in r else ""
        base = ids.get(r.get("baseline"), {}).get("name", r.get("baseline", ""))
        lines.append(f"| {r['name']} | {fmt(r['value'], r['unit'])} | {len(r['runs'])} | {ratio} | {base} |")
    return "\n".join(lines) + "\n"


def targets(benches):
    """(target, measured, met) for each target of issue #8."""
    ids = index(benches)
    res = []

    def get(i):
        return ids.get(i)

    for backend, default in [("aws-lc", True), ("rustcrypto", False)]:
        rs = [r for r in ids.values() if re.fullmatch(rf"format\.(seal|open)\.{backend}\.\d+", r["id"])]
        if rs:
            worst = min(rs, key=lambda r: r["ratio"])
            oop = [r for r in ids.values() if re.fullmatch(rf"format\.seal_vs_oop\.{backend}\.\d+", r["id"])]
            extra = f"; seal against raw out of place, as the format seals: worst {min(r['ratio'] for r in oop):.2f}×" if oop else ""
            res.append((f"format seal/open ≥ 0.9× raw AES-256-GCM, {backend}{' (default)' if default else ''}",
                        f"worst {worst['ratio']:.2f}× ({worst['name']}); best {max(r['ratio'] for r in rs):.2f}×{extra}",
                        worst["ratio"] >= 0.9))
    rs = [r for r in ids.values() if r["id"].startswith("format.seal_vs_openssl.")]
    if rs:
        worst = min(rs, key=lambda r: r["ratio"])
        res.append(("default backend ≥ `openssl speed -evp aes-256-gcm` (64 KiB)", f"worst {worst['ratio']:.2f}× ({worst['name']})", worst["ratio"] >= 1.0))
    for tool, need in [("age", 3.0), ("gpg", 15.0)]:
        r = get(f"tools.encrypt.vault_vs_{tool}")
        if r:
            one = get(f"tools.encrypt.vault_1t_vs_{tool}")
            extra = f" (on one thread: {one['ratio']:.2f}×" if one else " ("
            lib, them = get("format.writer.aws-lc.1024"), get(f"tools.encrypt.{tool}")
            if lib and them:
                extra += f"; the library's SealingWriter from a 1 GiB buffer: {lib['value'] / them['value']:.2f}×"
            extra += ")"
            res.append((f"encrypt 1 GiB from memory to a discarding sink ≥ {need:g}× {tool}", f"{r['ratio']:.2f}×{extra}", r["ratio"] >= need))
    r = get("tools.vault_put")
    if r:
        res.append(("vault put of 1 GiB to local files ≥ 0.9× cat to the same disk", f"{r['ratio']:.2f}×", r["ratio"] >= 0.9))
    r = get("http.upload.vault")
    if r:
        res.append(("HTTP upload ≥ 0.6× the core put", f"{r['ratio']:.2f}×", r["ratio"] >= 0.6))
    # Independent of size: from 128 MiB to 1 GiB (8× the bytes) peak RSS
    # grows by at most a quarter. Below about 100 MiB an upload does not
    # fill its multipart buffers (3 × 8 MiB), so 16 MiB is shown, not judged.
    sizes = {k: [get(f"rss.{k}.{n}") for n in (16, 128, 1024)] for k in ["put", "get", "seal", "open"]}
    if all(all(sizes[k]) for k in sizes):
        growth = {k: v[2]["value"] / v[1]["value"] for k, v in sizes.items()}
        res.append(("peak RSS independent of file size (1 GiB ÷ 128 MiB ≤ 1.25)",
                    ", ".join(f"{k} " + "→".join(f"{r['value']:.0f}" for r in v) for k, v in sizes.items())
                    + " MiB (files of 16 MiB→128 MiB→1 GiB)",
                    max(growth.values()) <= 1.25))
    r = get("storage.range.big_end")
    if r:
        res.append(("1-byte range at the end of 1 GiB within 2× of the same on 1 MiB (through the vault)", f"{r['ratio']:.2f}×", r["ratio"] <= 2.0))
    r = get("format.range_end.big")
    if r:
        res.append(("the same, the format alone in memory", f"{r['ratio']:.2f}×", r["ratio"] <= 2.0))
    return res


def svg_lines(title, xlabel, ylabel, series, logx=True, ymin0=True):
    """A small self-contained line chart. series: [(label, [(x, y)])]."""
    import math

    w, h, l, r, t, b = 720, 400, 70, 220, 40, 50
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    if not xs:
        return None
    fx = (lambda x: math.log2(x)) if logx else (lambda x: x)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = (0 if ymin0 else min(ys)), max(ys) * 1.1
    x1 = x1 if x1 > x0 else x0 + 1
    px = lambda x: l + (fx(x) - x0) / (x1 - x0) * (w - l - r)
    py = lambda y: h - b - (y - y0) / ((y1 - y0) or 1) * (h - t - b)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
         f'<rect width="{w}" height="{h}" fill="white"/>',
         f'<text x="{w / 2 - r / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
         f'<line x1="{l}" y1="{h - b}" x2="{w - r}" y2="{h - b}" stroke="black"/>',
         f'<line x1="{l}" y1="{t}" x2="{l}" y2="{h - b}" stroke="black"/>',
         f'<text x="{(l + w - r) / 2}" y="{h - 12}" text-anchor="middle">{xlabel}</text>',
         f'<text x="16" y="{(t + h - b) / 2}" text-anchor="middle" transform="rotate(-90 16 {(t + h - b) / 2})">{ylabel}</text>']
    for x in sorted(set(xs)):
        o.append(f'<text x="{px(x):.1f}" y="{h - b + 16}" text-anchor="middle">{x:g}</text>')
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        o.append(f'<line x1="{l}" y1="{py(y):.1f}" x2="{w - r}" y2="{py(y):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{l - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
    for i, (label, pts) in enumerate(series):
        c = colors[i % len(colors)]
        pts = sorted(pts)
        o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)))
        for x, y in pts:
            o.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        ly = t + 10 + i * 18
        o.append(f'<line x1="{w - r + 12}" y1="{ly}" x2="{w - r + 32}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{w - r + 38}" y="{ly + 4}">{label}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def plots(benches, outdir):
    ids = index(benches)
    made = []
    series = []
    for backend in ["aws-lc", "rustcrypto"]:
        for kind, label in [("raw", "raw AES-GCM"), ("seal", "format seal"), ("open", "format open")]:
            pts = [(int(r["id"].rsplit(".", 1)[1]), r["value"]) for r in ids.values()
                   if re.fullmatch(rf"format\.{kind}\.{backend}\.\d+", r["id"])]
            if pts:
                series.append((f"{label}, {backend}", pts))
    o = ids.get("openssl.speed.64k")
    if o and series:
        xs = sorted({x for _, p in series for x, _ in p})
        series.append(("openssl speed 64 KiB", [(x, o["value"]) for x in xs]))
    svg = svg_lines("Stream format throughput by size (1 thread)", "plaintext size (MiB, log scale)", "MB/s", series)
    if svg:
        (outdir / "throughput-by-size.svg").write_text(svg)
        made.append(("throughput-by-size.svg", "Stream format throughput by size"))
    series = []
    for kind, label in [("put", "vault put (whole vault)"), ("get", "vault get (whole vault)"), ("seal", "format seal, file to file"), ("open", "format open, file to file")]:
        pts = [(int(r["id"].rsplit(".", 1)[1]), r["value"]) for r in ids.values() if re.fullmatch(rf"rss\.{kind}\.\d+", r["id"])]
        if pts:
            series.append((label, pts))
    svg = svg_lines("Peak RSS by file size", "file size (MiB, log scale)", "peak RSS (MiB)", series)
    if svg:
        (outdir / "rss-by-size.svg").write_text(svg)
        made.append(("rss-by-size.svg", "Peak RSS by file size"))
    return made


def report(meta, benches, md_path, svg_dir, cmdline, quick):
    svg_dir.mkdir(parents=True, exist_ok=True)
    made = plots(benches, svg_dir)
    rel = os.path.relpath(svg_dir, md_path.parent)
    m = meta
    v = m["versions"]
    L = []
    L.append("# Benchmarks\n")
    L.append(f"<!-- Generated by `{cmdline}`. Do not edit: rerun the command. -->\n")
    L.append(f"Generated by **`{cmdline}`** on {m['date']} (git `{m['git_commit']}`{', with uncommitted changes' if m['git_dirty'] else ''}), "
             f"in {m['elapsed_min']:.0f} minutes. Do not edit this file by hand: rerun the command.\n")
    if m.get("rewritten"):
        L.append(f"The text around the figures (the analysis from `benches/analysis.md`) was rendered again from the same run's results "
                 f"on {m['rewritten']} by `bash benches/run.sh --report-only`; every figure is from the run above.\n")
    if quick:
        L.append("**Quick mode: tiny inputs, one run each. These figures mean nothing; the run only proves the code works.**\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores as seen by the OS; flags: `{' '.join(m['cpu_flags'])}` "
             f"(AES-NI {'yes' if 'aes' in m['cpu_flags'] else 'no'}, VAES {'yes' if 'vaes' in m['cpu_flags'] else 'no'}, SHA-NI {'yes' if 'sha_ni' in m['cpu_flags'] else 'no'})")
    L.append(f"- memory {m['memory_gib']} GiB; kernel {m['kernel']}; file system of `target/`: {m['filesystem']}")
    L.append(f"- {v['rustc']}; {v['openssl']}; age {v['age']}; {v['gpg']}; {v['wrk']}; PostgreSQL {v['postgresql']}; s3s-fs {v['s3s-fs']}")
    L.append("- crates: " + ", ".join(f"{k} {x}" for k, x in v["crates"].items()))
    L.append("- a shared virtual machine: neighbours' load moves figures by 10–20% between runs; "
             "read the ratios, which are taken within one run, rather than the absolute figures.\n")
    L.append("## How to read this\n")
    L.append("Every value is the median of the runs counted in the *runs* column (rounds interleaved with their baseline). "
             "A ratio is the median of the per-run ratios against the baseline row named beside it, measured in the same run: "
             "for a rate (MB/s, docs/s) above 1× means faster than the baseline; for a time (µs, ms, s) above 1× means slower. "
             "Every row with all its runs is in `benches/results/latest.json`.\n")
    L.append("## Targets\n")
    L.append("| target | measured | met |\n|---|---|---|")
    for name, measured, ok in targets(benches):
        L.append(f"| {name} | {measured} | {'yes' if ok else '**no**: see analysis'} |")
    L.append("")
    analysis = ROOT / "benches" / "analysis.md"
    for file, title in made:
        L.append(f"![{title}]({rel}/{file})\n")
    sections = [
        ("format", "1–2. The physical limit and the stream format",
         "`vault-core/benches/format.rs`. `openssl speed` runs single-threaded. Raw AES-256-GCM is one in-place seal per 64 KiB with each backend, "
         "the most a format could reach; for aws-lc the same seal also runs out of place, from the plaintext into a separate buffer, "
         "which is how the format seals. The format's seal and open are whole-buffer, out of place, one thread; the streaming rows are "
         "the `std::io` adapters into a discarding sink."),
        ("tools", "3. The tools a user would use instead (1 GiB file, wall time and peak RSS)",
         "`benches/run.py`. The input is on tmpfs (`/dev/shm`), so every tool reads from memory; output goes to `/dev/null` "
         "(decryption reads a ciphertext on tmpfs made beforehand). Each command is a fresh process, start-up included; "
         "peak RSS is GNU time's `%M`; the same 1 GiB of random bytes behind a PDF header. `vault put/get` is the whole vault "
         "(SQLite, local files with fsync, audit records, SHA-256 of the plaintext) against `cat` of the same file to the same disk followed by `sync`."),
        ("rss", "Peak RSS by file size", "Each a fresh process; peak RSS is GNU time's `%M` (the process's high-water mark)."),
        ("storage", "4 and 6. The library on local files and on S3, and ranged reads",
         "`vault-core/benches/storage.rs`. The S3 rows use s3s-fs on loopback (a real S3 server writing to the same disk). "
         "Ranged reads go through the whole vault: metadata lookup, key unwrap, a durable audit record, one segment fetched and opened."),
        ("http", "5. The HTTP service", "`benches/server.sh`, run three times: curl streams 1 GiB up and down over loopback; wrk drives 200 KiB uploads."),
        ("lifecycle", "7. Purge, erasure and rotation at 100,000 items", "`vault-core/benches/lifecycle.rs`: local blob files; a fresh database per measurement."),
        ("cores", "8. Scaling with cores", "`examples/core_put parallel` under `taskset -c 0` and `taskset -c 0,1`; see also the format's 1- and 2-thread rows above."),
        ("ffi", "9. The C ABI", "`vault-ffi/benches/overhead.rs`: the same operations through the C ABI and the Rust API on one vault, alternating which goes first."),
    ]
    for bench, title, how in sections:
        L.append(f"## {title}\n")
        L.append(how + "\n")
        L.append(table(benches, bench, title))
    L.append("## Analysis of misses and gaps\n")
    L.append(analysis.read_text() if analysis.exists() else "_benches/analysis.md is missing._\n")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(L).rstrip() + "\n")


def write_outputs(meta, results, outroot, cmdline, quick, partial):
    """The report, the JSON and the plots, from the results directory."""
    benches = {}
    for f in sorted(results.glob("*.json")):
        if f.name == "machine.json":
            continue
        d = json.loads(f.read_text())
        benches[d["bench"]] = d
    if quick or partial:
        md, js, svg = outroot / "BENCHMARKS.md", outroot / "latest.json", outroot / "bench"
    else:
        md, js, svg = ROOT / "docs" / "BENCHMARKS.md", ROOT / "benches" / "results" / "latest.json", ROOT / "docs" / "bench"
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(json.dumps({"command": cmdline, "machine": meta, "benches": benches,
                              "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(benches)]}, indent=2) + "\n")
    report(meta, benches, md, svg, cmdline, quick)
    log(f"wrote {md.relative_to(ROOT)}, {js.relative_to(ROOT)} and {svg.relative_to(ROOT)}/")
    return benches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny inputs, one run, outputs under target/vault-bench/quick")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report from the last full run's results (after editing benches/analysis.md)")
    ap.add_argument("--only", help="comma-separated subset of rust,tools,rss,cores,http; writes under target/vault-bench/partial/")
    args = ap.parse_args()
    started = time.time()
    cmdline = "bash benches/run.sh" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    quick = args.quick
    rounds = 1 if quick else 3
    # A partial run (--only) never replaces the committed report.
    partial = bool(args.only)
    outroot = TARGET / "vault-bench" / ("quick" if quick else "partial" if partial else "full")
    results = outroot / "results"
    if args.report_only:
        if not (results / "machine.json").exists():
            raise SystemExit(f"no finished run under {results.relative_to(ROOT)}: run the benchmarks first")
        meta = json.loads((results / "machine.json").read_text())
        meta["rewritten"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return write_outputs(meta, results, outroot, cmdline, quick, partial)
    if results.exists():
        shutil.rmtree(results)
    results.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="work.", dir=TARGET / "vault-bench"))
    shm_base = Path("/dev/shm") if Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 6 << 30 else work
    shm = Path(tempfile.mkdtemp(prefix="vault-bench.", dir=shm_base))
    only = set(args.only.split(",")) if args.only else {"rust", "tools", "rss", "cores", "http"}
    try:
        log("build (release)")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vault-server", "--bin", "vault",
                        "--example", "core_put", "--example", "seal_file", "--example", "plain_upload"], check=True, cwd=ROOT)
        meta = machine()
        log(f"machine: {meta['cpu']}; {meta['cores']} cores; {' '.join(meta['cpu_flags'])}")
        if "rust" in only:
            cargo_benches(quick, results)
        for name, fn in [("tools", lambda: tools(quick, work, shm, rounds)),
                         ("rss", lambda: rss_by_size(quick, work, shm, rounds)),
                         ("cores", lambda: cores(quick, work, rounds)),
                         ("http", lambda: http(quick, work, rounds))]:
            if name in only:
                log(name)
                rows = fn()
                (results / f"{name}.json").write_text(json.dumps(rows.doc(quick), indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    meta["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta["elapsed_min"] = (time.time() - started) / 60
    (results / "machine.json").write_text(json.dumps(meta, indent=2))
    benches = write_outputs(meta, results, outroot, cmdline, quick, partial)
    if quick:
        # Every part must have produced rows, or the code has rotted.
        missing = {"format", "storage", "lifecycle", "ffi", "tools", "rss", "cores", "http"} - set(benches)
        if missing and not args.only:
            raise SystemExit(f"benchmarks produced no results: {sorted(missing)}")


if __name__ == "__main__":
    main()
