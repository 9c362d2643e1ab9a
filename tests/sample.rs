//! The shipped sample and the quick start: the sample is exactly what `wxflow gen` makes, and a
//! bare `wxflow` in the repository layout processes it into `output/`.

mod common;

use common::{stderr, summary, wxflow};

/// The command that made tests/data/sample.csv (also in the README and justfile).
const GEN_ARGS: [&str; 11] = [
    "gen",
    "--start",
    "2006-05-31",
    "--days",
    "32",
    "--blank-lines",
    "10",
    "--bad-rows",
    "5",
    "--seed",
    "2006",
];

#[test]
fn shipped_sample_is_generated_by_wxflow_gen() {
    let o = wxflow().args(GEN_ARGS).output().unwrap();
    assert!(o.status.success());
    assert!(
        o.stdout == std::fs::read(common::sample()).unwrap(),
        "tests/data/sample.csv differs from `wxflow gen` output; regenerate it with `just sample`"
    );
    assert_eq!(stderr(&o), "wxflow gen: 4608 rows, 10 blank lines, 5 bad rows, 343399 bytes\n");
}

#[test]
fn bare_wxflow_runs_the_sample_into_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests/data")).unwrap();
    std::fs::copy(common::sample(), dir.path().join("tests/data/sample.csv")).unwrap();
    let o = wxflow().current_dir(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("output");
    let s = summary(&out);
    // 32 days x 144 readings, plus the generator's 10 blank lines and 5 bad rows.
    assert_eq!(s["rows"], serde_json::json!({"read": 4623, "processed": 4608, "rejected": 5, "blank": 10}));
    assert_eq!(s["hottest"]["days"], 32);
    assert_eq!(s["forecast"]["readings"], 9 * 144);
    assert!(stderr(&o).contains("warning: 5 row(s) rejected"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("4608 rows processed, 5 rejected, 10 blank"), "{stdout}");
}

#[test]
fn a_month_the_data_does_not_cover_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let source = common::sample();
    let o = common::run(dir.path(), &["--source", source.to_str().unwrap(), "--month", "2010-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no readings in the window 01/01/2010 to 09/01/2010 (reference month 2010-01)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(common::read(dir.path(), "task3.txt"), "");
    assert_eq!(common::read(dir.path(), "task2.txt"), "");
}
