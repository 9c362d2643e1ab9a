//! A node's worker: pulls range work items from the shared JetStream consumer, processes each with
//! the pipeline `wxflow run` uses (reading only that range: a seek in a file, a `Range` request
//! over HTTP), keeps the item alive with in-progress acks while it works, stores the range's
//! partial states and only then acks. A node that dies mid-range never acks, so JetStream
//! redelivers the range to another node after `cluster.ack_wait_secs`; a range processed twice is
//! stored twice under the same name, and the merge takes it once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::Cluster;
use crate::actors::supervisor::Supervisor;
use crate::config::Plan;
use crate::durable::partial::{RangePartial, RangeResult};
use crate::durable::{settings_changes, Position, Snapshot, FORMAT_VERSION};
use crate::error::{Error, SourceError};
use crate::output::OutputDir;
use crate::pipeline::{self, Extent};
use crate::source::range::line_start_at;

/// One range of one job, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Job id.
    pub job: String,
    /// Range number.
    pub index: u32,
    /// The job's source (as checked by the node that accepted it).
    pub source: String,
    /// The job's own settings (on top of each node's configuration).
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Every result-changing setting as the coordinator resolved it: a node whose configuration
    /// resolves differently refuses the range rather than compute something else.
    pub result_settings: BTreeMap<String, String>,
    /// The job's cut, header and source identity.
    pub layout: Layout,
}

/// Line number placeholder of range `index`'s first line (range 0 counts absolutely).
pub fn line_base(layout: &Layout, index: u32) -> u64 {
    match (index, layout.body_start) {
        (_, None) => 1,
        (0, Some(_)) => layout.first_body_line(),
        (k, Some(_)) => u64::from(k) << 40,
    }
}

/// Pulls and processes work items until the node stops, one per free slot
/// (`cluster.ranges_at_once`); reconnects after errors.
pub async fn run(cluster: Arc<Cluster>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(cluster.plan.ranges_at_once));
    let mut stop = cluster.stop_rx();
    loop {
        let consumer = match cluster.bus.consumer(&cluster.plan).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("worker: {e}; retrying in 1 s");
                if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("never closed"),
                _ = stop.changed() => return,
            };
            let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages().await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("worker: cannot pull work: {e}; retrying in 1 s");
                    drop(permit);
                    if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    break;
                }
            };
            let next = tokio::select! {
                next = batch.next() => next,
                _ = stop.changed() => return,
            };
            match next {
                Some(Ok(msg)) => {
                    let cluster = cluster.clone();
                    tokio::spawn(async move {
                        handle(&cluster, msg).await;
                        drop(permit);
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!("worker: pull ended: {e}");
                    drop(permit);
                }
                None => drop(permit),
            }
        }
    }
}

/// Waits `d`; `true` if the node is stopping.
async fn sleep_or_stop(stop: &mut tokio::sync::watch::Receiver<Option<i32>>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => stop.borrow().is_some(),
        _ = stop.changed() => true,
    }
}

