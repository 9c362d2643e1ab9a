//! Back-pressure through the real binary: a deliberately slow task actor must hold the fetcher
//! back (it waits for room) instead of letting chunks pile up in mailboxes, and results must not
//! change.

mod common;

use common::{read, run, sample, stderr, summary};

#[test]
fn a_slow_task_actor_stalls_the_fetcher_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (slow, fast) = (dir.path().join("slow"), dir.path().join("fast"));
    let source = sample();
    let common = ["--source", source.to_str().unwrap(), "--chunk-size", "4KiB", "--in-flight", "3"];
    let o = run(&slow, &[&common[..], &["--fault", "slow:window:10"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let p = &summary(&slow)["pipeline"];
    let chunks = p["chunks"].as_u64().unwrap();
    assert!(chunks > 50, "enough chunks to fill the pipeline: {p}");
    assert_eq!(p["in_flight_bound"], 3);
    assert!(p["max_in_flight"].as_u64().unwrap() <= 3, "{p}");
    assert_eq!(p["max_in_flight"], 3, "the slow actor fills the pipeline to its bound: {p}");
    // With a 10 ms consumer and a ~0 ms producer, nearly every chunk after the first three waits.
    assert!(p["fetcher_stalls"].as_u64().unwrap() >= chunks - 10, "the fetcher must wait: {p}");

    let o = run(&fast, &common);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"] {
        assert_eq!(read(&slow, f), read(&fast, f), "{f} changed under back-pressure");
    }
}

#[test]
fn in_flight_of_one_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let source = sample();
    let o = run(
        dir.path(),
        &["--source", source.to_str().unwrap(), "--chunk-size", "1KiB", "--in-flight", "1", "--workers", "3"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let p = &summary(dir.path())["pipeline"];
    assert_eq!(p["max_in_flight"], 1, "{p}");
}
