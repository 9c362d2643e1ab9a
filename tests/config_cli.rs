//! `wxflow config check` and configuration layering through the real binary.

mod common;

use common::{run, sample, stderr, wxflow};

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
    assert!(text.contains("hi_center = 22.3  # config/analyses.toml"), "{text}");
    assert!(text.contains("chunk_size = \"1MiB\"  # config/pipeline.toml"), "{text}");
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

#[test]
fn a_config_directory_split_by_concern_shapes_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let job = format!("[job]\nsource = {:?}\nplots = false\n", sample().display().to_string());
    std::fs::write(conf.join("job.toml"), job).unwrap();
    std::fs::write(conf.join("analyses.toml"), "[window]\ndays = 2\n").unwrap();

    let two_days = dir.path().join("two");
    let o = wxflow().args(["run", "--config"]).arg(&conf).arg("--out").arg(&two_days).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let all_days = dir.path().join("all");
    let o = run(&all_days, &["--source", sample().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The two-day window is the nine-day window's readings of 1 and 2 June, found independently.
    let nine = std::fs::read_to_string(all_days.join("task2.txt")).unwrap();
    let expected: Vec<&str> =
        nine.lines().filter(|l| l.starts_with("01/06/2006") || l.starts_with("02/06/2006")).collect();
    let two = std::fs::read_to_string(two_days.join("task2.txt")).unwrap();
    assert!(expected.len() > 5, "{nine}");
    assert_eq!(two.lines().collect::<Vec<_>>(), expected);
    assert!(!two_days.join("hottest.svg").exists(), "job.plots = false from conf/job.toml");
}

#[test]
fn the_shipped_config_directory_is_a_valid_override_and_says_which_file_set_each_key() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let o = wxflow().args(["config", "check", "--config"]).arg(&conf).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let pipeline = conf.join("pipeline.toml");
    assert!(text.contains(&format!("in_flight = 8  # config file {}", pipeline.display())), "{text}");
    let cluster = conf.join("cluster.toml");
    assert!(text.contains(&format!("lease_secs = 15  # config file {}", cluster.display())), "{text}");
}

#[test]
fn a_key_in_two_files_of_a_config_directory_exits_2_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "[pipeline]\nin_flight = 4\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "[pipeline]\nin_flight = 6\n").unwrap();
    let o = wxflow().args(["run", "--config"]).arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let needle = format!(
        "pipeline.in_flight = 6 (from config file {}): also set in {}",
        dir.path().join("b.toml").display(),
        dir.path().join("a.toml").display()
    );
    assert!(err.contains(&needle), "expected `{needle}` in {err}");
}
