//! The durable job registry: every job's request and state in `<state_dir>/jobs.json`, rewritten
//! atomically (temporary file, fsync, rename, fsync of the folder) on every change, so that after
//! a crash, `kill -9` or a restart every job is still known in the state it last reached.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of `jobs.json`; another version is refused, never misread.
const VERSION: u32 = 1;
const FILE: &str = "jobs.json";

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for a slot.
    Queued,
    /// Running (or, in a registry read at start-up, interrupted and to be resumed).
    Running,
    /// Reports written.
    Succeeded,
    /// Stopped by an error; may be resumed.
    Failed,
    /// Cancelled; its checkpoint is kept, so it may be resumed.
    Cancelled,
}

impl State {
    /// All states, for metrics.
    pub const ALL: [State; 5] =
        [State::Queued, State::Running, State::Succeeded, State::Failed, State::Cancelled];

    /// The lowercase name used in the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// Finished, one way or another.
    pub fn is_final(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

/// One job as the registry keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Identifier in URLs.
    pub id: String,
    /// Source as submitted (checked).
    pub source: String,
    /// Output name under the output root.
    pub output: String,
    /// The job's settings, as submitted.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Where it stands.
    pub state: State,
    /// Restarts per actor after failures (all runs), zeros included once the job has run.
    #[serde(default)]
    pub restarts: std::collections::BTreeMap<String, u64>,
    /// Rows rejected so far (as of the last update: live while running).
    pub rejected: u64,
    /// Rows processed (known once finished or stopped).
    #[serde(default)]
    pub rows: u64,
    /// Bytes of the source processed (known once finished or stopped).
    #[serde(default)]
    pub bytes: u64,
    /// Size of the source, when known (0 = unknown).
    #[serde(default)]
    pub total_bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// The exit code `wxflow run` would have given for that failure (2 usage, 3 data, 4 I/O,
    /// 5 internal, 6 supervision), so `wxflow status` can exit with it.
    #[serde(default)]
    pub exit_code: Option<u8>,
    /// Unix seconds of submission.
    pub created: u64,
    /// Unix seconds it last started.
    pub started: Option<u64>,
    /// Unix seconds it finished.
    pub finished: Option<u64>,
    /// Submission order, for the queue after a restart.
    pub seq: u64,
}

impl JobRecord {
    /// A job just submitted.
    pub fn queued(
        id: String,
        seq: u64,
        source: String,
        output: String,
        settings: serde_json::Map<String, serde_json::Value>,
    ) -> JobRecord {
        JobRecord {
            id,
            source,
            output,
            settings,
            state: State::Queued,
            restarts: Default::default(),
            rejected: 0,
            rows: 0,
            bytes: 0,
            total_bytes: 0,
            error: None,
            exit_code: None,
            created: now(),
            started: None,
            finished: None,
            seq,
        }
    }
}

/// The on-disk form.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    version: u32,
    next: u64,
    jobs: Vec<JobRecord>,
}

/// All jobs, in submission order, and where they are stored.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    next: u64,
    /// The jobs, oldest first.
    pub jobs: Vec<JobRecord>,
}

/// Why the registry cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// I/O on the state folder.
    #[error("cannot {what} {path}: {source}; check that daemon.state_dir is writable")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a registry this wxflow reads.
    #[error("{path} is not a usable job registry ({detail}); move it away to start with no jobs")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl Registry {
    /// Reads the registry in `dir`, or an empty one if there is none yet.
    pub fn open(dir: &Path) -> Result<Registry, RegistryError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::Io { what, path, source }
        };
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok(Registry { dir: dir.to_path_buf(), next: 1, jobs: Vec::new() });
        }
        let text = fs::read(&path).map_err(io("read", &path))?;
        let stored: Stored = serde_json::from_slice(&text)
            .map_err(|e| RegistryError::Corrupt { path: path.clone(), detail: e.to_string() })?;
        if stored.version != VERSION {
            let detail = format!("version {}, this wxflow reads {VERSION}", stored.version);
            return Err(RegistryError::Corrupt { path, detail });
        }
        Ok(Registry { dir: dir.to_path_buf(), next: stored.next, jobs: stored.jobs })
    }

    /// A fresh job id and submission number.
    pub fn next_id(&mut self) -> (String, u64) {
        let seq = self.next;
        self.next += 1;
        (format!("j{seq:06}"), seq)
    }

    /// The job with this id.
    pub fn get(&self, id: &str) -> Option<&JobRecord> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// The job with this id, to change it (then [`Registry::save`]).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut JobRecord> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Forgets the oldest finished jobs beyond `keep`, so the registry does not grow without
    /// bound; queued and running jobs are always kept.
    pub fn prune(&mut self, keep: usize) {
        let finished = self.jobs.iter().filter(|j| j.state.is_final()).count();
        let mut drop = finished.saturating_sub(keep);
        self.jobs.retain(|j| {
            let forget = drop > 0 && j.state.is_final();
            drop -= usize::from(forget);
            !forget
        });
    }

    /// Writes the registry atomically: temporary file, fsync, rename, fsync of the folder.
    pub fn save(&self) -> Result<(), RegistryError> {
        let stored = Stored { version: VERSION, next: self.next, jobs: self.jobs.clone() };
        let bytes = serde_json::to_vec_pretty(&stored).expect("the registry serializes");
        write_atomic(&self.dir, FILE, &bytes)
    }
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new file.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { what, path, source }
    };
    let mut file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))
}

pub use crate::date::unix_now as now;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reopen_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r = Registry::open(tmp.path()).unwrap();
        let (id, seq) = r.next_id();
        let mut job = JobRecord::queued(
            id.clone(),
            seq,
            "http://127.0.0.1/x.csv".into(),
            "x".into(),
            Default::default(),
        );
        job.state = State::Running;
        r.jobs.push(job);
        r.save().unwrap();
        let mut again = Registry::open(tmp.path()).unwrap();
        assert_eq!(again.get(&id).unwrap().state, State::Running);
        assert_ne!(again.next_id().0, id, "ids are never reused");
        assert!(!tmp.path().join("jobs.json.tmp").exists());
        again.jobs[0].state = State::Succeeded;
        again.jobs.push(JobRecord { id: "j2".into(), state: State::Queued, ..again.jobs[0].clone() });
        again.jobs.push(JobRecord { id: "j3".into(), state: State::Failed, ..again.jobs[0].clone() });
        again.prune(1);
        let left: Vec<&str> = again.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(left, ["j2", "j3"], "the oldest finished job is forgotten, the queued one kept");
        std::fs::write(tmp.path().join("jobs.json"), "{").unwrap();
        assert!(Registry::open(tmp.path()).unwrap_err().to_string().contains("move it away"));
    }
}
