//! Supervision through the real binary: a panic injected into each actor is caught at its
//! handler boundary; a task actor restarts alone and replays its lost chunks from the source
//! (one-for-one), any other actor restarts the pipeline from the last checkpoint; results are
//! byte-identical to a clean run and the restart is counted; past `supervision.max_restarts` the
//! job stops with exit code 6, checkpoint intact, and a rerun without the fault resumes and
//! completes.

mod common;

use std::path::Path;

use common::range_server::RangeServer;
use common::{assert_same_results, gen_input, stderr, summary, wxflow};

const TASKS: [&str; 3] = ["hottest", "window", "forecast"];

const ACTORS: [&str; 7] = ["fetcher", "parser", "router", "hottest", "window", "forecast", "checkpoint"];

fn input(dir: &Path) -> String {
    let args = ["--size", "3MB", "--seed", "81", "--bad-rows", "12", "--blank-lines", "5"];
    gen_input(dir, &args).display().to_string()
}

fn run(source: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    wxflow()
        .args(["run", "--source", source, "--out"])
        .arg(out)
        .args(["--chunk-size", "64KiB", "--in-flight", "4", "--set", "checkpoint.every_chunks=8"])
        .args(["--set", "supervision.backoff_initial_ms=5"])
        .args(extra)
        .output()
        .unwrap()
}

fn assert_same(clean: &Path, out: &Path) {
    assert_same_results(clean, out, "after a restart");
}

#[test]
fn a_panic_in_any_actor_is_survived_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let clean = dir.path().join("clean");
    let o = run(&source, &clean, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let zeros: serde_json::Value = ACTORS.iter().map(|a| (a.to_string(), serde_json::json!(0))).collect();
    assert_eq!(summary(&clean)["restarts"], zeros);
    for actor in ACTORS {
        let out = dir.path().join(actor);
        let fault = format!("panic:{actor}@20");
        let o = run(&source, &out, &["--fault", &fault]);
        let e = stderr(&o);
        assert!(o.status.success(), "{actor}: {e}");
        assert!(
            e.contains(&format!("the {actor} actor failed (injected fault panic:{actor}@20")),
            "{actor}: {e}"
        );
        if TASKS.contains(&actor) {
            assert!(e.contains(&format!("the {actor} actor caught up after its restart")), "{e}");
            assert!(!e.contains("restarting the pipeline"), "{actor} restarts alone: {e}");
        } else {
            assert!(e.contains("restarting the pipeline from byte"), "{e}");
        }
        assert_same(&clean, &out);
        assert!(summary(&out)["resumed"].is_null(), "a restart within a run is not a resume");
        let restarts = &summary(&out)["restarts"];
        for other in ACTORS {
            assert_eq!(restarts[other], u64::from(other == actor), "{actor}: {restarts}");
        }
    }
}

