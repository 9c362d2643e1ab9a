# wxflow tasks. `just --list` shows them.

# Run the job on the shipped sample (writes output/)
run *ARGS:
    cargo run --release -- run --force {{ARGS}}

# Run the whole test suite (the README's test command)
test:
    cargo test

# Formatting and lints, as CI runs them
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

# Generate synthetic station data, e.g. `just gen --size 100MiB --out /tmp/100m.csv`
gen *ARGS:
    cargo run --release -- gen {{ARGS}}

# Regenerate the shipped sample (tests/sample.rs checks it matches)
sample:
    cargo run --release -- gen --start 2006-05-31 --days 32 --blank-lines 10 --bad-rows 5 --seed 2006 --out tests/data/sample.csv

# What CI runs
ci:
    bash .ci/run

# Benchmark against DuckDB and curl (100MiB and 1GiB; `just bench --sizes 100MiB,1GiB,4GiB` for 4GiB)
bench *ARGS:
    python3 tests/bench/bench.py {{ARGS}}

# Interleaved A/B of wxflow builds or settings on the 1 GiB input, as in BENCHMARKS' lever tables:
# `just ab 12 before=/tmp/wxflow-before after=target/release/wxflow` (variants are label=BINARY
# [ARGS...]; tests/bench/ab.py says more)
ab ROUNDS *VARIANTS:
    cargo build --release --quiet
    python3 tests/bench/ab.py --rounds {{ROUNDS}} {{VARIANTS}}

# Paired A/B of two parser builds (`parse_bench` binaries) on one input, for a host whose speed
# drifts: `just parse-ab 20 /tmp/pb-before target/release/examples/parse_bench /tmp/wx-64.csv`
# (tests/bench/parse_ab.py says more)
parse-ab ROUNDS A B INPUT:
    python3 tests/bench/parse_ab.py --rounds {{ROUNDS}} {{A}} {{B}} {{INPUT}}

# Cluster scaling on a capped link: one node against three (needs `nats-server -js` on 127.0.0.1:4222)
bench-cluster *ARGS:
    cargo build --release
    python3 tests/bench/cluster.py {{ARGS}}

# Time linear in size? 100 MiB, 1 GiB and 4 GiB run in turn each round, so host drift cancels
linear ROUNDS="12":
    cargo build --release --quiet
    python3 tests/bench/linear.py --rounds {{ROUNDS}}

# Differential fuzzing of the fast parser against the reference: `just fuzz 10000000 7` (executions,
# seed). Runs the ignored `fuzz_differential` test in release mode, one shard per core; CI runs only
# the bounded property tests in tests/differential.rs.
fuzz EXECS="10000000" SEED="10":
    cargo test --release --test differential --no-run
    WXFLOW_FUZZ_EXECS=$(( {{EXECS}} / 2 )) WXFLOW_FUZZ_SEED={{SEED}} cargo test --release --test differential -- --ignored fuzz_differential --nocapture & pid=$!; \
    WXFLOW_FUZZ_EXECS=$(( {{EXECS}} - {{EXECS}} / 2 )) WXFLOW_FUZZ_SEED=$(( {{SEED}} + 1 )) cargo test --release --test differential -- --ignored fuzz_differential --nocapture; rc=$?; \
    wait $pid && exit $rc

# Coverage-guided differential fuzzing with cargo-fuzz (libFuzzer): `just fuzz-cargo 10000000`
# (executions, per job with `-jobs`; extra arguments go to libFuzzer, e.g. `-jobs=2 -workers=2`;
# BENCHMARKS.md also used `-s none --no-trace-compares` for speed). Needs the nightly
# toolchain and `cargo install cargo-fuzz --locked`; CI does not run it. The corpus starts from
# tests/data/fuzz-regressions (the committed, minimized inputs that tests/differential.rs replays);
# a crash is saved in fuzz/artifacts/differential/ and replays with
# `cargo +nightly fuzz run differential fuzz/artifacts/differential/crash-...`.
fuzz-cargo RUNS="10000000" *ARGS:
    mkdir -p fuzz/corpus/differential
    cp tests/data/fuzz-regressions/* fuzz/corpus/differential/
    cargo +nightly fuzz run differential -- -runs={{RUNS}} {{ARGS}}
    cargo +nightly fuzz cmin differential
    @echo "corpus: $(ls fuzz/corpus/differential | wc -l) files, $(cat fuzz/corpus/differential/* | wc -c) bytes"
