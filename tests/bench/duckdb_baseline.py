#!/usr/bin/env python3
"""DuckDB baseline for the wxflow benchmark.

Computes the same three reports as wxflow from a Davis WeatherLink CSV export, so that a benchmark
can time DuckDB against wxflow on the same file and thread count and check that the answers agree.

Usage:
    duckdb_baseline.py CSV --threads N --out DIR [--month 2006-06] [--window-days 9]

Writes DIR/hottest.json, DIR/task2.txt and DIR/task3.txt, and prints one line of JSON to stdout:
    {"rows": <good rows>, "seconds": <wall time of the query work>}
A one-line note on stderr gives the number of skipped (bad) rows.

How the file is read: one parallel `read_csv` scan with every column as VARCHAR (no quoting, an
extra sentinel column and NULL padding so that rows with the wrong field count come through and can
be counted instead of aborting the query), selecting only the five needed columns by their
normalised header name. The rows are parsed and validated in SQL into integers (day, minute of the
day, temperatures in tenths of a degree) and kept in a temporary table whose rowid is the file
order. All arithmetic and comparisons are on integers; no float is ever compared.

A data row is good when it has exactly as many fields as the header, Date is `dd/mm/yyyy` naming a
real calendar date, Time is `HH:MM` with HH 00-23 and MM 00-59, and Outside, Hi and Low Temperature
are `-?digits` with at most one decimal. Blank lines are ignored; every other row is skipped and
counted as bad.
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
# Longest integer part accepted in a temperature (keeps the integer casts far from overflow).
TEMP_RE = r"-?[0-9]{1,7}(\.[0-9])?"


def normalise(name: str) -> str:
    return " ".join(name.split()).lower()


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_header(path: str):
    """Returns (lines before the header, header fields) or exits if there is no header."""
    with open(path, "rb") as f:
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


def load_sql(path: str, skip: int, fields: list) -> str:
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
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols + 1))
    c = {k: f"c{i}" for k, i in index.items()}

    def temp_tenths(col):
        # '15.9' -> 159, '16' -> 160, '-0.5' -> -5; only evaluated on validated text.
        return (f"CAST(replace({col}, '.', '') AS INTEGER)"
                f" * CASE WHEN contains({col}, '.') THEN 1 ELSE 10 END")

    return f"""
CREATE TEMP TABLE r AS
WITH raw AS (
    SELECT {c['date']} AS ds, {c['time']} AS ts,
           {c['outside']} AS os, {c['hi']} AS hs, {c['low']} AS ls,
           coalesce(c{ncols - 1} IS NOT NULL AND c{ncols} IS NULL
                    AND regexp_full_match({c['date']}, '[0-9]{{2}}/[0-9]{{2}}/[0-9]{{4}}')
                    AND regexp_full_match({c['time']}, '([01][0-9]|2[0-3]):[0-5][0-9]')
                    AND regexp_full_match({c['outside']}, '{TEMP_RE}')
                    AND regexp_full_match({c['hi']}, '{TEMP_RE}')
                    AND regexp_full_match({c['low']}, '{TEMP_RE}'), false) AS fmt_ok
    FROM read_csv({sql_str(path)},
                  auto_detect = false, header = true, skip = {skip},
                  delim = ',', quote = '', escape = '',
                  columns = {{{columns}}},
                  null_padding = true, strict_mode = false,
                  nullstr = '\x01<null>\x01',
                  ignore_errors = true)
), ymd AS (
    SELECT *,
           CASE WHEN fmt_ok THEN CAST(substr(ds, 7, 4) AS INTEGER) END AS y,
           CASE WHEN fmt_ok THEN CAST(substr(ds, 4, 2) AS INTEGER) END AS m,
           CASE WHEN fmt_ok THEN CAST(substr(ds, 1, 2) AS INTEGER) END AS dd
    FROM raw
)
SELECT
    CASE WHEN m BETWEEN 1 AND 12 AND dd >= 1 AND dd <=
              CASE WHEN m = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0
                                        THEN 29 ELSE 28 END
                   WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END
         THEN make_date(y, m, dd) END AS d,
    CASE WHEN fmt_ok THEN CAST(CAST(substr(ts, 1, 2) AS INTEGER) * 60
                               + CAST(substr(ts, 4, 2) AS INTEGER) AS SMALLINT) END AS t,
    CASE WHEN fmt_ok THEN {temp_tenths('os')} END AS o,
    CASE WHEN fmt_ok THEN {temp_tenths('hs')} END AS hi,
    CASE WHEN fmt_ok THEN {temp_tenths('ls')} END AS lo
FROM ymd
"""


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--threads", type=positive_int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--month", type=parse_month, default=(2006, 6))
    ap.add_argument("--window-days", type=positive_int, default=9)
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
        start = time.perf_counter()

        # The one scan of the file.
        con.execute(load_sql(args.csv, skip, fields))
        total, good = con.execute("SELECT count(*), count(d) FROM r").fetchone()

        # Task 1: each day's max and the earliest time it occurs. The key o*1440 - t orders by
        # value and then by earlier time, as 0 <= t < 1440.
        con.execute("""
            CREATE TEMP TABLE days AS
            SELECT d, max(o) AS mx, arg_max(t, o * 1440 - t) AS ht
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

        copy_opts = "(FORMAT csv, HEADER false, DELIMITER '\t', QUOTE '', ESCAPE '')"

        # Task 2: window readings whose Hi or Low Temperature is in its band.
        con.execute(f"""
            COPY (
                SELECT strftime(d + to_minutes(t), '%d/%m/%Y %H:%M')
                       || ' hi=' || (hi / 10)::DECIMAL(18, 1) || ' low=' || (lo / 10)::DECIMAL(18, 1)
                FROM r
                WHERE d BETWEEN {w0} AND {w1}
                  AND (hi BETWEEN {HI_BAND[0]} AND {HI_BAND[1]}
                       OR lo BETWEEN {LOW_BAND[0]} AND {LOW_BAND[1]})
                ORDER BY d, t, rowid
            ) TO {sql_str(task2_path)} {copy_opts}
        """)

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

        seconds = time.perf_counter() - start
        con.close()

    print(f"duckdb_baseline: {good} good rows, {total - good} bad rows skipped", file=sys.stderr)
    print(json.dumps({"rows": good, "seconds": round(seconds, 6)}))


if __name__ == "__main__":
    main()
