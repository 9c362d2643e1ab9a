//! `wxflow config check` and configuration layering through the real binary.

mod common;

use common::{stderr, wxflow};

#[test]
fn check_prints_values_with_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, "[window]\ndays = 7\n[pipeline]\nin_flight = 16\n").unwrap();
    let o = wxflow()
        .args(["config", "check", "--config"])
        .arg(&file)
        .args(["--workers", "3", "--set", "pipeline.in_flight=5"])
        .env("WXFLOW__FORECAST__METHOD", "proportional")
        .env("WXFLOW__PIPELINE__IN_FLIGHT", "9")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(&format!("days = 7  # config file {}", file.display())), "{text}");
    assert!(text.contains("parse_workers = 3  # command-line --workers"), "{text}");
    assert!(
        text.contains("in_flight = \"5\"  # command-line --set")
            || text.contains("in_flight = 5  # command-line --set"),
        "{text}"
    );
    assert!(
        text.contains("method = \"proportional\"  # environment variable WXFLOW__FORECAST__METHOD"),
        "{text}"
    );
    assert!(text.contains("hi_center = 22.3  # config/default.toml"), "{text}");
}

#[test]
fn every_error_is_listed_and_exit_code_is_2() {
    let o = wxflow()
        .args(["config", "check", "--chunk-size", "0", "--month", "June", "--set", "window.hi_tolerance=-1"])
        .env("WXFLOW__WINDOW__DAZE", "4")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for needle in [
        "invalid configuration (4 problems)",
        "window.daze = 4 (from environment variable WXFLOW__WINDOW__DAZE): unknown key; did you mean `window.days`?",
        "pipeline.chunk_size = 0 (from command-line --chunk-size)",
        "job.reference_month = \"June\" (from command-line --month): must be a month as YYYY-MM",
        "window.hi_tolerance = -1 (from command-line --set): must be 0 or more",
    ] {
        assert!(err.contains(needle), "expected `{needle}` in {err}");
    }
}

#[test]
fn run_refuses_bad_config_before_reading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let o = wxflow()
        .args(["run", "--source", "ftp://example.org/200606.csv", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unsupported scheme `ftp://`"), "{}", stderr(&o));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn usage_errors_exit_2() {
    let o = wxflow().args(["run", "--set", "no-equals-sign"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not KEY=VALUE"), "{}", stderr(&o));
    let o = wxflow().args(["gen", "--start", "2006-02-30"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected a date as YYYY-MM-DD"));
}