/// Processes one delivery of a work item, from decoding to the ack.
async fn handle(cluster: &Arc<Cluster>, msg: jetstream::Message) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let item: WorkItem = match serde_json::from_slice(&msg.payload) {
        Ok(item) => item,
        Err(e) => {
            tracing::error!("worker: dropping a work item that does not decode ({e})");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    if delivered > 1 {
        cluster.metrics.redeliveries.inc();
        tracing::info!(job = %item.job, range = item.index, delivered, "range redelivered");
    }
    if matches!(cluster.bus.get_result(&item.job, item.index).await, Ok(Some(_))) {
        let _ = msg.ack().await; // already done by another delivery
        return;
    }
    if let Ok(Some(record)) = cluster.bus.jobs.get(&item.job).await {
        let state = serde_json::from_slice::<serde_json::Value>(&record).ok();
        let state = state.as_ref().and_then(|r| r["state"].as_str()).unwrap_or("running");
        if matches!(state, "cancelled" | "failed") {
            tracing::info!(job = %item.job, range = item.index, state, "skipping a range of a job that ended");
            let _ = msg.ack().await;
            return;
        }
    }
    tracing::info!(job = %item.job, range = item.index, delivered, "range started");
    let heartbeat = keep_alive(&msg, cluster.plan.ack_wait);
    let work = {
        let (cluster, item) = (cluster.clone(), item.clone());
        tokio::task::spawn_blocking(move || process(&cluster, &item))
    };
    let result =
        work.await.unwrap_or_else(|e| Err(Error::Internal(format!("the range's thread failed: {e}"))));
    heartbeat.abort();
    let last = delivered >= i64::from(cluster.plan.max_deliver);
    let stored = match result {
        Ok(partial) => {
            cluster.metrics.ranges.inc();
            tracing::info!(job = %item.job, range = item.index, rows = partial.snapshot.rows.processed, "range done");
            RangeResult::Done(Box::new(partial))
        }
        Err(e) if retry(&e) && !last && cluster.stop_rx().borrow().is_none() => {
            tracing::warn!(job = %item.job, range = item.index, "range failed ({e}); it is redelivered");
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
            return;
        }
        Err(Error::Interrupted { .. }) => {
            let _ = msg.ack_with(AckKind::Nak(None)).await; // stopping: another node takes it
            return;
        }
        Err(e) => {
            tracing::warn!(job = %item.job, range = item.index, "range failed: {e}");
            let message = if last && retry(&e) {
                format!(
                    "range {} failed on all {delivered} deliveries, the last on node {}: {e}",
                    item.index, cluster.plan.node_id
                )
            } else {
                e.to_string()
            };
            RangeResult::Failed {
                node: cluster.plan.node_id.clone(),
                message,
                exit_code: e.exit_code() as u8,
            }
        }
    };
    if let Err(e) = store(cluster, &item, &stored).await {
        tracing::warn!("{e}; the range is redelivered");
        let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        return;
    }
    cluster.bus.announce(&item.job).await;
    if let Err(e) = msg.double_ack().await {
        tracing::warn!("range stored but its ack failed ({e}); a redelivery will find it done");
    }
}

/// Stores a result, retrying while the server is briefly away (a restart).
async fn store(
    cluster: &Cluster,
    item: &WorkItem,
    result: &RangeResult,
) -> Result<(), crate::error::NatsError> {
    let mut attempt = 0;
    loop {
        match cluster.bus.put_result(&item.job, item.index, result).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 30 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Sends in-progress acks every third of `ack_wait` until aborted, so a long range is not
/// redelivered while it is being worked on.
fn keep_alive(msg: &jetstream::Message, ack_wait: Duration) -> tokio::task::JoinHandle<()> {
    let msg = msg.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ack_wait / 3).await;
            let _ = msg.ack_with(AckKind::Progress).await;
        }
    })
}

/// Worth another delivery, possibly on another node: a source that broke off or timed out, a
/// server error, a failed actor. Bad data, a refused request or a changed source are not.
fn retry(e: &Error) -> bool {
    match e {
        Error::Source(SourceError::Read { .. } | SourceError::Connect { .. }) => true,
        Error::Source(SourceError::HttpStatus { status, .. }) => status.starts_with('5'),
        Error::ActorFailed { .. } | Error::GaveUp { .. } | Error::Internal(_) | Error::Output(_) => true,
        _ => false,
    }
}

