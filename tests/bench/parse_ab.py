#!/usr/bin/env python3
"""Paired comparison of two parser builds (`parse_bench` binaries), for a host whose speed drifts.

Run through `just parse-ab` (or `python3 tests/bench/parse_ab.py`). On the VMs this project is
measured on, the same pure-ALU loop took 1.07 to 1.45 s from one run to the next, so two parser
builds timed a minute apart differ by more than most levers. Here the two run in turn, many times,
each `parse_bench KERNEL FILE 3` (best of three passes over the file), the order swapped every
pair; what is reported is the median of the per-pair ratios B / A (with its quartiles), which a
drift slower than one pair (about a second) cancels out of, and each build's best and median speed.

Each side is `BINARY` or `BINARY:FILE` (the same build on two inputs, e.g. to see what a kind of
line costs). Example, a parser change against the build before it:

    cargo build --release --example parse_bench && cp target/release/examples/parse_bench /tmp/pb-before
    # change the parser, rebuild
    head -c 67108864 target/bench-data/wx-1GiB.csv > /tmp/wx-64.csv
    just parse-ab 20 /tmp/pb-before target/release/examples/parse_bench /tmp/wx-64.csv
"""

import argparse
import statistics
import subprocess


def side(text, default_input):
    binary, sep, path = text.partition(":")
    return binary, (path if sep else default_input)


def speed(binary, kernel, path):
    """MiB/s of the best of three passes, as `parse_bench` prints it."""
    out = subprocess.run([binary, kernel, path, "3"], capture_output=True, text=True, check=True).stdout
    return float(out.split()[-2])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="pairs to run (default 20)")
    parser.add_argument("--kernel", default="avx2", help="parse_bench's first argument (default avx2)")
    parser.add_argument("a", help="BINARY or BINARY:FILE")
    parser.add_argument("b", help="BINARY or BINARY:FILE")
    parser.add_argument("input", help="the CSV both sides parse unless they name their own")
    opts = parser.parse_args()
    a, b = side(opts.a, opts.input), side(opts.b, opts.input)
    speeds_a, speeds_b, ratios = [], [], []
    for pair in range(opts.rounds):
        if pair % 2:
            y = speed(b[0], opts.kernel, b[1])
            x = speed(a[0], opts.kernel, a[1])
        else:
            x = speed(a[0], opts.kernel, a[1])
            y = speed(b[0], opts.kernel, b[1])
        speeds_a.append(x)
        speeds_b.append(y)
        ratios.append(y / x)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"A {opts.a}: best {max(speeds_a):.0f} MiB/s, median {statistics.median(speeds_a):.0f}")
    print(f"B {opts.b}: best {max(speeds_b):.0f} MiB/s, median {statistics.median(speeds_b):.0f}")
    print(f"B / A per pair: median {statistics.median(ratios):.3f} (quartiles {q1:.3f}, {q3:.3f}; {opts.rounds} pairs)")


if __name__ == "__main__":
    main()
