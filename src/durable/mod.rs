//! The checkpoint format: how far a job got, and its partial states, on disk.
//!
//! The unit of durable work is a byte range with its partial analysis states, serializable and
//! versioned: a killed run resumes from the last [`Snapshot`], and a later step can hand byte
//! ranges to other hosts without changing the format. [`store`] writes snapshots atomically with a
//! checksum and keeps the previous good one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::RowCounts;
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;

pub mod partial;
pub mod store;

/// Version of the encoded [`Snapshot`]; a file of another version is refused, never misread.
pub const FORMAT_VERSION: u32 = 4;

/// Everything needed to continue a job from a byte offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// What the source was, so a resumed run can tell whether it still reads the same data.
    pub source: SourceIdentity,
    /// Every setting that changes results, as "section.key" → canonical value text.
    pub settings: BTreeMap<String, String>,
    /// Where processing stands.
    pub position: Position,
    /// Row counts up to `position` (blank lines before the header not included).
    pub rows: RowCounts,
    /// Bytes of rejects.csv (its partial file) written up to `position`.
    pub rejects_len: u64,
    /// The header line as read (without line ending), so a resumed run can rebuild the schema.
    pub header: Vec<u8>,
    /// Blank lines before the header.
    pub leading_blank: u64,
    /// How many runs have contributed (1 for the first run).
    pub runs: u32,
    /// Checkpoints written so far across runs.
    pub checkpoints: u64,
    /// Restarts per actor so far across runs (as of this checkpoint).
    pub restarts: BTreeMap<String, u64>,
    /// Fetch retries so far across runs (as of this checkpoint).
    pub retries: u64,
    /// Hottest-time state up to `position`.
    pub hottest: Hottest,
    /// Window state up to `position`.
    pub window: Window,
    /// Forecast state up to `position`.
    pub forecast: Forecast,
}

impl Snapshot {
    /// Where a run that continues from this snapshot resumes, for `summary.json`.
    pub fn resumed(&self) -> crate::report::Resumed {
        crate::report::Resumed {
            byte: self.position.byte,
            line: self.position.line,
            rows: self.rows.processed,
            runs: self.runs + 1,
        }
    }
}

/// What identifies a source's content without reading it: a resumed run must read the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// URL, canonical file path, or "-".
    pub location: String,
    /// Total size in bytes, when known.
    pub size: Option<u64>,
    /// HTTP ETag.
    pub etag: Option<String>,
    /// HTTP Last-Modified.
    pub last_modified: Option<String>,
    /// File modification time in nanoseconds since the epoch.
    pub mtime_ns: Option<i128>,
}

impl SourceIdentity {
    /// What differs between this (stored) identity and the current one, for the message that
    /// refuses to resume; empty when they match. Fields unknown on either side are not compared,
    /// the location always is.
    pub fn changes(&self, now: &SourceIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.location != now.location {
            out.push(format!("location {} -> {}", self.location, now.location));
        }
        if let (Some(a), Some(b)) = (self.size, now.size) {
            if a != b {
                out.push(format!("size {a} -> {b} bytes"));
            }
        }
        if let (Some(a), Some(b)) = (&self.etag, &now.etag) {
            if a != b {
                out.push(format!("ETag {a} -> {b}"));
            }
        }
        if let (Some(a), Some(b)) = (&self.last_modified, &now.last_modified) {
            if a != b {
                out.push(format!("Last-Modified {a} -> {b}"));
            }
        }
        if let (Some(a), Some(b)) = (self.mtime_ns, now.mtime_ns) {
            if a != b {
                out.push("modification time changed".to_string());
            }
        }
        out
    }
}

/// How far processing got: the first byte, chunk number and line number not yet processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Byte offset.
    pub byte: u64,
    /// Chunk number.
    pub chunk: u64,
    /// Line number (the header is line 1).
    pub line: u64,
}

/// Keys whose values differ between two settings maps, as "key: old -> new".
pub fn settings_changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let unset = String::from("(unset)");
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k).unwrap_or(&unset), new.get(k).unwrap_or(&unset));
            (a != b).then(|| format!("{k}: {a} -> {b}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SourceIdentity {
        SourceIdentity {
            location: "http://h/x.csv".into(),
            size: Some(100),
            etag: Some("\"a\"".into()),
            last_modified: None,
            mtime_ns: None,
        }
    }

    #[test]
    fn identity_changes_name_what_differs() {
        assert!(id().changes(&id()).is_empty());
        let now = SourceIdentity { size: Some(120), etag: Some("\"b\"".into()), ..id() };
        assert_eq!(id().changes(&now), vec!["size 100 -> 120 bytes", "ETag \"a\" -> \"b\""]);
        let unknown = SourceIdentity { size: None, etag: None, ..id() };
        assert!(id().changes(&unknown).is_empty(), "unknown fields are not compared");
    }

    #[test]
    fn settings_changes_list_keys() {
        let a: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let b: BTreeMap<String, String> = [("a".into(), "1".into()), ("c".into(), "3".into())].into();
        assert_eq!(settings_changes(&a, &b), vec!["b: 2 -> (unset)", "c: (unset) -> 3"]);
    }
}
