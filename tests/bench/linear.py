#!/usr/bin/env python3
"""Is wxflow's time linear in the input's size? Sizes interleaved, for a host whose speed drifts.

Run through `just linear` (or `python3 tests/bench/linear.py`). `just bench` judges linearity from
the best of three runs of each size taken minutes apart; on the VMs this project is measured on the
host's speed moves by more than 25% within such a stretch (the same 1 GiB run took 0.38 to 0.58 s
within two minutes), so one slow minute during one size's runs fails that check. Here each
round runs every size once, in turn (the order reversed every other round), and takes that round's
marginal seconds per GiB between consecutive sizes; a drift slower than one round (a few seconds)
cancels out of each round's ratio. Prints every round and the median ratio of each later slope to
the first with its quartiles: 1.0 is linear, and the issue's goal allows 25% either way.

Example: `just linear 12` (100 MiB, 1 GiB and 4 GiB, generated as `just bench` does).
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same inputs, page-cache warming and measurement as `just bench`)


def run_once(binary, source, out):
    """One warmed, measured run, as `just bench` times wxflow."""
    bench.warm(source)
    cmd = [binary, "run", "--source", str(source), "--out", str(out), "--force", "--progress", "off",
           "--log-level", "warn", "--workers", "2"]
    return bench.measured(cmd, quiet=True)["wall"]


def slopes(points):
    """Marginal seconds per GiB between consecutive (GiB, seconds) points, smallest size first."""
    points = sorted(points)
    return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(points, points[1:])]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12, help="runs of each size (default 12)")
    parser.add_argument("--sizes", default="100MiB,1GiB,4GiB", help="generated inputs (default 100MiB,1GiB,4GiB)")
    parser.add_argument("--binary", default=str(bench.WXFLOW), help="wxflow binary (default the release build)")
    opts = parser.parse_args()
    labels = [s.strip() for s in opts.sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in bench.SIZES]
    if len(labels) < 3 or unknown:
        raise SystemExit(f"--sizes takes at least three of {', '.join(sorted(bench.SIZES))}; got {opts.sizes!r}")
    inputs = [(label, bench.generate(label)) for label in labels]
    per_round = []
    with tempfile.TemporaryDirectory(prefix="wxflow-linear-") as work:
        for round_no in range(opts.rounds):
            order = inputs if round_no % 2 == 0 else inputs[::-1]
            walls = {label: run_once(opts.binary, path, Path(work) / "out") for label, path in order}
            points = [(path.stat().st_size / (1 << 30), walls[label]) for label, path in inputs]
            s = slopes(points)
            per_round.append(s)
            shown = ", ".join(f"{label} {walls[label]:.3f} s" for label, _ in inputs)
            print(f"round {round_no + 1}: {shown} | s per GiB {', '.join(f'{x:.3f}' for x in s)}", flush=True)
    print()
    print(f"{opts.rounds} rounds, sizes {', '.join(labels)} interleaved:")
    first = [s[0] for s in per_round]
    print(f"- marginal s per GiB, median: {', '.join(f'{statistics.median(col):.3f}' for col in zip(*per_round))}")
    for i in range(1, len(per_round[0])):
        ratios = [s[i] / s[0] for s in per_round if s[0] > 0]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        verdict = "linear" if 0.8 <= statistics.median(ratios) <= 1.25 else "NOT linear"
        print(f"- slope {i + 1} / slope 1 per round: median {statistics.median(ratios):.3f} "
              f"(quartiles {q[0]:.3f}, {q[2]:.3f}; {len(ratios)} rounds): {verdict}")
    if min(first) <= 0:
        print("- note: a round's first slope was not positive (the smallest input is too small to time)")


if __name__ == "__main__":
    main()
