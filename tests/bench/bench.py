#!/usr/bin/env python3
"""wxflow benchmark: wall time, throughput and peak memory, against DuckDB and curl.

Run through `just bench` (or `python3 tests/bench/bench.py`). Steps, each printed with its exact
command:
  1. build wxflow in release mode;
  2. generate inputs with `wxflow gen --size ...` (cached under target/bench-data);
  3. time `wxflow run` and `wc -l` on each input from the local file (page cache warmed before
     every timed run), measuring peak RSS of the child;
  4. time the DuckDB baseline (tests/bench/duckdb_baseline.py, in a local virtualenv) on the same
     file with the same thread count, and check that both give identical answers (steps 3 and 4
     run in alternating rounds, best of each tool kept);
  5. serve the largest file from a local HTTP server and time `curl -o /dev/null` against
     `wxflow run --source http://...`.
Prints Markdown tables for BENCHMARKS.md and, at the end, the speed goals of issue 10 with the
measured value of each and whether it is met.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "target" / "bench-data"
WXFLOW = ROOT / "target" / "release" / "wxflow"
SIZES = {"100MiB": 100 << 20, "1GiB": 1 << 30, "4GiB": 4 << 30}


def say(*parts):
    print(*parts, flush=True)


def sh(cmd, **kw):
    say("$", " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def measured(cmd, stdout=subprocess.DEVNULL, quiet=False):
    """Runs cmd in a fresh wrapper process so ru_maxrss (and the CPU time) are this command's own;
    returns wall seconds, CPU seconds (user + system) and peak RSS in KiB."""
    wrapper = (
        "import resource,subprocess,sys,time,json;"
        "t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
        "w=time.perf_counter()-t;u=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps({'rc':r.returncode,'err':r.stderr.decode(errors='replace')[-2000:],'wall':w,"
        "'cpu':u.ru_utime+u.ru_stime,'rss_kib':u.ru_maxrss}))"
    )
    if not quiet:
        say("$", " ".join(str(c) for c in cmd))
    out = subprocess.run([sys.executable, "-c", wrapper, *map(str, cmd)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"command failed with exit code {result['rc']}: {cmd}\n{result['err']}")
    return result


def warm(path):
    """Reads the file once so that the timed run finds it in the page cache. This VM's page cache
    loses part of a file within seconds even with most memory free (the balloon driver), so a run
    right after another one could still read from disk; every timed local run is preceded by this."""
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def generate(label):
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"wx-{label}.csv"
    if not path.exists():
        tmp = path.with_suffix(".partial")
        sh([WXFLOW, "gen", "--start", "1990-01-01", "--size", label, "--seed", "11", "--out", tmp])
        tmp.rename(path)
    return path


def wxflow_run(source, out, workers, extra=()):
    if not str(source).startswith("http"):
        warm(source)
    cmd = [WXFLOW, "run", "--source", source, "--out", out, "--force", "--progress", "off",
           "--log-level", "warn", "--workers", str(workers), *extra]
    return measured(cmd)


def duckdb_python():
    script = ROOT / "tests" / "bench" / "venv.sh"
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if r.returncode != 0:
        say(f"NOTICE: DuckDB baseline skipped: {r.stderr.strip()}")
        return None
    return r.stdout.strip().splitlines()[-1]


def wc_run(path):
    warm(path)
    return measured(["wc", "-l", path])


def duckdb_run(python, source, out, threads):
    warm(source)
    cmd = [python, ROOT / "tests" / "bench" / "duckdb_baseline.py", source, "--threads", str(threads), "--out", out]
    return measured(cmd)


def same_answers(wx_out, db_out):
    """Compares wxflow's reports with DuckDB's: hottest JSON, window timestamps, forecast lines."""
    summary = json.loads((wx_out / "summary.json").read_text())
    hottest = json.loads((db_out / "hottest.json").read_text())
    mine = {k: summary["hottest"][k] for k in ("monthly", "most_common", "top")}
    theirs = {k: hottest[k] for k in ("monthly", "most_common", "top")}
    problems = []
    if mine != theirs:
        problems.append("hottest differs")
    wx2 = [l[:16] for l in (wx_out / "task2.txt").read_text().splitlines()]
    db2 = [l[:16] for l in (db_out / "task2.txt").read_text().splitlines()]
    if wx2 != db2:
        problems.append(f"window differs ({len(wx2)} vs {len(db2)} lines)")
    if (wx_out / "task3.txt").read_text() != (db_out / "task3.txt").read_text():
        problems.append("forecast differs")
    return problems


class FileHandler(BaseHTTPRequestHandler):
    root = None
    rate = 0

    def do_GET(self):
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        first, last = 0, size - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            a, _, b = self.headers["Range"][6:].partition("-")
            first, last = int(a), min(int(b) if b else size - 1, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Content-Type", "text/csv")
        self.send_header("ETag", f'"{size}-{int(path.stat().st_mtime)}"')
        self.end_headers()
        with open(path, "rb") as f:
            self.wfile.flush()
            if not self.rate:
                self.connection.sendfile(f, offset=first, count=last - first + 1)
                return
            # Paced like a network link of `rate` bytes/s per connection: 64 KiB at a time, or a
            # hundredth of a second's worth on fast links (fewer calls than the server's core can make).
            start, sent, total = time.perf_counter(), 0, last - first + 1
            piece = max(64 << 10, int(self.rate / 100))
            while sent < total:
                n = self.connection.sendfile(f, offset=first + sent, count=min(piece, total - sent))
                if n == 0:
                    break
                sent += n
                ahead = sent / self.rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)

    def log_message(self, *args):
        pass


def serve(root, rate=0):
    FileHandler.root = root
    FileHandler.rate = rate
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def machine():
    """One line naming the machine, with the parser kernel its CPU gets: the VMs here share the
    model name "AMD EPYC" whether they have AVX-512 or only AVX2, and the parser's speed (so every
    goal) differs between the two."""
    cpu, flags = "unknown", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    kernel = ("AVX-512" if {"avx512f", "avx512bw"} <= flags else "AVX2" if {"avx2", "bmi1", "popcnt"} <= flags
              else "SSE2" if platform.machine() == "x86_64" else "scalar")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (f"{os.cpu_count()} cores ({cpu}; parser kernel {kernel}), {mem:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100MiB,1GiB", help="comma-separated: 100MiB,1GiB,4GiB")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wxflow parse workers and DuckDB threads")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best wall time is kept")
    ap.add_argument("--http-rate", type=float, default=1000, help="MB/s of the paced HTTP run (a fast network link)")
    ap.add_argument("--knobs", metavar="SIZE", help="also sweep chunk size, workers and in-flight on this input")
    ap.add_argument("--connections", metavar="SIZE", default="100MiB",
                    help="compare --connections 1 and 3 over a link capped per connection on this input ('' to skip)")
    ap.add_argument("--connection-rate", type=float, default=40, help="MB/s each connection is capped at")
    ap.add_argument("--checkpoint-cost", metavar="SIZE", default="1GiB",
                    help="compare default checkpointing with checkpoint.enabled=false on this input ('' to skip)")
    args = ap.parse_args()

    say(f"machine: {machine()}")
    sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    python = None if args.no_duckdb else duckdb_python()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="wxflow-bench-"))
    try:
        for label in args.sizes.split(","):
            path = generate(label)
            size = path.stat().st_size
            wx_out, db_out = work / f"wx-{label}", work / f"db-{label}"
            db_out.mkdir()
            # Rounds alternate the tools, so that a host whose speed drifts within minutes (the
            # VMs here did, by up to 20% in an hour) slows all three alike, not one of them.
            runs = {"wx": [], "wc": [], "db": []}
            for i in range(max(args.repeat, 3)):
                if i < args.repeat:
                    runs["wx"].append(wxflow_run(path, wx_out, args.threads))
                runs["wc"].append(wc_run(path))
                if python and i < args.repeat:
                    runs["db"].append(duckdb_run(python, path, db_out, args.threads))
            best = {tool: min(r, key=lambda m: m["wall"]) for tool, r in runs.items() if r}
            processed = json.loads((wx_out / "summary.json").read_text())["rows"]["processed"]
            row = {"input": label, "bytes": size, "rows": processed, **best}
            if python:
                row["same"] = same_answers(wx_out, db_out)
            rows.append(row)
            report_row(row)
        if not args.no_http and rows:
            http_row(rows[-1], args.threads, work, repeat=args.repeat)
            http_row(rows[-1], args.threads, work, rate=args.http_rate * 1e6, repeat=args.repeat)
        if args.knobs:
            knobs(args.knobs, args.threads, work)
        if args.connections:
            connections(args.connections, args.threads, work, args.connection_rate * 1e6)
        if args.checkpoint_cost:
            checkpoint_cost(args.checkpoint_cost, args.threads, work, max(args.repeat, 3))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table(rows)
    goals(rows, args.http_rate)


def goals(rows, http_rate):
    """The targets of issue 10 ("Speed II"), each with its measured value."""
    say("\n| goal (issue 10) | measured | met? |")
    say("|---|---|---|")
    verdict = lambda ok: "yes" if ok else "**no**"
    for r in rows:
        if r["input"] != "1GiB":
            continue
        wx = r["wx"]["wall"]
        if "db" in r:
            ratio = wx / r["db"]["wall"]
            say(f"| 1 GiB: wxflow ≤ 0.10 × DuckDB | {ratio:.2f} ({wx:.2f} s vs {r['db']['wall']:.2f} s) | {verdict(ratio <= 0.10)} |")
        ratio = wx / r["wc"]["wall"]
        say(f"| 1 GiB: wxflow ≤ 3 × `wc -l` | {ratio:.1f}× ({wx:.2f} s vs {r['wc']['wall']:.2f} s) | {verdict(ratio <= 3)} |")
    for r in rows:
        for h in r.get("http", []):
            share = h["curl"]["wall"] / h["wx"]["wall"]
            if h["label"] == "unpaced":
                say(f"| HTTP unpaced: ≥ 50% of curl | {share * 100:.0f}% ({r['input']}) | {verdict(share >= 0.5)} |")
            else:
                link = r["bytes"] / h["wx"]["wall"] / (http_rate * 1e6)
                say(f"| HTTP {h['label']}: ≥ 95% of the link | {link * 100:.0f}% | {verdict(link >= 0.95)} |")
    # Memory: the 1 GiB run's peak no higher than before the issue (BENCHMARKS.md: 34.5 MiB), and
    # the largest input's within 25% of it (what the bytes in flight and a few bytes per day give).
    by_size = sorted(rows, key=lambda r: r["bytes"])
    one = next((r for r in rows if r["input"] == "1GiB"), None)
    if one:
        rss = one["wx"]["rss_kib"] / 1024
        say(f"| 1 GiB: peak RSS no higher than before the issue (34.5 MiB) | {rss:.1f} MiB | {verdict(rss <= 34.5)} |")
        if by_size[-1]["bytes"] > one["bytes"]:
            big = by_size[-1]["wx"]["rss_kib"] / 1024
            say(f"| peak RSS flat: {by_size[-1]['input']} within 25% of 1 GiB's | {big:.1f} vs {rss:.1f} MiB "
                f"| {verdict(big <= 1.25 * rss)} |")
    # Linear = a constant cost per extra byte: the marginal seconds per GiB between consecutive
    # sizes agree within 25% (a fixed start-up cost of a few ms is not a departure from it).
    points = sorted((r["bytes"] / (1 << 30), r["wx"]["wall"]) for r in rows)
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:])]
    if slopes and min(slopes) > 0:
        shown = ", ".join(f"{s:.2f}" for s in slopes)
        spread = max(slopes) / min(slopes)
        say(f"| time linear in size (marginal s per GiB between sizes within 25%) | {shown} | {verdict(spread <= 1.25)} |")


def report_row(row):
    wx = row["wx"]
    mbs = row["bytes"] / wx["wall"] / 1e6
    line = (f"{row['input']}: wxflow {wx['wall']:.2f} s, {mbs:.0f} MB/s, {row['rows'] / wx['wall'] / 1e6:.2f} M rows/s, "
            f"peak RSS {wx['rss_kib'] / 1024:.1f} MiB | wc -l {row['wc']['wall']:.2f} s "
            f"(wxflow = {wx['wall'] / row['wc']['wall']:.1f}x)")
    if "db" in row:
        db = row["db"]
        line += (f" | DuckDB {db['wall']:.2f} s, peak RSS {db['rss_kib'] / 1024:.0f} MiB | wxflow/DuckDB = "
                 f"{wx['wall'] / db['wall']:.2f} | answers: {'identical' if not row['same'] else '; '.join(row['same'])}")
    say(line)


def http_row(row, threads, work, rate=0, repeat=1):
    """Times curl and wxflow fetching the same file from a local server (paced at `rate` B/s);
    best of `repeat` runs each (at least 2 unpaced): one paced run read 91% where three
    interleaved ones read 97-98%."""
    path = DATA / f"wx-{row['input']}.csv"
    server = serve(DATA, rate)
    url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    curls, wxs = [], []
    try:
        for _ in range(max(repeat, 1 if rate else 2)):  # curl and wxflow alternate, as above
            curls.append(measured(["curl", "-sS", "-o", "/dev/null", url]))
            wxs.append(wxflow_run(url, work / "http", threads))
        curl, wx = (min(runs, key=lambda r: r["wall"]) for runs in (curls, wxs))
    finally:
        server.shutdown()
    label = f"paced at {rate / 1e6:.0f} MB/s" if rate else "unpaced"
    row.setdefault("http", []).append({"label": label, "curl": curl, "wx": wx})
    say(f"HTTP {row['input']} {label}: curl {row['bytes'] / curl['wall'] / 1e6:.0f} MB/s, "
        f"wxflow {row['bytes'] / wx['wall'] / 1e6:.0f} MB/s ({curl['wall'] / wx['wall'] * 100:.0f}% of curl), "
        f"wxflow peak RSS {wx['rss_kib'] / 1024:.1f} MiB")


def connections(label, threads, work, rate):
    """Throughput over a link that caps each connection at `rate` B/s: one connection (and curl)
    against `--connections 3`, with identical results."""
    path = generate(label)
    server = serve(DATA, rate)
    url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    size = path.stat().st_size
    try:
        curl = measured(["curl", "-sS", "-o", "/dev/null", url])
        runs = {n: wxflow_run(url, work / f"conn-{n}", threads, ["--connections", str(n)]) for n in (1, 3)}
    finally:
        server.shutdown()
    same = all((work / "conn-1" / f).read_bytes() == (work / "conn-3" / f).read_bytes()
               for f in ("task1.txt", "task2.txt", "task3.txt", "rejects.csv"))
    say(f"\nConnections on {label}, each connection capped at {rate / 1e6:.0f} MB/s:")
    say("| download | wall s | MB/s | peak RSS MiB |")
    say("|---|---|---|---|")
    say(f"| curl (one connection) | {curl['wall']:.2f} | {size / curl['wall'] / 1e6:.0f} | - |")
    for n, r in runs.items():
        say(f"| wxflow --connections {n} | {r['wall']:.2f} | {size / r['wall'] / 1e6:.0f} | {r['rss_kib'] / 1024:.1f} |")
    say(f"speed-up 3 vs 1: {runs[1]['wall'] / runs[3]['wall']:.2f}x; identical outputs: {same}")


def knobs(label, threads, work):
    """Measures the effect of each pipeline knob alone on one input, the others at their defaults."""
    path = generate(label)
    size = path.stat().st_size
    say(f"\nKnobs on {label} (one at a time; defaults chunk 1MiB, workers {threads}, in-flight 8):")
    say("| knob | value | wall s | MB/s | peak RSS MiB |")
    say("|---|---|---|---|---|")
    sweeps = [("--chunk-size", ["16KiB", "64KiB", "256KiB", "1MiB", "4MiB", "16MiB"]),
              ("--workers", ["1", "2", "3", "4"]),
              ("--in-flight", ["1", "2", "4", "8", "32"])]
    for flag, values in sweeps:
        for value in values:
            extra = [flag, value]
            workers = int(value) if flag == "--workers" else threads
            extra = [] if flag == "--workers" else extra
            r = min((wxflow_run(path, work / "knob", workers, extra) for _ in range(2)), key=lambda r: r["wall"])
            say(f"| {flag} | {value} | {r['wall']:.2f} | {size / r['wall'] / 1e6:.0f} | {r['rss_kib'] / 1024:.1f} |")


def checkpoint_cost(label, threads, work, repeat):
    """Wall time and peak RSS with checkpoints at their defaults against checkpoint.enabled=false,
    runs alternated so that both see the same machine state; the best of each is kept."""
    path = generate(label)
    size = path.stat().st_size
    on, off = [], []
    for _ in range(repeat):
        on.append(wxflow_run(path, work / "cp-on", threads))
        off.append(wxflow_run(path, work / "cp-off", threads, ["--set", "checkpoint.enabled=false"]))
    best_on, best_off = min(on, key=lambda r: r["wall"]), min(off, key=lambda r: r["wall"])
    written = json.loads((work / "cp-on" / "summary.json").read_text())["checkpoints"]
    say(f"\nCheckpoint cost on {label} ({written} checkpoints written, best of {repeat}):")
    say("| checkpoints | wall s | MB/s | peak RSS MiB |")
    say("|---|---|---|---|")
    for name, r in (("default (every 64 chunks / 30 s)", best_on), ("disabled", best_off)):
        say(f"| {name} | {r['wall']:.2f} | {size / r['wall'] / 1e6:.0f} | {r['rss_kib'] / 1024:.1f} |")
    say(f"cost: {(best_on['wall'] / best_off['wall'] - 1) * 100:+.1f}% wall time, "
        f"{(best_on['rss_kib'] / best_off['rss_kib'] - 1) * 100:+.1f}% peak RSS")


def table(rows):
    say("\n| input | rows | wxflow s | MB/s | M rows/s | peak RSS MiB | `wc -l` s | ÷ `wc -l` | DuckDB s | DuckDB RSS MiB | wxflow ÷ DuckDB | answers |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        wx = r["wx"]
        db = r.get("db")
        say(f"| {r['input']} | {r['rows']:,} | {wx['wall']:.2f} | {r['bytes'] / wx['wall'] / 1e6:.0f} | "
            f"{r['rows'] / wx['wall'] / 1e6:.2f} | {wx['rss_kib'] / 1024:.1f} | "
            f"{r['wc']['wall']:.2f} | {wx['wall'] / r['wc']['wall']:.1f} | "
            + (f"{db['wall']:.2f} | {db['rss_kib'] / 1024:.0f} | {wx['wall'] / db['wall']:.2f} | "
               f"{'identical' if not r['same'] else '; '.join(r['same'])} |" if db else "– | – | – | – |"))
    for r in rows:
        for h in r.get("http", []):
            say(f"\nHTTP ({r['input']}, local server, {h['label']}): curl {r['bytes'] / h['curl']['wall'] / 1e6:.0f} MB/s, "
                f"wxflow {r['bytes'] / h['wx']['wall'] / 1e6:.0f} MB/s = "
                f"{h['curl']['wall'] / h['wx']['wall'] * 100:.0f}% of curl")


if __name__ == "__main__":
    main()