#[test]
fn past_max_restarts_the_job_stops_with_exit_6_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let clean = dir.path().join("clean");
    assert!(run(&source, &clean, &[]).status.success());
    let out = dir.path().join("out");
    let o = run(&source, &out, &["--fault", "panic:window@30x9", "--set", "supervision.max_restarts=2"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("supervision gave up") && e.contains("window actor failed"), "{e}");
    assert!(e.contains("injected fault panic:window@30"), "{e}");
    assert!(out.join(".wxflow-checkpoint/checkpoint.bin").is_file(), "checkpoint intact");
    let o = run(&source, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming from byte"), "{}", stderr(&o));
    assert_same(&clean, &out);
}

#[test]
fn a_bad_fault_spec_is_refused_with_the_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let o = run("-", dir.path(), &["--fault", "panic:nobody@3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("panic:ACTOR@NxK"), "{}", stderr(&o));
}

#[test]
fn a_failed_checkpoint_write_and_slow_actors_keep_results_identical() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let clean = dir.path().join("clean");
    assert!(run(&source, &clean, &[]).status.success());

    let out = dir.path().join("io");
    let o = run(&source, &out, &["--fault", "checkpoint-io@2"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("the checkpoint actor failed (writing a checkpoint in") && e.contains("checkpoint-io@2"),
        "{e}"
    );
    assert_eq!(summary(&out)["restarts"]["checkpoint"], 1);
    assert_same(&clean, &out);

    for actor in ["fetcher", "router", "checkpoint", "forecast"] {
        let out = dir.path().join(format!("slow-{actor}"));
        let fault = format!("slow:{actor}:3");
        let o = run(&source, &out, &["--fault", &fault]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(&format!("fault armed: slow:{actor}:3")), "{}", stderr(&o));
        assert_same(&clean, &out);
    }
}

/// One-for-one over HTTP: while the window actor restarts, the fetcher's download is not
/// restarted (one request from byte 0), and the replay asks only for the chunks the window actor
/// lost (`Range` requests, with `If-Range`, well past the start).
#[test]
fn a_task_actor_restarts_alone_and_reads_only_its_lost_chunks_again() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let body = std::fs::read(&source).unwrap();
    let clean = dir.path().join("clean");
    assert!(run(&source, &clean, &[]).status.success());
    let server = RangeServer::start(body.clone());
    let out = dir.path().join("out");
    let o = run(&server.url, &out, &["--fault", "panic:window@20x2", "--fault", "panic:forecast@30"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert_same(&clean, &out);
    let restarts = &summary(&out)["restarts"];
    assert_eq!(
        (restarts["window"].as_u64(), restarts["forecast"].as_u64()),
        (Some(2), Some(1)),
        "{restarts}"
    );
    assert_eq!(restarts["fetcher"], 0);
    let log = server.log();
    let from_start: Vec<_> = log.iter().filter(|s| s.range.is_none()).collect();
    assert_eq!(from_start.len(), 1, "the download was not restarted: {log:?}");
    let replays: Vec<_> = log.iter().filter(|s| s.range.is_some()).collect();
    assert!(replays.len() >= 3, "two window restarts and one forecast restart re-read chunks: {log:?}");
    for r in &replays {
        assert_eq!(r.status, 206, "{r:?}");
        assert_eq!(r.if_range.as_deref(), Some(server.etag().as_str()), "{r:?}");
        // 64 KiB chunks, checkpoints every 8: a restart at chunk 20 or 30 re-reads from the start
        // of its open epoch at the earliest, chunk 16 (about 1 MiB in), never from the beginning.
        assert!(r.start >= 16 * 60_000, "replay reads only lost chunks: {r:?}");
    }
    for r in &replays {
        // Lost chunks are at most one checkpoint interval (8) plus the in-flight bound (4) of
        // 64 KiB chunks (a chunk ends at the line break after its target size), asked for as a
        // closed range.
        assert!(r.sent <= 12 * 66_000, "a replay reads only the lost chunks: {r:?}");
        assert!(r.range.as_deref().is_some_and(|v| !v.ends_with('-')), "{r:?}");
    }
}

/// Standard input cannot be read twice, so a task actor cannot replay: the job fails (an actor
/// died, exit 5) with the reason, naming the actor.
#[test]
fn a_task_actor_on_standard_input_cannot_restart_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let o = wxflow()
        .args(["run", "--source", "-", "--chunk-size", "64KiB", "--fault", "panic:window@3", "--out"])
        .arg(dir.path().join("out"))
        .pipe_stdin(&source)
        .unwrap()
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{e}");
    assert!(e.contains("window actor failed: injected fault panic:window@3"), "{e}");
    assert!(
        e.contains("standard input cannot be read again, so the window actor cannot be restarted"),
        "{e}"
    );
}

/// `restarts` and `retries` in `summary.json` cover every run of a job, not only the last: they
/// travel in the checkpoint.
#[test]
fn restarts_and_retries_add_up_across_a_kill_and_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let source = input(dir.path());
    let clean = dir.path().join("clean");
    assert!(run(&source, &clean, &[]).status.success());
    let out = dir.path().join("out");
    let faults = ["--fault", "panic:window@5", "--fault", "disconnect@500000", "--fault", "abort@40"];
    let o = run(&source, &out, &faults);
    assert!(!o.status.success(), "abort@40 kills the first run: {}", stderr(&o));
    let o = run(&source, &out, &["--fault", "panic:router@44"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("resuming from byte"), "{e}");
    assert_same(&clean, &out);
    let s = summary(&out);
    assert_eq!(s["retries"], 1, "{s}");
    assert_eq!((s["restarts"]["window"].as_u64(), s["restarts"]["router"].as_u64()), (Some(1), Some(1)));
    assert_eq!(s["resumed"]["runs"], 2, "{}", s["resumed"]);
}
