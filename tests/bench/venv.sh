#!/usr/bin/env bash
# Makes the Python environment for tests/bench/duckdb_baseline.py.
#
# Creates (if missing) a virtualenv at ${WXFLOW_BENCH_VENV:-target/bench-venv} and installs duckdb
# into it (pip spec from ${WXFLOW_BENCH_DUCKDB:-duckdb}; nothing is fetched when the venv can already
# import duckdb). The default path is under the project root, wherever this is run from; a relative
# WXFLOW_BENCH_VENV is taken from the current directory. The interpreter is ${PYTHON:-python3}.
#
# On success prints the venv's python (absolute path) on stdout and nothing else. On failure exits
# non-zero with a one-line notice on stderr, so that the bench can skip DuckDB; pip's own output is
# kept in <venv>.log.
set -u

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${WXFLOW_BENCH_VENV:-$root/target/bench-venv}"
spec="${WXFLOW_BENCH_DUCKDB:-duckdb}"
python="${PYTHON:-python3}"

fail() {
    echo "venv.sh: $* (DuckDB baseline skipped)" >&2
    exit 1
}

mkdir -p "$(dirname "$venv")" 2>/dev/null || fail "cannot create $(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
log="$venv.log"
py="$venv/bin/python"

# Concurrent callers (parallel test threads) wait for each other instead of racing on the venv.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock" || fail "cannot open $venv.lock"
    flock -w 900 9 || fail "timed out waiting for $venv.lock"
fi

ready() { "$py" -c 'import duckdb' >/dev/null 2>&1; }

if ! ready; then
    : >"$log" 2>/dev/null || fail "cannot write $log"
    if [ -e "$venv" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ] && ! "$py" -c '' >/dev/null 2>&1; then
        # A broken venv (moved, or its interpreter gone): rebuild it, but only if it is one.
        [ -f "$venv/pyvenv.cfg" ] || fail "$venv exists and is not a virtualenv"
        rm -rf "$venv" || fail "cannot remove broken venv $venv"
    fi
    if [ ! -x "$py" ]; then
        command -v "$python" >/dev/null 2>&1 || fail "no $python on PATH"
        "$python" -m venv "$venv" >>"$log" 2>&1 ||
            fail "'$python -m venv $venv' failed, see $log"
    fi
    "$py" -m pip install --disable-pip-version-check --no-input --quiet "$spec" >>"$log" 2>&1 ||
        fail "'pip install $spec' failed, see $log"
    ready || fail "duckdb installed but does not import, see $log"
fi

echo "$py"
