//! How a coordinator cuts a job into work items: it reads the header once (so every range can
//! parse its lines, and a bad header fails the job as `wxflow run` would), learns the source's
//! size and identity, and cuts the bytes after the header into ranges of `cluster.range_bytes`.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::chunk::Chunker;
use crate::config::Plan;
use crate::durable::SourceIdentity;
use crate::error::Error;
use crate::schema::HeaderSearch;
use crate::source::{self, OpenOptions, SourceSpec};

/// A job's cut into ranges, as recorded with the job so that a node taking it over publishes the
/// same ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// What the source was when the job started; every range checks it still is.
    pub identity: SourceIdentity,
    /// The header line (without its line ending).
    pub header: Vec<u8>,
    /// Blank lines before the header.
    pub leading_blank: u64,
    /// Byte after the header's line break: where range 0 begins. `None` when the source is read
    /// as one whole range from byte 0 (its size is unknown).
    pub body_start: Option<u64>,
    /// Bytes per range.
    pub range_bytes: u64,
    /// Number of ranges.
    pub count: u32,
}

impl Layout {
    /// The planned bounds `[a, b)` of range `index`; the worker moves each bound to the next line
    /// start, so consecutive ranges own consecutive lines.
    pub fn bounds(&self, index: u32) -> (u64, u64) {
        let (Some(body), Some(size)) = (self.body_start, self.identity.size) else { return (0, u64::MAX) };
        let at = |k: u32| if k >= self.count { size } else { body + u64::from(k) * self.range_bytes };
        (at(index), at(index + 1))
    }

    /// Line number of the header's following line: where range 0's numbering starts.
    pub fn first_body_line(&self) -> u64 {
        self.leading_blank + 2
    }
}

/// Reads the start of the source and plans its ranges (at least one).
pub async fn plan_ranges(plan: &Plan, opts: &OpenOptions, range_bytes: u64) -> Result<Layout, Error> {
    let opened = source::open(&plan.source, opts, None).await?;
    let identity = opened.identity;
    let mut stream = opened.stream;
    let mut chunker = Chunker::new(plan.pipeline.chunk_size, plan.pipeline.max_line, 0, 1);
    let mut search = HeaderSearch::default();
    let mut read = 0u64;
    let header = loop {
        let block = stream.next().await.transpose()?;
        let eof = block.is_none();
        if let Some(block) = block {
            read += block.len() as u64;
            chunker.push_bytes(block);
        }
        if let Some((_, header)) = search.step(&mut chunker, eof, &plan.columns)? {
            break header;
        }
    };
    drop(stream);
    let body_start = read - chunker.buffered() as u64;
    let seekable = identity.size.is_some() && !matches!(plan.source, SourceSpec::Stdin);
    let (body_start, count) = match identity.size {
        Some(size) if seekable => {
            let body = size.saturating_sub(body_start);
            (Some(body_start), body.div_ceil(range_bytes).max(1))
        }
        _ => (None, 1),
    };
    let count = u32::try_from(count).map_err(|_| {
        Error::Usage(format!(
            "the source would be cut into {count} ranges of {range_bytes} bytes, more than a job may have; \
             raise cluster.range_bytes"
        ))
    })?;
    Ok(Layout { identity, header, leading_blank: search.leading_blank, body_start, range_bytes, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(body_start: Option<u64>, size: u64, range_bytes: u64) -> Layout {
        let count = body_start.map_or(1, |b| size.saturating_sub(b).div_ceil(range_bytes).max(1) as u32);
        Layout {
            identity: SourceIdentity {
                location: "x".into(),
                size: Some(size),
                etag: None,
                last_modified: None,
                mtime_ns: None,
            },
            header: b"Date,Time".to_vec(),
            leading_blank: 1,
            body_start,
            range_bytes,
            count,
        }
    }

    #[test]
    fn ranges_tile_the_body_after_the_header() {
        let l = layout(Some(10), 100, 40);
        assert_eq!(l.count, 3);
        assert_eq!([l.bounds(0), l.bounds(1), l.bounds(2)], [(10, 50), (50, 90), (90, 100)]);
        assert_eq!(l.first_body_line(), 3);
        let whole = layout(None, 100, 40);
        assert_eq!((whole.count, whole.bounds(0)), (1, (0, u64::MAX)));
        let header_only = layout(Some(100), 100, 40);
        assert_eq!((header_only.count, header_only.bounds(0)), (1, (100, 100)));
    }
}
