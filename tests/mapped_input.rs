//! Local files are mapped rather than read (`pipeline.map_files`): the same results either way, at
//! every chunk size, and a clear I/O error when the file shrinks under a running job.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{assert_same_results, gen_input, has_files, real_file, run, stderr};

#[test]
fn mapped_and_read_files_give_identical_results_at_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let input =
        gen_input(dir.path(), &["--days", "70", "--seed", "41", "--bad-rows", "25", "--blank-lines", "9"]);
    let input = input.to_str().unwrap();
    let read = dir.path().join("read");
    let o = run(
        &read,
        &["--source", input, "--set", "pipeline.map_files=false", "--set", "pipeline.chunk_size=1MiB"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for chunk in ["1", "100", "4KiB", "65537"] {
        let mapped = dir.path().join(format!("mapped-{chunk}"));
        let o = run(&mapped, &["--source", input, "--set", &format!("pipeline.chunk_size={chunk}")]);
        assert!(o.status.success(), "chunk {chunk}: {}", stderr(&o));
        assert_same_results(&read, &mapped, &format!("mapping with chunk_size {chunk}"));
    }
}

#[test]
fn the_real_export_mapped_equals_it_read() {
    let Some(file) = real_file() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (read, mapped) = (dir.path().join("read"), dir.path().join("mapped"));
    let args = ["--source", file.to_str().unwrap(), "--set", "pipeline.chunk_size=4KiB"];
    let o = run(&read, &[&args[..], &["--set", "pipeline.map_files=false"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mapped, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_results(&read, &mapped, "mapping the real export");
}

/// Starts a run slowed to seconds on a 2 MiB file, waits for its first checkpoint (so the file
/// is open and being read), truncates the file to 1,000 bytes and returns how the run ended and
/// its standard error.
fn truncated_mid_run(extra: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = gen_input(dir.path(), &["--size", "2MiB", "--seed", "43"]);
    let out = dir.path().join("out");
    // 32 chunks at 150 ms each on two parse workers: 2.4 s of work left when the file shrinks
    // after the first checkpoint (every chunk).
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("wxflow"))
        .args(["run", "--progress", "off", "--log-level", "warn", "--source"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--set", "pipeline.chunk_size=64KiB", "--set", "checkpoint.every_chunks=1"])
        .args(["--fault", "slow:parser:150"])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let checkpoint = out.join(".wxflow-checkpoint");
    while !has_files(&checkpoint) {
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        assert!(child.0.try_wait().unwrap().is_none(), "the run ended before its first checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::OpenOptions::new().write(true).open(&input).unwrap().set_len(1000).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not end within 120 s of the truncation");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, err)
}

/// Kills the child if the test fails before it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file truncated while a run maps it: without the SIGBUS handler the process dies silently
/// (signal 7); with it, exit code 4 (I/O) and a message saying what happened and what to do.
#[test]
fn a_file_truncated_mid_run_ends_it_with_an_io_error_that_says_so() {
    let (status, err) = truncated_mid_run(&[]);
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.contains("the input file became shorter while wxflow was reading it"), "{err}");
    assert!(err.contains("--set pipeline.map_files=false"), "{err}");
}

/// Read rather than mapped, a truncated file used to end the input early: the run succeeded with
/// reports on part of the file. Now the read fails at the byte reached, and the retry finds the
/// file changed: the run fails and says so.
#[test]
fn a_file_truncated_while_read_fails_the_run_instead_of_reporting_on_part_of_it() {
    let (status, err) = truncated_mid_run(&["--set", "pipeline.map_files=false"]);
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        err.contains("but had 2097200 bytes when the run opened it: another program truncated or rewrote it"),
        "{err}"
    );
    assert!(err.contains("changed while this job was reading it (size 2097200 -> 1000 bytes"), "{err}");
}
