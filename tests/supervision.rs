//! Supervision through the real binary: a panic injected into each actor is caught at its
//! handler boundary, the pipeline restarts from the last checkpoint, results are byte-identical
//! to a clean run and the restart is counted; past `supervision.max_restarts` the job stops with
//! exit code 6, checkpoint intact, and a rerun without the fault resumes and completes.

mod common;

use std::path::Path;

use common::{read, stderr, summary, wxflow};

const ACTORS: [&str; 7] = ["fetcher", "parser", "router", "hottest", "window", "forecast", "checkpoint"];

fn input(dir: &Path) -> String {
    let path = dir.join("input.csv");
    let o = wxflow()
        .args(["gen", "--size", "3MB", "--seed", "81", "--bad-rows", "12", "--blank-lines", "5", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    path.display().to_string()
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
    for f in ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"] {
        assert!(read(clean, f) == read(out, f), "{f} differs after a restart");
    }
    assert_eq!(summary(clean)["rows"], summary(out)["rows"], "every row counted once");
}

#[test]
fn a_panic_in_any_actor_restarts_the_pipeline_with_identical_results() {
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
        assert!(e.contains("restarting the pipeline from byte"), "{e}");
        assert_same(&clean, &out);
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
