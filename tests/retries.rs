//! Fetch retries through the real binary and a real HTTP server: a connection dropped part-way,
//! server errors and an injected disconnect are retried from the byte reached (HTTP: `Range` with
//! `If-Range`), results stay identical, and what will not get better (4xx, retries exhausted)
//! fails with a clear message.

mod common;

use std::path::Path;

use common::range_server::{Behaviour, RangeServer};
use common::{assert_same_results, gen_input, stderr, summary, wxflow};

fn input(dir: &Path) -> Vec<u8> {
    std::fs::read(gen_input(dir, &["--size", "3MB", "--seed", "71", "--bad-rows", "10"])).unwrap()
}

fn run(source: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    wxflow()
        .args(["run", "--source", source, "--out"])
        .arg(out)
        .args(["--chunk-size", "64KiB", "--set", "pipeline.retry_backoff_ms=10"])
        .args(extra)
        .output()
        .unwrap()
}

fn assert_same(clean: &Path, out: &Path) {
    assert_same_results(clean, out, "after retries");
}

#[test]
fn dropped_connections_and_server_errors_are_retried_from_the_byte_reached() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start(input(dir.path()));
    let clean = dir.path().join("clean");
    assert!(run(&server.url, &clean, &[]).status.success());
    assert_eq!(summary(&clean)["retries"], 0);

    let out = dir.path().join("out");
    let before = server.log().len();
    server.push(Behaviour::DropAfter(1_000_000));
    server.push(Behaviour::Status(503));
    server.push(Behaviour::DropAfter(300_000));
    let o = run(&server.url, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&clean, &out);
    assert_eq!(summary(&out)["retries"], 3);
    let log = &server.log()[before..];
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!((log[0].range.as_deref(), log[0].sent), (None, 1_000_000));
    // After the drop: a 503, then the rest from byte 1,000,000 (dropped again after 300,000 bytes),
    // then the rest from byte 1,300,000; every request with If-Range.
    assert_eq!((log[1].range.as_deref(), log[1].status), (Some("bytes=1000000-"), 503));
    assert_eq!((log[2].status, log[2].start, log[2].sent), (206, 1_000_000, 300_000));
    assert_eq!((log[3].range.as_deref(), log[3].status), (Some("bytes=1300000-"), 206));
    assert!(log[1..].iter().all(|r| r.if_range.as_deref() == Some(server.etag().as_str())), "{log:?}");
    let size = std::fs::metadata(dir.path().join("input.csv")).unwrap().len();
    assert_eq!(log.iter().map(|r| r.sent).sum::<u64>(), size, "no byte fetched twice");
    let e = stderr(&o);
    assert!(e.contains("retry 1") && e.contains("from byte 1000000"), "{e}");
}

#[test]
fn a_client_error_fails_at_once_and_retries_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start(input(dir.path()));
    server.push(Behaviour::DropAfter(200_000));
    server.push(Behaviour::Status(404));
    let o = run(&server.url, &dir.path().join("a"), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
    assert_eq!(server.log().len(), 2, "a 4xx is not retried");

    server.push(Behaviour::DropAfter(200_000));
    for _ in 0..3 {
        server.push(Behaviour::Status(503));
    }
    let o = run(&server.url, &dir.path().join("b"), &["--set", "pipeline.fetch_retries=2"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("retry 2") && !e.contains("retry 3") && e.contains("503"), "{e}");
}

#[test]
fn an_injected_disconnect_is_retried_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let body = input(dir.path());
    let path = dir.path().join("input.csv");
    let source = path.to_str().unwrap();
    let clean = dir.path().join("clean");
    assert!(run(source, &clean, &[]).status.success());
    let out = dir.path().join("out");
    let o = run(source, &out, &["--fault", "disconnect@1234567"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from byte 1234567"), "{}", stderr(&o));
    assert_eq!(summary(&out)["retries"], 1);
    assert_same(&clean, &out);

    let server = RangeServer::start(body);
    let out = dir.path().join("http");
    let o = run(&server.url, &out, &["--fault", "disconnect@2000000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.log()[1].range.as_deref(), Some("bytes=2000000-"));
    assert_same(&clean, &out);
}
