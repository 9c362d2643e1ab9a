//! Durable runs through the real binary: checkpoints, resume after SIGKILL and after a
//! deterministic abort, from a file and over HTTP with `Range`, and every way a checkpoint can no
//! longer fit (changed source, other settings, standard input, corrupt files).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::range_server::{Behaviour, RangeServer};
use common::{assert_same_results, stderr, summary, wxflow};

/// The files whose bytes must not depend on how often a run was interrupted.
/// Small chunks and frequent checkpoints, so that a short input has many checkpoint intervals.
const KNOBS: [&str; 8] =
    ["--chunk-size", "64KiB", "--in-flight", "4", "--set", "checkpoint.every_chunks=8", "--progress", "off"];

/// A tiny deterministic generator (xorshift), so kill moments are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

fn generate(path: &Path, size: &str, seed: &str) {
    let o = wxflow()
        .args([
            "gen",
            "--size",
            size,
            "--seed",
            seed,
            "--bad-rows",
            "40",
            "--blank-lines",
            "40",
            "--crlf",
            "--out",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn run_args(source: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into(), "--source".into(), source.into(), "--out".into()];
    args.push(out.display().to_string());
    args.extend(KNOBS.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn clean_run(source: &str, out: &Path) -> Duration {
    let started = Instant::now();
    let o = wxflow().args(run_args(source, out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join(".wxflow-checkpoint").exists(), "a completed run removes its checkpoint");
    started.elapsed()
}

fn assert_same_outputs(clean: &Path, resumed: &Path) {
    assert_same_results(clean, resumed, "after interrupted runs");
}

/// One run of a kill loop: its stderr, and how many requests the test server saw from it.
struct KilledRun {
    log: String,
    requests: usize,
}

/// Runs the same command, SIGKILLing it at seeded random moments, until it finishes by itself.
/// Returns the number of kills that hit a running process and each run; `requests` counts the
/// test server's requests so far (a run killed while starting up may make none).
fn kill_until_done(
    args: &[String],
    out: &Path,
    clean_time: Duration,
    seed: u64,
    requests: &dyn Fn() -> usize,
) -> (u32, Vec<KilledRun>) {
    let bin = assert_cmd::cargo::cargo_bin("wxflow");
    let mut rng = Rng(seed);
    let (mut kills, mut runs) = (0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(240);
    let span = clean_time.as_millis() as u64;
    let mut seen = requests();
    let mut record = |log: String| {
        let now = requests();
        runs.push(KilledRun { log, requests: now - seen });
        seen = now;
    };
    for _ in 0..150 {
        assert!(Instant::now() < deadline, "kill loop took too long");
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&bin)
            .args(args)
            .env("WXFLOW__LOG__PROGRESS", "off")
            .stdout(Stdio::null())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(rng.between(span / 60 + 5, span / 20 + 10));
        std::thread::sleep(wait);
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(err.path()).unwrap();
            assert!(status.success(), "run failed: {log}");
            record(log);
            return (kills, runs);
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        record(std::fs::read_to_string(err.path()).unwrap());
        if out.join("summary.json").exists() && !out.join(".wxflow-checkpoint/checkpoint.bin").exists() {
            // The kill landed after the job completed (reports written, checkpoint cleared): the
            // same command would now refuse to overwrite finished results without --force.
            return (kills, runs);
        }
    }
    panic!("the job did not finish within 150 runs ({kills} kills)");
}

fn resumed_from(log: &str) -> Option<u64> {
    let rest = log.split("resuming from byte ").nth(1)?;
    rest.split(',').next()?.parse().ok()
}

#[test]
fn sigkill_at_random_moments_then_rerun_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    generate(&input, "50MB", "61");
    let source = input.to_str().unwrap();
    let clean = dir.path().join("clean");
    let clean_time = clean_run(source, &clean);
    let out = dir.path().join("killed");
    let (kills, runs) = kill_until_done(&run_args(source, &out, &[]), &out, clean_time, 0x5eed_0001, &|| 0);
    eprintln!("{kills} kills, {} runs", runs.len());
    let logs: Vec<&String> = runs.iter().map(|r| &r.log).collect();
    assert!(kills >= 10, "only {kills} kills hit a running process");
    let resumes = logs.iter().filter(|l| resumed_from(l).is_some_and(|b| b > 0)).count();
    assert!(resumes >= 3, "runs resumed from checkpoints only {resumes} times");
    assert_same_outputs(&clean, &out);
    let s = summary(&out);
    assert!(s["resumed"]["runs"].as_u64().unwrap() >= 2, "{}", s["resumed"]);
}

#[test]
fn sigkill_over_http_resumes_with_range_and_refetches_little() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    generate(&input, "50MB", "62");
    let body = std::fs::read(&input).unwrap();
    let size = body.len() as u64;
    let server = RangeServer::start(body);
    server.set_rate(40_000_000);
    let clean = dir.path().join("clean");
    let clean_time = clean_run(&server.url, &clean);
    let before = server.log().len();
    let out = dir.path().join("killed");
    let requests = || {
        // A request sent just before a kill may still be on its way to the server's log.
        std::thread::sleep(Duration::from_millis(30));
        server.log().len()
    };
    let (kills, runs) =
        kill_until_done(&run_args(&server.url, &out, &[]), &out, clean_time, 0x5eed_0002, &requests);
    eprintln!("{kills} kills, {} runs", runs.len());
    assert!(kills >= 10, "only {kills} kills hit a running process");
    assert_same_outputs(&clean, &out);

    let served = &server.log()[before..];
    assert!(runs.iter().all(|r| r.requests <= 1), "at most one request per run");
    // A run killed while starting up made no request; pair the others with theirs.
    let logs: Vec<&String> = runs.iter().filter(|r| r.requests == 1).map(|r| &r.log).collect();
    assert_eq!(served.len(), logs.len(), "one request per run that got that far");
    // Each resumed run asked for exactly the bytes after its checkpoint, with If-Range.
    let per_kill = (8 + 4 + 2) * 64 * 1024 + 4 * 1024 * 1024; // interval + in-flight + socket buffers
    let mut refetched = 0u64;
    for (i, (req, log)) in served.iter().zip(&logs).enumerate() {
        match resumed_from(log) {
            Some(byte) => {
                assert_eq!(req.range.as_deref(), Some(format!("bytes={byte}-").as_str()), "run {i}");
                assert!(req.if_range.is_some(), "run {i} sent no If-Range");
                assert_eq!((req.status, req.start), (206, byte));
            }
            None => assert_eq!(req.range, None, "run {i} asked for a range without resuming"),
        }
        if i > 0 {
            let prev = &served[i - 1];
            let again = (prev.start + prev.sent).saturating_sub(req.start);
            assert!(again <= per_kill, "run {i} fetched {again} bytes again (bound {per_kill})");
            refetched += again;
        }
    }
    let total: u64 = served.iter().map(|r| r.sent).sum();
    assert_eq!(total, size + refetched, "bytes sent = the file once + what kills made us fetch again");
}

/// Runs with `abort@N` until the process aborts, leaving a checkpoint behind.
fn abort_at(source: &str, out: &Path, chunk: u32) {
    let fault = format!("abort@{chunk}");
    let o = wxflow().args(run_args(source, out, &["--fault", &fault])).output().unwrap();
    assert!(!o.status.success(), "abort@{chunk} must kill the run");
    assert!(stderr(&o).contains("fault armed: abort@"), "{}", stderr(&o));
    assert!(out.join(".wxflow-checkpoint/checkpoint.bin").is_file(), "a checkpoint was left: {}", stderr(&o));
}

fn small_input(dir: &Path) -> PathBuf {
    let input = dir.join("input.csv");
    generate(&input, "4MB", "63");
    input
}

/// A 4 MB input and an output directory left with a checkpoint by `abort@chunk`.
fn interrupted(chunk: u32) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let out = dir.path().join("out");
    abort_at(input.to_str().unwrap(), &out, chunk);
    (dir, input, out)
}

#[test]
fn abort_then_rerun_resumes_and_matches_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let source = input.to_str().unwrap();
    let clean = dir.path().join("clean");
    clean_run(source, &clean);
    let out = dir.path().join("out");
    abort_at(source, &out, 30);
    let o = wxflow().args(run_args(source, &out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let byte = resumed_from(&stderr(&o)).expect("the rerun says where it resumed");
    // abort@30 fires as chunk 30 is cut, with at most 4 chunks in flight: the checkpoints after
    // chunks 8 and 16 (chunks of at most 64 KiB) are certainly written, the one after 32 cannot be.
    assert!(byte > 8 * 64 * 1024 && byte <= 30 * 64 * 1024, "resumed from byte {byte}");
    assert_same_outputs(&clean, &out);
    let s = summary(&out);
    assert_eq!(s["resumed"]["runs"], 2);
    assert_eq!(s["resumed"]["from_byte"], byte);
    assert!(!out.join(".wxflow-checkpoint").exists());
}

#[test]
fn fresh_discards_the_checkpoint() {
    let (_dir, input, out) = interrupted(20);
    let source = input.to_str().unwrap();
    let o = wxflow().args(run_args(source, &out, &["--fresh"])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("resuming"), "{}", stderr(&o));
    assert_eq!(summary(&out)["resumed"], serde_json::Value::Null);
}

#[test]
fn a_changed_file_is_refused_naming_what_changed() {
    let (_dir, input, out) = interrupted(20);
    let source = input.to_str().unwrap();
    let mut data = std::fs::read(&input).unwrap();
    data.truncate(data.len() / 2);
    std::fs::write(&input, &data).unwrap();
    let o = wxflow().args(run_args(source, &out, &[])).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("changed since the checkpoint") && e.contains("size") && e.contains("--fresh"), "{e}");
}

#[test]
fn other_settings_are_refused_naming_the_keys() {
    let (_dir, input, out) = interrupted(20);
    let source = input.to_str().unwrap();
    let o = wxflow().args(run_args(source, &out, &["--set", "window.hi_center=20.0"])).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("other settings") && e.contains("window.hi_band") && e.contains("--fresh"), "{e}");
    // Chunking and parallelism never change results, so they may differ on resume.
    let o = wxflow()
        .args(run_args(source, &out, &["--workers", "1", "--set", "checkpoint.every_chunks=3"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn standard_input_cannot_resume_and_says_so() {
    let (_dir, input, out) = interrupted(20);
    let o = wxflow().args(run_args("-", &out, &[])).pipe_stdin(&input).unwrap().output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("standard input") && e.contains("cannot be resumed") && e.contains("--fresh"), "{e}");
}

#[test]
fn a_corrupt_latest_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let source = input.to_str().unwrap();
    let clean = dir.path().join("clean");
    clean_run(source, &clean);
    let out = dir.path().join("out");
    abort_at(source, &out, 30);
    let latest = out.join(".wxflow-checkpoint/checkpoint.bin");
    assert!(out.join(".wxflow-checkpoint/checkpoint.prev.bin").is_file());
    let mut bytes = std::fs::read(&latest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&latest, &bytes).unwrap();
    let o = wxflow().args(run_args(source, &out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("warning:") && e.contains("checksum"), "{e}");
    assert!(resumed_from(&e).is_some(), "{e}");
    assert_same_outputs(&clean, &out);
}

#[test]
fn http_resume_uses_range_and_detects_a_changed_source() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let body = std::fs::read(&input).unwrap();
    let server = RangeServer::start(body.clone());
    let clean = dir.path().join("clean");
    clean_run(&server.url, &clean);

    // Resumed with Range + If-Range: only the missing bytes are fetched.
    let out = dir.path().join("out");
    abort_at(&server.url, &out, 30);
    let o = wxflow().args(run_args(&server.url, &out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let byte = resumed_from(&stderr(&o)).unwrap();
    let last = server.log().last().unwrap().clone();
    assert_eq!((last.status, last.start, last.sent), (206, byte, body.len() as u64 - byte));
    assert_same_outputs(&clean, &out);

    // A server that ignores Range: the bytes before the checkpoint are skipped, results identical.
    let out = dir.path().join("ignored");
    abort_at(&server.url, &out, 30);
    server.push(Behaviour::IgnoreRange);
    let o = wxflow().args(run_args(&server.url, &out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("ignored the Range request"), "{}", stderr(&o));
    assert_eq!(server.log().last().unwrap().status, 200);
    assert_same_outputs(&clean, &out);

    // The file changed on the server: If-Range fails, the 200 has a new ETag: refused.
    let out = dir.path().join("changed");
    abort_at(&server.url, &out, 30);
    let mut changed = body;
    changed.extend_from_slice(b"01/08/2006,00:00,1.0,1.0,1.0\n");
    server.set_body(changed);
    let o = wxflow().args(run_args(&server.url, &out, &[])).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("changed since the checkpoint") && e.contains("ETag"), "{e}");
}

/// Sends `signal` to a run part-way, checks the exit code and the checkpoint, then resumes.
fn stop_with(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let source = input.to_str().unwrap();
    let clean = dir.path().join("clean");
    clean_run(source, &clean);
    let out = dir.path().join("out");
    // A slow task actor makes the run take seconds, so the signal lands part-way.
    let slow = ["--fault", "slow:hottest:40"];
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("wxflow"))
        .args(run_args(source, &out, &slow))
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.join(".wxflow-checkpoint/checkpoint.bin").exists() {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let e = std::fs::read_to_string(err.path()).unwrap();
    assert_eq!(status.code(), Some(code), "{e}");
    assert!(e.contains("run the same command again to resume"), "{e}");
    let byte: u64 = e.split(" at byte ").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    let o = wxflow().args(run_args(source, &out, &[])).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(resumed_from(&stderr(&o)), Some(byte), "resumes exactly where the stop checkpointed");
    assert_same_outputs(&clean, &out);
}

#[test]
fn sigterm_checkpoints_and_exits_143_then_resumes() {
    stop_with("-TERM", 143);
}

#[test]
fn sigint_checkpoints_and_exits_130_then_resumes() {
    stop_with("-INT", 130);
}
