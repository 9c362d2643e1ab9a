//! Range partials: what a cluster worker stores for one byte range of a job, in the checkpoint
//! format (the same framing, version and [`Snapshot`]), so a coordinator on any node can merge
//! them into the result of one pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::{seal_with, unseal};
use super::Snapshot;
use crate::report::PipelineStats;

const MAGIC: &[u8; 8] = b"WXFLOWRP";

/// How one range of a job ended on a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RangeResult {
    /// Processed: its partial states.
    Done(Box<RangePartial>),
    /// Failed in a way another delivery would not fix (bad data, a changed source, a refused
    /// request), or on its last allowed delivery: the job fails with this.
    Failed {
        /// The node that gave up.
        node: String,
        /// The error, as `wxflow run` would print it.
        message: String,
        /// The exit code `wxflow run` would have given.
        exit_code: u8,
    },
}

/// The partial result of the lines whose first byte lies in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangePartial {
    /// The range's number in its job (0 holds the header).
    pub index: u32,
    /// First byte (a line start).
    pub start: u64,
    /// Byte after the last line (a line start, or the source's end).
    pub end: u64,
    /// The line number the worker gave the range's first line: 1 for range 0, a placeholder
    /// (`index << 40`) for the others, whose absolute numbers only the merge knows.
    pub line_base: u64,
    /// Lines the range holds, blank lines (and, in range 0, the header) included.
    pub lines: u64,
    /// The node that processed it.
    pub node: String,
    /// States, row counts, header and the source's identity and settings, as in a checkpoint.
    pub snapshot: Snapshot,
    /// The range's `rejects.csv` records (no header line), numbered from `line_base`.
    pub rejects: Vec<u8>,
    /// How its pipeline behaved.
    pub stats: PipelineStats,
    /// Per-actor restarts while processing it.
    pub restarts: BTreeMap<String, u64>,
    /// Seconds it took.
    pub elapsed_secs: f64,
}

/// Encodes a range result with the checkpoint framing.
pub fn encode(r: &RangeResult) -> Vec<u8> {
    seal_with(MAGIC, 64 << 10, |out| postcard::to_extend(r, out).expect("range results always serialize"))
}

/// Decodes and checks a stored range result; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<RangeResult, String> {
    let payload = unseal(MAGIC, "wxflow range partial", bytes)?;
    postcard::from_bytes(payload).map_err(|e| format!("cannot decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_round_trip_and_damage_is_named() {
        let r = RangeResult::Failed { node: "n1".into(), message: "bad".into(), exit_code: 3 };
        let mut bytes = encode(&r);
        assert_eq!(decode(&bytes).unwrap(), r);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode(&bytes).unwrap_err().contains("checksum"));
        assert!(decode(b"WXFLOWCP0000000000000000").unwrap_err().contains("range partial"));
    }
}