/// Processes one range on this thread (blocking): finds its line-aligned bounds, runs the
/// pipeline over exactly those bytes, and gathers its partial.
fn process(cluster: &Cluster, item: &WorkItem) -> Result<RangePartial, Error> {
    let started = std::time::Instant::now();
    let scratch = cluster.host.scratch().join(format!("{}-{}", item.job, item.index));
    let plan = range_plan(cluster, item, &scratch)?;
    let opts = pipeline::open_options(&plan);
    let layout = &item.layout;
    let base = line_base(layout, item.index);
    let runtime = tokio::runtime::Handle::current();
    let (start, end, extent) = match layout.body_start {
        None => (0, None, Extent::default()),
        Some(_) => {
            let (a, b) = layout.bounds(item.index);
            let s = runtime.block_on(line_start_at(&plan.source, &opts, &layout.identity, a))?;
            let e = runtime.block_on(line_start_at(&plan.source, &opts, &layout.identity, b))?.max(s);
            let snapshot = start_snapshot(&plan, layout, Position { byte: s, chunk: 0, line: base });
            (s, Some(e), Extent { resume: Some(snapshot), until: Some(e) })
        }
    };
    let mut partial = RangePartial {
        index: item.index,
        start,
        end: end.unwrap_or(0),
        line_base: base,
        lines: 0,
        node: cluster.plan.node_id.clone(),
        snapshot: start_snapshot(&plan, layout, Position { byte: start, chunk: 0, line: base }),
        rejects: Vec::new(),
        stats: Default::default(),
        restarts: BTreeMap::new(),
        elapsed_secs: 0.0,
    };
    if end == Some(start) {
        return Ok(partial); // no line begins in this range
    }
    let out = OutputDir::prepare(&scratch, true)?;
    let supervisor = Arc::new(Mutex::new(Supervisor::new(plan.supervision.clone())));
    let hooks = crate::pipeline::Hooks { stop: Some(cluster.stop_rx()), ..cluster.host.hooks() };
    let parts = pipeline::run_parts_blocking(&plan, &out, &hooks, extent, &supervisor);
    let rejects = parts.as_ref().ok().map(|p| std::fs::read(&p.checkpoint.rejects_path));
    let _ = std::fs::remove_dir_all(&scratch);
    let parts = parts?;
    let rejects = rejects
        .expect("set when parts are")
        .map_err(|e| Error::Internal(format!("cannot read the range's rejects: {e}")))?;
    let cp = parts.checkpoint;
    partial.rejects = match memchr::memchr(b'\n', &rejects) {
        Some(i) => rejects[i + 1..].to_vec(), // without the header line
        None => Vec::new(),
    };
    partial.lines = match layout.body_start {
        None => parts.fetched.leading_blank + 1 + cp.rows.read,
        Some(_) => cp.rows.read,
    };
    partial.end = end.unwrap_or(parts.fetched.bytes);
    partial.stats = parts.stats;
    partial.restarts = supervisor.lock().unwrap_or_else(|e| e.into_inner()).counts();
    partial.elapsed_secs = started.elapsed().as_secs_f64();
    let s = &mut partial.snapshot;
    s.position = Position { byte: partial.end, chunk: cp.chunks, line: base + partial.lines };
    s.rows = cp.rows;
    s.retries = parts.fetched.retries;
    s.hottest = cp.states.hottest;
    s.window = cp.states.window;
    s.forecast = cp.states.forecast;
    Ok(partial)
}

/// The job's plan on this node, for one range: no checkpoints (a range is redone whole), one
/// connection; refused if this node's configuration gives other results than the coordinator's.
fn range_plan(cluster: &Cluster, item: &WorkItem, scratch: &std::path::Path) -> Result<Plan, Error> {
    let mut plan = cluster.host.plan(&item.source, scratch, &item.settings).map_err(Error::Usage)?;
    let changes = settings_changes(&item.result_settings, &plan.result_settings());
    if !changes.is_empty() {
        return Err(Error::Usage(format!(
            "node {}'s configuration gives other results for job {} than its coordinator's ({}); give every node \
             the same configuration",
            cluster.plan.node_id,
            item.job,
            changes.join("; ")
        )));
    }
    plan.checkpoint.enabled = false;
    plan.pipeline.connections = 1;
    plan.plots = false;
    Ok(plan)
}

/// A snapshot at `position` with the job's header and fresh states: where a range's pipeline
/// starts, as a resumed run would.
fn start_snapshot(plan: &Plan, layout: &Layout, position: Position) -> Snapshot {
    let empty = pipeline::empty_states(plan);
    Snapshot {
        version: FORMAT_VERSION,
        source: layout.identity.clone(),
        settings: plan.result_settings(),
        position,
        rows: Default::default(),
        rejects_len: 0,
        header: layout.header.clone(),
        leading_blank: 0,
        runs: 0,
        checkpoints: 0,
        restarts: BTreeMap::new(),
        retries: 0,
        hottest: empty.hottest,
        window: empty.window,
        forecast: empty.forecast,
    }
}
