#!/usr/bin/env python3
"""DuckDB baseline for the wxflow benchmark.

Computes the same three reports as wxflow from a Davis WeatherLink CSV export, so that a benchmark
can time DuckDB against wxflow on the same file and thread count and check that the answers agree.

Usage:
    duckdb_baseline.py CSV --threads N --out DIR [--month 2006-06] [--window-days 9]
                       [--strict] [--profile]

Writes DIR/hottest.json, DIR/task2.txt and DIR/task3.txt, and prints one line of JSON to stdout:
    {"rows": <good rows>, "seconds": <wall time of the query work>}
"seconds" runs from just before the scan of the file to just after the last report is written
(Python start-up, the DuckDB import and reading the header line are not in it). One line on
stderr gives the good and skipped row counts; --profile adds one line per stage.

How the file is read: one parallel `read_csv` scan with every column as VARCHAR (no quoting, an
extra sentinel column and NULL padding so that rows with the wrong field count come through and are
counted instead of aborting the query; a mix of CRLF and LF line endings is fine), using only the
five needed columns, found by their normalised header name. They are parsed in the same pass (`try_strptime`, `TRY_CAST`) into a day,
a minute of the day and temperatures in integer tenths of a degree, kept in a temporary table whose
rowid is the file order. All later arithmetic and comparisons are on integers.

A data row is good when it has exactly as many fields as the header, `Date Time` parses with
`%d/%m/%Y %H:%M` (a real calendar date, hour 0-23, minute 0-59) and Outside, Hi and Low Temperature
cast to DECIMAL(9,1). Blank lines are ignored; every other row (including one that is not valid
UTF-8, which DuckDB rejects before parsing) is skipped and counted as bad. These casts are lenient
about forms that a Davis export never has (`1/6/2006`, ` 16`, `+16`, `1e1`, `15.95` rounded to
16.0); --strict also requires the exact forms `dd/mm/yyyy`, `HH:MM` and `-?digits(.digit)?`,
at the cost of five regular expressions per row (about 1.5x the CPU of the scan).
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time

import duckdb

# Columns needed, by normalised header name (whitespace trimmed and collapsed, case ignored).
NEEDED = {
    "date": "date",
    "time": "time",
    "outside temperature": "outside",
    "hi temperature": "hi",
    "low temperature": "low",
}

# Task 2 bands, in tenths of a degree, bounds inclusive: 22.3 +/- 1.0 and 10.3 +/- 0.2.
HI_BAND = (223 - 10, 223 + 10)
LOW_BAND = (103 - 2, 103 + 2)
# Task 3 forecast base, in tenths of a degree.
FORECAST_BASE = 250
# --strict form of a temperature (DECIMAL(9, 1) holds 8 integer digits).
TEMP_RE = r"-?[0-9]{1,8}(\.[0-9])?"


def normalise(name: str) -> str:
    return " ".join(name.split()).lower()


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_header(path: str):
    """Returns (lines before the header, header fields) or exits if there is no header."""
    try:
        f = open(path, "rb")
    except OSError as e:
        sys.exit(f"duckdb_baseline: {path}: {e.strerror}")
    with f:
        skipped = 0
        for raw in f:
            line = raw.decode("utf-8-sig" if skipped == 0 else "utf-8", errors="replace")
            line = line.rstrip("\r\n")
            if line.strip():
                return skipped, line.split(",")
            skipped += 1
    sys.exit(f"duckdb_baseline: {path}: no header line")


def parse_month(text: str):
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 30 if month in (4, 6, 9, 11) else 31


def load_sql(path: str, skip: int, fields: list, strict: bool) -> str:
    """CREATE TABLE for the parsed rows: d DATE (NULL for a bad row), t minute of day, o/hi/lo tenths."""
    index = {}
    for i, name in enumerate(fields):
        key = NEEDED.get(normalise(name))
        if key is not None and key not in index:
            index[key] = i
    missing = [n for n, k in NEEDED.items() if k not in index]
    if missing:
        sys.exit(f"duckdb_baseline: {path}: header lacks column(s) {', '.join(missing)}")
    ncols = len(fields)
    # One more column than the header has: it is NULL exactly when a row has at most ncols fields,
    # and with null_padding the last real column is NULL exactly when a row has fewer. The NULL
    # string is set to something that never occurs so that empty fields read as '' and not NULL.
    # strict_mode=false only so that a file mixing CRLF and LF line endings still reads; with it,
    # DuckDB would silently drop fields past the declared columns, hence the sentinel column.
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols + 1))
    c = {k: f"c{i}" for k, i in index.items()}
    shape = f"c{ncols - 1} IS NOT NULL AND c{ncols} IS NULL"
    if strict:
        shape += "".join(
            f"\n                  AND regexp_full_match({c[k]}, '{pattern}')"
            for k, pattern in (("date", "[0-9]{2}/[0-9]{2}/[0-9]{4}"),
                               ("time", "[0-9]{2}:[0-9]{2}"),
                               ("outside", TEMP_RE), ("hi", TEMP_RE), ("low", TEMP_RE)))
    return f"""
