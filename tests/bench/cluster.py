#!/usr/bin/env python3
"""Cluster scaling on a capped link: one wxflow node against N, the same HTTP source.

The source is served by the bench's HTTP server (tests/bench/bench.py), each connection paced at
--rate MB/s as a server or link that caps connections would. A cluster of one node and then a
cluster of --nodes nodes (release daemons on loopback, sharing the NATS server at --nats with
JetStream) each run the job; the time is from submission to `succeeded`, and the reports must be
byte-identical to `wxflow run`'s. Needs `cargo build --release` and a running `nats-server -js`.

    python3 tests/bench/cluster.py --size 200MiB --rate 40 --nodes 3
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import bench  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
WXFLOW = ROOT / "target/release/wxflow"
REPORTS = ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"]


def start(work, cluster, node, nats, range_bytes):
    d = work / cluster / node
    d.mkdir(parents=True)
    (d / "node.toml").write_text(
        f'[daemon]\nlisten = "127.0.0.1:0"\nstate_dir = "{d}/state"\noutput_root = "{d}/out"\n'
        f'[cluster]\nnats_url = "{nats}"\nnode_id = "{node}"\nname = "{cluster}"\nrange_bytes = "{range_bytes}"\n'
    )
    log = open(d / "log", "w")
    p = subprocess.Popen([WXFLOW, "daemon", "--config", d / "node.toml"], stdout=log, stderr=log)
    for _ in range(600):
        if (d / "state/daemon.addr").exists():
            return p, (d / "state/daemon.addr").read_text().strip(), d
        time.sleep(0.05)
    sys.exit(f"node {node} did not start: {(d / 'log').read_text()}")


def job(addr, url, output):
    started = time.perf_counter()
    body = json.dumps({"source": url, "output": output}).encode()
    req = urllib.request.Request(f"http://{addr}/v1/jobs", data=body, headers={"content-type": "application/json"})
    jid = json.load(urllib.request.urlopen(req))["id"]
    while True:
        state = json.load(urllib.request.urlopen(f"http://{addr}/v1/jobs/{jid}"))["state"]
        if state in ("succeeded", "failed", "cancelled"):
            return time.perf_counter() - started, state
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="200MiB")
    ap.add_argument("--rate", type=float, default=40, help="MB/s each connection is capped at")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--range-bytes", default="16MiB")
    ap.add_argument("--nats", default=os.environ.get("WXFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222"))
    a = ap.parse_args()
    if not WXFLOW.exists():
        sys.exit("build first: cargo build --release")
    work = pathlib.Path(tempfile.mkdtemp(prefix="wxflow-cluster-bench-"))
    try:
        subprocess.run([WXFLOW, "gen", "--size", a.size, "--seed", "5", "--out", work / "data.csv"], check=True,
                       capture_output=True)
        size = (work / "data.csv").stat().st_size
        server = bench.serve(work, rate=a.rate * 1e6)
        server.handle_error = lambda *args: None  # a client that hangs up is not news
        url = f"http://127.0.0.1:{server.server_address[1]}/data.csv"
        subprocess.run([WXFLOW, "run", "--source", url, "--out", work / "ref", "--progress", "off"], check=True,
                       capture_output=True)
        times = {}
        for n in sorted({1, a.nodes}):
            cluster = f"bench{n}n{os.getpid()}"
            nodes = [start(work, cluster, f"n{i}", a.nats, a.range_bytes) for i in range(n)]
            try:
                secs, state = job(nodes[0][1], url, "out")
            finally:
                for p, _, _ in nodes:
                    p.terminate()
                for p, _, _ in nodes:
                    p.wait()
            out = nodes[0][2] / "out/out"
            same = state == "succeeded" and all(
                (work / "ref" / f).read_bytes() == (out / f).read_bytes() for f in REPORTS)
            times[n] = secs
            print(f"{n} node(s): {secs:.2f} s, {size / secs / 1e6:.0f} MB/s, {state}, "
                  f"reports identical to wxflow run: {same}", flush=True)
            if not same:
                sys.exit(1)
        print(f"{a.nodes} nodes / 1 node: {times[1] / times[a.nodes]:.2f}x "
              f"({a.size}, {a.rate:g} MB/s per connection, ranges of {a.range_bytes})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
