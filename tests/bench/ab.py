#!/usr/bin/env python3
"""Interleaved A/B comparison of wxflow builds or settings on one input.

Run through `just ab` (or `python3 tests/bench/ab.py`). Each variant is `label=BINARY [ARGS...]`:
the binary runs `run --source INPUT --out DIR --force --progress off --log-level warn --workers 2`
followed by ARGS (e.g. `--set pipeline.chunk_size=2MiB`). Rounds alternate the variants (A, B, A,
B, ...) and warm the page cache before every run, so that a host whose speed drifts (this VM's
did by 20% within an hour) slows every variant alike. Prints, per variant, the median and best
wall time, the median CPU time (user + system of the child) and the median and highest peak RSS.

Example, a build against the one before it:

    cp target/release/wxflow /tmp/wxflow-before   # then change the code and rebuild
    just ab 12 before=/tmp/wxflow-before after=target/release/wxflow
"""

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same input generation and page-cache warming as `just bench`)


def parse_variant(text):
    label, sep, command = text.partition("=")
    words = shlex.split(command)
    if not sep or not label or not words:
        raise SystemExit(f"a variant is label=BINARY [ARGS...], not {text!r}")
    return label, words[0], words[1:]


def run_once(binary, args, source, out):
    """One run in a fresh wrapper process, so that its peak RSS and CPU are this run's own."""
    cmd = [binary, "run", "--source", str(source), "--out", str(out), "--force", "--progress", "off",
           "--log-level", "warn", "--workers", "2", *args]
    return bench.measured(cmd, quiet=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="runs of each variant (default 8)")
    parser.add_argument("--size", default="1GiB", choices=sorted(bench.SIZES),
                        help="generated input, as in `just bench` (default 1GiB)")
    parser.add_argument("--input", type=Path, help="an existing CSV instead of a generated one")
    parser.add_argument("variants", nargs="+", help="label=BINARY [ARGS...]")
    opts = parser.parse_args()
    variants = [parse_variant(v) for v in opts.variants]
    if len({label for label, _, _ in variants}) != len(variants):
        raise SystemExit("variant labels must differ")
    source = opts.input or bench.generate(opts.size)
    results = {label: [] for label, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="wxflow-ab-") as work:
        for round_no in range(opts.rounds):
            for label, binary, args in variants:
                bench.warm(source)
                results[label].append(run_once(binary, args, source, Path(work) / label))
            bench.say(f"round {round_no + 1} of {opts.rounds} done")
    bench.say(f"\n{source} ({source.stat().st_size:,} bytes), {opts.rounds} interleaved rounds:\n")
    bench.say("| variant | wall median s | wall best s | CPU median s | peak RSS median / max MiB |")
    bench.say("|---|---|---|---|---|")
    for label, runs in results.items():
        wall = [r["wall"] for r in runs]
        rss = [r["rss_kib"] / 1024 for r in runs]
        bench.say(f"| {label} | {statistics.median(wall):.3f} | {min(wall):.3f} | "
                  f"{statistics.median(r['cpu'] for r in runs):.3f} | {statistics.median(rss):.1f} / {max(rss):.1f} |")


if __name__ == "__main__":
    main()
