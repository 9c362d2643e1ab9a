//! `--connections N` through the real binary and a real HTTP server: the source is downloaded in
//! ranged pieces over N connections at once and handed on in order, so the results are identical
//! to one download; every byte is asked for exactly once; a server that ignores `Range` gets one
//! download; a piece that fails is retried from the byte reached; a resumed run asks only for what
//! is missing. (That N connections are faster on a capped link is measured in `just bench`, not
//! timed here.)

mod common;

use std::path::Path;

use common::range_server::{Behaviour, RangeServer};
use common::{assert_same_results, gen_input, stderr, summary, wxflow};

/// Bytes per piece, as `source::segmented::PIECE`.
const PIECE: u64 = 8 << 20;

fn input(dir: &Path) -> Vec<u8> {
    let args = ["--size", "20MB", "--seed", "91", "--bad-rows", "10", "--blank-lines", "3"];
    std::fs::read(gen_input(dir, &args)).unwrap()
}

fn run(source: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    wxflow()
        .args(["run", "--source", source, "--out"])
        .arg(out)
        .args(["--chunk-size", "256KiB", "--set", "pipeline.retry_backoff_ms=10"])
        .args(extra)
        .output()
        .unwrap()
}

fn assert_same(clean: &Path, out: &Path) {
    assert_same_results(clean, out, "over several connections");
}

/// The byte ranges asked for, as (first, last) inclusive, from `Range: bytes=A-B` values.
fn ranges(log: &[common::range_server::Served]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = log
        .iter()
        .filter_map(|s| s.range.as_deref())
        .map(|r| {
            let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn three_connections_give_identical_results_and_ask_for_every_byte_once() {
    let dir = tempfile::tempdir().unwrap();
    let body = input(dir.path());
    let len = body.len() as u64;
    let file = dir.path().join("input.csv");
    let clean = dir.path().join("clean");
    assert!(run(file.to_str().unwrap(), &clean, &[]).status.success());
    let server = RangeServer::start(body);
    let out = dir.path().join("out");
    let o = run(&server.url, &out, &["--connections", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&clean, &out);
    let log = server.log();
    assert!(log.iter().all(|s| s.status == 206), "{log:?}");
    let expected: Vec<(u64, u64)> =
        (0..len.div_ceil(PIECE)).map(|k| (k * PIECE, ((k + 1) * PIECE).min(len) - 1)).collect();
    assert_eq!(ranges(&log), expected, "each piece asked for once, together covering the file");
    assert!(log[1..].iter().all(|s| s.if_range.as_deref() == Some(server.etag().as_str())), "{log:?}");
    let sent: u64 = log.iter().map(|s| s.sent).sum();
    assert_eq!(sent, len, "nothing downloaded twice");
}

#[test]
fn a_server_that_ignores_range_gets_one_download() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start(input(dir.path()));
    let clean = dir.path().join("clean");
    assert!(run(&server.url, &clean, &[]).status.success());
    let before = server.log().len();
    server.push(Behaviour::IgnoreRange);
    server.push(Behaviour::IgnoreRange);
    let out = dir.path().join("out");
    let o = run(&server.url, &out, &["--connections", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not serve byte ranges; downloading over one connection"),
        "{}",
        stderr(&o)
    );
    assert_same(&clean, &out);
    let log = &server.log()[before..];
    assert_eq!(log.len(), 2, "the probe, then one ordinary download: {log:?}");
    assert_eq!((log[1].status, log[1].range.as_deref()), (200, None), "{log:?}");
}

#[test]
fn a_piece_that_fails_is_retried_from_the_byte_reached() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start(input(dir.path()));
    let clean = dir.path().join("clean");
    assert!(run(&server.url, &clean, &[]).status.success());
    let before = server.log().len();
    server.push(Behaviour::DropAfter(3_000_000)); // the first piece breaks 3 MB in
    let out = dir.path().join("out");
    let o = run(&server.url, &out, &["--connections", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(&clean, &out);
    assert_eq!(summary(&out)["retries"], 1);
    let log = &server.log()[before..];
    assert!(
        log.iter().any(|s| s.range.as_deref().is_some_and(|r| r.starts_with("bytes=3000000-"))),
        "the retry continues at the byte reached: {log:?}"
    );
}

#[test]
fn a_resumed_run_over_three_connections_asks_only_for_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let server = RangeServer::start(input(dir.path()));
    let clean = dir.path().join("clean");
    assert!(run(&server.url, &clean, &[]).status.success());
    let out = dir.path().join("out");
    let every = ["--set", "checkpoint.every_chunks=8"];
    let o = run(&server.url, &out, &[&every[..], &["--connections", "3", "--fault", "abort@40"]].concat());
    assert!(!o.status.success(), "abort@40 stops the first run");
    let before = server.log().len();
    let o = run(&server.url, &out, &[&every[..], &["--connections", "3"]].concat());
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let from: u64 =
        e.split("resuming from byte ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(from > 0, "{e}");
    assert_same(&clean, &out);
    let log = &server.log()[before..];
    let first = ranges(log)[0];
    assert_eq!(first.0, from, "the first piece starts at the checkpoint: {log:?}");
}