CREATE TEMP TABLE r AS
SELECT
    CASE WHEN shape_ok AND ts IS NOT NULL AND o IS NOT NULL AND hi IS NOT NULL AND lo IS NOT NULL
         THEN CAST(ts AS DATE) END AS d,
    CAST(hour(ts) * 60 + minute(ts) AS SMALLINT) AS t,
    CAST(o * 10 AS INTEGER) AS o,
    CAST(hi * 10 AS INTEGER) AS hi,
    CAST(lo * 10 AS INTEGER) AS lo
FROM (
    SELECT try_strptime({c['date']} || ' ' || {c['time']}, '%d/%m/%Y %H:%M') AS ts,
           TRY_CAST({c['outside']} AS DECIMAL(9, 1)) AS o,
           TRY_CAST({c['hi']} AS DECIMAL(9, 1)) AS hi,
           TRY_CAST({c['low']} AS DECIMAL(9, 1)) AS lo,
           coalesce({shape}, false) AS shape_ok
    FROM read_csv({sql_str(path)},
                  auto_detect = false, header = true, skip = {skip},
                  delim = ',', quote = '', escape = '',
                  columns = {{{columns}}},
                  null_padding = true, strict_mode = false,
                  nullstr = '\x01<null>\x01',
                  ignore_errors = true, store_rejects = true)
)
"""


def tenths_text(col: str) -> str:
    """SQL text of an integer number of tenths as a decimal, e.g. -5 -> '-0.5'."""
    return (f"(CASE WHEN {col} < 0 THEN '-' ELSE '' END || (abs({col}) // 10)::VARCHAR"
            f" || '.' || (abs({col}) % 10)::VARCHAR)")


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--threads", type=positive_int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--month", type=parse_month, default=(2006, 6))
    ap.add_argument("--window-days", type=positive_int, default=9)
    ap.add_argument("--strict", action="store_true",
                    help="validate the exact textual forms of the five fields with regexes")
    ap.add_argument("--profile", action="store_true", help="time each stage, on stderr")
    args = ap.parse_args()

    year, month = args.month
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    # The window is the first N days of the month, never past its end.
    window_days = min(args.window_days, days_in_month(year, month))
    # A window day with no such day in the next month has nothing to forecast.
    forecast_days = min(window_days, days_in_month(next_year, next_month))
    w0 = f"DATE '{year:04d}-{month:02d}-01'"
    w1 = f"DATE '{year:04d}-{month:02d}-{window_days:02d}'"

    os.makedirs(args.out, exist_ok=True)
    hottest_path = os.path.join(args.out, "hottest.json")
    task2_path = os.path.join(args.out, "task2.txt")
    task3_path = os.path.join(args.out, "task3.txt")
    skip, fields = read_header(args.csv)

    with tempfile.TemporaryDirectory(prefix="wxflow-duckdb-") as spill:
        con = duckdb.connect(":memory:")
        con.execute(f"SET threads = {args.threads}")
        con.execute(f"SET temp_directory = {sql_str(spill)}")
        con.execute("SET preserve_insertion_order = true")  # rowid of r = file order
        start = last = time.perf_counter()

        def stage(name):
            nonlocal last
            if args.profile:
                now = time.perf_counter()
                print(f"duckdb_baseline: {name:8s} {now - last:8.3f} s", file=sys.stderr)
                last = now

        # The one scan of the file.
        con.execute(load_sql(args.csv, skip, fields, args.strict))
        total, good = con.execute("SELECT count(*), count(d) FROM r").fetchone()
        # Lines DuckDB itself could not read (invalid UTF-8): skipped by ignore_errors, listed here.
        rejected = con.execute("SELECT count(DISTINCT line) FROM reject_errors").fetchone()[0]
        stage("load")

        # Task 1: each day's max and the earliest time it occurs. The key o*1440 - t orders by
        # value and then by earlier time, as 0 <= t < 1440.
        con.execute("""
            CREATE TEMP TABLE days AS
            SELECT d, max(o) AS mx, arg_max(t, o::BIGINT * 1440 - t) AS ht
            FROM r WHERE d IS NOT NULL GROUP BY d
        """)
        monthly = []
        for mo, n, sum_min in con.execute("""
                SELECT strftime(d, '%Y-%m') AS mo, count(*), sum(ht)::HUGEINT
                FROM days GROUP BY mo ORDER BY mo""").fetchall():
            p, q = 60 * int(sum_min), int(n)  # mean in seconds = p / q, rounded half up
            sec = (2 * p + q) // (2 * q)
            monthly.append({"month": mo,
                            "mean_time": f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}",
                            "days": q})
        counts = con.execute("SELECT ht, count(*) FROM days GROUP BY ht").fetchall()
        best = max((c for _, c in counts), default=0)
        most_common = {"times": [hhmm(t) for t, c in sorted(counts) if c == best], "days": best}
        top = con.execute("""
            SELECT strftime(d, '%Y-%m-%d'), ht, mx FROM (
                SELECT * FROM days ORDER BY mx DESC, d ASC LIMIT 10
            ) ORDER BY d""").fetchall()
        hottest = {
            "monthly": monthly,
            "most_common": most_common,
            "top": [{"date": d, "time": hhmm(t), "value": mx / 10} for d, t, mx in top],
        }
        with open(hottest_path, "w") as f:
            f.write(json.dumps(hottest, separators=(",", ":")) + "\n")
        stage("hottest")

        copy_opts = "(FORMAT csv, HEADER false, DELIMITER '\t', QUOTE '', ESCAPE '')"

        # Task 2: window readings whose Hi or Low Temperature is in its band.
        con.execute(f"""
            COPY (
                SELECT strftime(d + to_minutes(t), '%d/%m/%Y %H:%M')
                       || ' hi=' || {tenths_text('hi')} || ' low=' || {tenths_text('lo')}
                FROM r
                WHERE d BETWEEN {w0} AND {w1}
                  AND (hi BETWEEN {HI_BAND[0]} AND {HI_BAND[1]}
                       OR lo BETWEEN {LOW_BAND[0]} AND {LOW_BAND[1]})
                ORDER BY d, t, rowid
            ) TO {sql_str(task2_path)} {copy_opts}
        """)
        stage("window")

        # Task 3: forecast for month+1. In hundredths, value = 10*(250n + x*n - sum) / n, rounded
        # half away from zero with integer arithmetic.
        con.execute(f"""
            COPY (
                WITH w AS (
                    SELECT rowid AS rid, d, t, o FROM r WHERE d BETWEEN {w0} AND {w1}
                ), s AS (
                    SELECT d, count(*)::BIGINT AS n, sum(o)::BIGINT AS sm FROM w GROUP BY d
                ), f AS (
                    SELECT w.rid, w.d, w.t, s.n,
                           10 * ({FORECAST_BASE} * s.n + w.o::BIGINT * s.n - s.sm) AS p
                    FROM w JOIN s USING (d)
                    WHERE day(w.d) <= {forecast_days}
                ), h AS (
                    SELECT rid, d, t, sign(p) * ((2 * abs(p) + n) // (2 * n)) AS h FROM f
                )
                SELECT strftime(make_date({next_year}, {next_month}, day(d)) + to_minutes(t),
                                '%d/%m/%Y %H:%M')
                       || ' ' || CASE WHEN h < 0 THEN '-' ELSE '' END
                       || (abs(h) // 100)::VARCHAR || '.' || lpad((abs(h) % 100)::VARCHAR, 2, '0')
                FROM h
                ORDER BY d, t, rid
            ) TO {sql_str(task3_path)} {copy_opts}
        """)

        stage("forecast")
        seconds = time.perf_counter() - start
        con.close()

    print(f"duckdb_baseline: {good} good rows, {total - good + rejected} bad rows skipped", file=sys.stderr)
    print(json.dumps({"rows": good, "seconds": round(seconds, 6)}))


if __name__ == "__main__":
    main()
