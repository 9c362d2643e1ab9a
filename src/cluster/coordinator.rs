//! The coordinator of a cluster job: holds the job's lease, queues its ranges, waits for their
//! partials (announced by the workers, polled as well), merges them and writes the reports as
//! `wxflow run` would. The job record in the cluster's key-value bucket is the truth every node
//! answers from; the lease (a key that expires unless renewed) is what lets another node's
//! [`watch_leases`] take the job over when its coordinator dies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::layout::{self, Layout};
use super::worker::WorkItem;
use super::{merge, Cluster};
use crate::config::Plan;
use crate::durable::partial::{RangePartial, RangeResult};
use crate::error::{Error, ExitCode};
use crate::job::{self, Done};
use crate::output::OutputDir;
use crate::pipeline;
use crate::progress::Progress;

/// A job as the cluster knows it: what the API shows (the same fields as a local job's view)
/// plus the cut of its source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedRecord {
    /// Job id (cluster-wide).
    pub id: String,
    /// Source as submitted.
    pub source: String,
    /// Output name under the coordinator's output root.
    pub output: String,
    /// The job's own settings.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// queued, running, succeeded, failed or cancelled.
    pub state: String,
    /// Bytes and rows of the ranges done so far.
    pub progress: SharedProgress,
    /// Restarts per actor over all ranges.
    pub restarts: BTreeMap<String, u64>,
    /// Rows rejected so far.
    pub rejected: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// The exit code `wxflow run` would have given for that failure.
    pub exit_code: Option<u8>,
    /// Unix seconds of submission.
    pub created: u64,
    /// Unix seconds it (last) started.
    pub started: Option<u64>,
    /// Unix seconds it finished.
    pub finished: Option<u64>,
    /// Who coordinates it and how far its ranges are.
    pub cluster: ClusterInfo,
    /// The cut of its source, once planned.
    pub layout: Option<Layout>,
}

/// The progress part of a [`SharedRecord`], shaped like a local job's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SharedProgress {
    /// Bytes of finished ranges.
    pub bytes: u64,
    /// Source size (0 = unknown).
    pub total_bytes: u64,
    /// Rows of finished ranges.
    pub rows: u64,
}

/// The cluster part of a [`SharedRecord`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Node holding the job's lease.
    pub coordinator: String,
    /// Ranges in the job.
    pub ranges: u32,
    /// Ranges done.
    pub ranges_done: u32,
    /// Nodes that processed its ranges, and how many each.
    pub nodes: BTreeMap<String, u32>,
}

/// A job to coordinate, as the daemon that accepted it knows it.
#[derive(Debug, Clone)]
pub struct ClusterJob {
    /// Job id.
    pub id: String,
    /// Source as submitted (checked).
    pub source: String,
    /// Output name.
    pub output: String,
    /// The job's settings.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds of submission.
    pub created: u64,
}

/// How coordinating a job ended on this node.
#[derive(Debug)]
pub enum Coordinated {
    /// This node finished it: its reports are written.
    Done(Done),
    /// Another node coordinates (or coordinated) it; its record as last seen.
    Elsewhere(SharedRecord),
}

/// Becomes `Some(signal)` when the job is cancelled.
pub type Cancel = tokio::sync::watch::Receiver<Option<i32>>;

/// What waiting for the ranges came to.
enum Gathered {
    All(Vec<RangePartial>),
    LostLease,
    Stopped,
    Cancelled,
}

impl Cluster {
    /// Coordinates `job` with `plan` (blocking): takes its lease, or follows the node that holds
    /// it until the job ends there. `cancel` becoming `Some` cancels the job.
    pub fn coordinate(
        self: &Arc<Self>,
        job: ClusterJob,
        plan: &Plan,
        progress: Arc<Progress>,
        cancel: Option<Cancel>,
    ) -> Result<Coordinated, Error> {
        loop {
            let (c, id) = (self.clone(), job.id.clone());
            match self.call(async move { acquire(&c, &id).await })? {
                Some(rev) => match self.run_held(job.clone(), plan, rev, progress.clone(), cancel.clone())? {
                    None => continue, // the lease was lost: follow whoever holds it now
                    Some(ended) => return Ok(ended),
                },
                None => {
                    if let Some(done) = self.follow(&job.id)? {
                        return Ok(Coordinated::Elsewhere(done));
                    }
                }
            }
        }
    }

    /// Waits while another node holds the job's lease: `Some(record)` once the job has ended
    /// there, `None` when the lease lapsed unfinished (the caller tries to take it).
    fn follow(&self, id: &str) -> Result<Option<SharedRecord>, Error> {
        let stop = self.stop_rx();
        loop {
            let (c, key) = (self.bus.clone(), id.to_string());
            let (record, lease) =
                self.call(async move { (read_record(&c, &key).await, c.leases.get(&key).await) });
            if let Ok(Some(r)) = &record {
                if is_final(&r.state) {
                    return Ok(Some(r.clone()));
                }
            }
            if matches!(lease, Ok(None)) {
                return Ok(None);
            }
            if stop.has_changed().unwrap_or(true) {
                return Err(Error::Interrupted {
                    signal: 15,
                    byte: 0,
                    saved: "the job continues on its coordinator;".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs a job whose lease this node holds (revision `rev`) to its end.
    fn run_held(
        self: &Arc<Self>,
        job: ClusterJob,
        plan: &Plan,
        rev: u64,
        progress: Arc<Progress>,
        cancel: Option<Cancel>,
    ) -> Result<Option<Coordinated>, Error> {
        let span = tracing::info_span!("job", id = %job.id, node = %self.plan.node_id);
        let _enter = span.enter();
        let started = Instant::now();
        let (c, j, p) = (self.clone(), job.clone(), plan.clone());
        let record = match self.call(async move { prepare(&c, &j, &p).await }) {
            Ok(r) => r,
            Err(e) => return self.fail(&job, None, e).map(Some),
        };
        let layout = record.layout.clone().expect("prepared records have a layout");
        tracing::info!(ranges = layout.count, "coordinating");
        progress.set_total(layout.identity.size);
        let (c, id, count) = (self.clone(), job.id.clone(), layout.count);
        let watcher = progress.clone();
        let gathered = self.call(async move { gather(&c, &id, count, rev, &watcher, cancel).await });
        let parts = match gathered {
            Ok(Gathered::All(parts)) => parts,
            Ok(Gathered::LostLease) => {
                tracing::warn!("lost the lease of the job (another node took it over); following it");
                return Ok(None);
            }
            Ok(Gathered::Stopped) => {
                tracing::info!("node leaving: the job is left to another node");
                let record = self.shared(&job.id).unwrap_or(record);
                return Ok(Some(Coordinated::Elsewhere(record)));
            }
            Ok(Gathered::Cancelled) => {
                let byte = progress.read().0;
                let e = Error::Interrupted {
                    signal: 15,
                    byte,
                    saved: "the ranges done so far are kept in the cluster;".into(),
                };
                let mut record = self.shared(&job.id).unwrap_or(record);
                record.state = "cancelled".into();
                self.settle(&job, &layout, record, Err(&e));
                return Err(e);
            }
            Err(e) => return self.fail(&job, Some(&layout), e).map(Some),
        };
        match self.finish(plan, &layout, &parts, started) {
            Ok(done) => {
                self.settle(&job, &layout, record, Ok(&done));
                Ok(Some(Coordinated::Done(done)))
            }
            Err(e) => self.fail(&job, Some(&layout), e).map(Some),
        }
    }

    /// Merges the partials and writes the reports, as `wxflow run` would have.
    fn finish(
        &self,
        plan: &Plan,
        layout: &Layout,
        parts: &[RangePartial],
        started: Instant,
    ) -> Result<Done, Error> {
        let timer = Instant::now();
        let merged = merge::merge(layout, &plan.result_settings(), pipeline::empty_states(plan), parts)
            .map_err(|e| Error::Remote { message: e.to_string(), code: ExitCode::Usage })?;
        let mut outcome = pipeline::outcome_of(
            plan,
            merged.states,
            merged.rows,
            merged.stats,
            started.elapsed().as_secs_f64(),
        );
        outcome.retries = merged.retries;
        outcome.restarts = merged.restarts.clone();
        let out = OutputDir::prepare(&plan.out, true)?;
        out.write_with("rejects.csv", |w| {
            merge::write_rejects(w, parts, &merged.shifts).map_err(std::io::Error::other)
        })?;
        pipeline::check_rows(plan, &merged.examples, &out.path("rejects.csv"), &outcome)?;
        job::write_reports(&out, &outcome, plan)?;
        self.metrics.merge_secs.observe(timer.elapsed().as_secs_f64());
        tracing::info!(ranges = layout.count, secs = timer.elapsed().as_secs_f64(), "merged");
        Ok(Done { out, outcome })
    }

    /// Records a failure and releases the job.
    fn fail(&self, job: &ClusterJob, layout: Option<&Layout>, e: Error) -> Result<Coordinated, Error> {
        let record = self.shared(&job.id).unwrap_or_else(|| new_record(job, &self.plan.node_id));
        let layout = layout.cloned().or(record.layout.clone());
        self.settle(job, &layout.unwrap_or_else(empty_layout), record, Err(&e));
        Err(e)
    }

    /// Writes the final record, then releases the job (active entry, lease, range results).
    fn settle(
        &self,
        job: &ClusterJob,
        layout: &Layout,
        mut record: SharedRecord,
        result: Result<&Done, &Error>,
    ) {
        record.finished = Some(crate::date::unix_now());
        match result {
            Ok(done) => {
                let o = &done.outcome;
                record.state = "succeeded".into();
                (record.progress.rows, record.rejected, record.progress.bytes) =
                    (o.rows.processed, o.rows.rejected, o.pipeline.bytes);
                record.restarts = o.restarts.clone();
                record.cluster.ranges_done = layout.count;
            }
            Err(Error::Interrupted { byte, .. }) => {
                record.state = "cancelled".into();
                record.error = Some(format!("cancelled at byte {byte}; the ranges done are kept: POST /v1/jobs/{}/resume continues it", job.id));
            }
            Err(e) => {
                record.state = "failed".into();
                record.error = Some(e.to_string());
                record.exit_code = Some(e.exit_code() as u8);
            }
        }
        let (c, id, count, ok) = (self.bus.clone(), job.id.clone(), layout.count, result.is_ok());
        self.call(async move {
            if let Err(e) = write_record(&c, &record).await {
                tracing::warn!("cannot record the end of job {id}: {e}");
            }
            let _ = c.active.delete(&id).await;
            let _ = c.leases.delete(&id).await;
            if ok {
                c.delete_results(&id, count).await;
            }
        });
    }

    /// The job's shared record, if it can be read.
    pub fn shared(&self, id: &str) -> Option<SharedRecord> {
        let (c, id) = (self.bus.clone(), id.to_string());
        self.call(async move { read_record(&c, &id).await }).ok().flatten()
    }

    /// Finishes a job whose coordinator's lease lapsed (this node now holds it at `rev`).
    fn take_over(self: Arc<Self>, id: String, rev: u64) {
        let Some(record) = self.shared(&id).filter(|r| !is_final(&r.state)) else {
            let (c, key) = (self.bus.clone(), id.clone());
            self.call(async move {
                let _ = c.active.delete(&key).await;
                let _ = c.leases.delete(&key).await;
            });
            return;
        };
        self.metrics.takeovers.inc();
        tracing::warn!(job = %id, from = %record.cluster.coordinator, "taking over a job whose coordinator is gone");
        let job = ClusterJob {
            id: id.clone(),
            source: record.source.clone(),
            output: record.output.clone(),
            settings: record.settings.clone(),
            created: record.created,
        };
        let out = self.host.output_root().join(&record.output);
        match self.host.plan(&record.source, &out, &record.settings) {
            Ok(plan) => {
                let _ = self.run_held(job, &plan, rev, Progress::new(), None);
            }
            Err(problem) => {
                let _ = self.fail(
                    &job,
                    None,
                    Error::Usage(format!("node {} cannot plan the job: {problem}", self.plan.node_id)),
                );
            }
        }
    }
}

/// Takes the job's lease: `Some(revision)` if this node holds it now (or held it before a
/// restart), `None` if another node does.
async fn acquire(c: &Cluster, id: &str) -> Result<Option<u64>, Error> {
    let node = c.plan.node_id.as_bytes().to_vec();
    if let Ok(rev) = c.bus.leases.create(id, node.clone().into()).await {
        return Ok(Some(rev));
    }
    match c.bus.leases.entry(id).await.map_err(|e| c.bus.error("reading a lease", &e))? {
        Some(e) if e.value.as_ref() == node.as_slice() => Ok(Some(e.revision)),
        Some(e) if !e.value.is_empty() => Ok(None),
        _ => Ok(c.bus.leases.create(id, node.into()).await.ok()),
    }
}

/// Writes the running record, plans the ranges on the first run, and queues every range not
/// done yet (a failed one is cleared and queued again).
async fn prepare(c: &Cluster, job: &ClusterJob, plan: &Plan) -> Result<SharedRecord, Error> {
    let mut record = read_record(&c.bus, &job.id).await?.unwrap_or_else(|| new_record(job, &c.plan.node_id));
    record.state = "running".into();
    record.started = Some(crate::date::unix_now());
    // Names this run's work items. In whole seconds (`started`), a resume within the second of
    // the cancelled run's start republished its ranges under the same ids, which JetStream's
    // duplicate window dropped, and the job waited for ranges never delivered.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    record.cluster.coordinator = c.plan.node_id.clone();
    (record.error, record.exit_code, record.finished) = (None, None, None);
    if record.layout.is_none() {
        let layout = layout::plan_ranges(plan, &pipeline::open_options(plan), c.plan.range_bytes).await?;
        record.progress.total_bytes = layout.identity.size.unwrap_or(0);
        record.cluster.ranges = layout.count;
        record.layout = Some(layout);
    }
    write_record(&c.bus, &record).await?;
    c.bus
        .active
        .put(&job.id, c.plan.node_id.clone().into())
        .await
        .map_err(|e| c.bus.error("marking the job active", &e))?;
    let layout = record.layout.clone().expect("set above");
    let result_settings = plan.result_settings();
    for index in 0..layout.count {
        match c.bus.get_result(&job.id, index).await? {
            Some(RangeResult::Done(_)) => continue,
            Some(RangeResult::Failed { .. }) => {
                let _ = c.bus.partials.delete(format!("{}/{index:06}", job.id)).await;
            }
            None => {}
        }
        let item = WorkItem {
            job: job.id.clone(),
            index,
            source: job.source.clone(),
            settings: job.settings.clone(),
            result_settings: result_settings.clone(),
            layout: layout.clone(),
        };
        let bytes =
            serde_json::to_vec(&item).map_err(|e| Error::Internal(format!("encoding a work item: {e}")))?;
        c.bus.publish_work(&format!("{}.{index}.{run}", job.id), bytes.into()).await?;
    }
    Ok(record)
}

/// Waits for every range's result, renewing the lease and publishing progress; a range that
/// failed fails the job. NATS errors (a server restart) are waited out.
async fn gather(
    c: &Arc<Cluster>,
    id: &str,
    count: u32,
    mut rev: u64,
    progress: &Progress,
    mut cancel: Option<Cancel>,
) -> Result<Gathered, Error> {
    let mut missing: BTreeSet<u32> = (0..count).collect();
    let mut parts: Vec<RangePartial> = Vec::with_capacity(count as usize);
    let mut announcements = c.bus.announcements(id).await;
    let mut exhausted = c.bus.exhausted().await;
    let mut stop = c.stop_rx();
    let renew_every = c.plan.lease / 3;
    let (mut renewed, mut reported) = (Instant::now(), Instant::now());
    loop {
        let mut found = false;
        for index in missing.clone() {
            match c.bus.get_result(id, index).await {
                Ok(Some(RangeResult::Done(p))) => {
                    parts.push(*p);
                    missing.remove(&index);
                    found = true;
                }
                Ok(Some(RangeResult::Failed { node, message, exit_code })) => {
                    let code = ExitCode::from_number(u64::from(exit_code)).unwrap_or(ExitCode::Internal);
                    return Err(Error::Remote {
                        message: format!("range {index} failed on node {node}: {message}"),
                        code,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("{e}; waiting for NATS");
                    break;
                }
            }
        }
        if found {
            let (bytes, rows, rejected) = parts.iter().fold((0, 0, 0), |(b, r, x), p| {
                (b + p.stats.bytes, r + p.snapshot.rows.processed, x + p.snapshot.rows.rejected)
            });
            progress.restart_at((bytes, rows, rejected));
        }
        if missing.is_empty() {
            return Ok(Gathered::All(parts));
        }
        if renewed.elapsed() >= renew_every {
            match c.bus.leases.update(id, c.plan.node_id.clone().into(), rev).await {
                Ok(r) => (rev, renewed) = (r, Instant::now()),
                Err(e) if e.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision => {
                    return Ok(Gathered::LostLease)
                }
                Err(e) => tracing::warn!("cannot renew the lease of job {id}: {e}"),
            }
        }
        if found || reported.elapsed() >= Duration::from_secs(2) {
            report_progress(c, id, &parts).await;
            reported = Instant::now();
        }
        let announced = async {
            match announcements.as_mut() {
                Some(s) => {
                    s.next().await;
                }
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match cancel.as_mut() {
                Some(rx) => {
                    if rx.wait_for(Option::is_some).await.is_err() {
                        std::future::pending::<()>().await; // no one can cancel any more
                    }
                }
                None => std::future::pending().await,
            }
        };
        // Only the wait for the next advisory is raced against the other branches (a subscriber's
        // `next` loses nothing when dropped); the advisory is then handled in the branch, to the
        // end. Handling it inside the raced future lost it whenever another branch won while its
        // work item was being fetched, and the job then waited for a range no one would deliver.
        let advisory = async {
            match exhausted.as_mut() {
                Some(advisories) => advisories.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            advisory = advisory => {
                let Some(advisory) = advisory else {
                    exhausted = None; // the subscription ended: no more advisories
                    continue;
                };
                if let Some(index) = given_up(c, id, &advisory.payload).await {
                    let message = format!(
                        "range {index} was delivered {} times (cluster.max_deliver) and never finished: each node \
                         that took it died or hung; resume the job to try again",
                        c.plan.max_deliver
                    );
                    return Err(Error::Remote { message, code: ExitCode::Internal });
                }
            }
            () = announced => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(Gathered::Stopped),
            () = cancelled => {
                // The daemon's shutdown stops its jobs too: then the job is left to the cluster.
                return Ok(if c.stop_rx().borrow().is_some() { Gathered::Stopped } else { Gathered::Cancelled });
            }
        }
    }
}

/// The range of job `id` that a max-deliveries advisory gives up on, its work item removed; `None`
/// for another job's range (its own coordinator handles it) or an item that cannot be read.
async fn given_up(c: &Cluster, id: &str, advisory: &[u8]) -> Option<u32> {
    let (seq, payload) = c.bus.exhausted_item(advisory).await?;
    match serde_json::from_slice::<WorkItem>(&payload) {
        Ok(item) if item.job == id => {
            c.bus.remove_work(seq).await;
            Some(item.index)
        }
        _ => None,
    }
}

/// Publishes the ranges done so far in the job record, for the API on every node.
async fn report_progress(c: &Cluster, id: &str, parts: &[RangePartial]) {
    let Ok(Some(mut record)) = read_record(&c.bus, id).await else { return };
    record.cluster.ranges_done = parts.len() as u32;
    record.cluster.nodes.clear();
    for p in parts {
        *record.cluster.nodes.entry(p.node.clone()).or_default() += 1;
    }
    record.progress.bytes = parts.iter().map(|p| p.stats.bytes).sum();
    record.progress.rows = parts.iter().map(|p| p.snapshot.rows.processed).sum();
    record.rejected = parts.iter().map(|p| p.snapshot.rows.rejected).sum();
    let _ = write_record(&c.bus, &record).await;
}

/// Watches for jobs whose coordinator's lease lapsed and takes them over, on every node.
pub async fn watch_leases(c: Arc<Cluster>) {
    let period = (c.plan.lease / 2).max(Duration::from_secs(1));
    let mut stop = c.stop_rx();
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let Ok(ids) = c.bus.active_jobs().await else { continue };
        for id in ids {
            if !matches!(c.bus.leases.get(&id).await, Ok(None)) {
                continue;
            }
            let Ok(rev) = c.bus.leases.create(&id, c.plan.node_id.clone().into()).await else { continue };
            let c = c.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("takeover-{id}"))
                .spawn(move || c.take_over(id, rev));
            if let Err(e) = spawned {
                tracing::error!("cannot start a thread to take a job over: {e}");
            }
        }
    }
}

fn is_final(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

fn new_record(job: &ClusterJob, node: &str) -> SharedRecord {
    SharedRecord {
        id: job.id.clone(),
        source: job.source.clone(),
        output: job.output.clone(),
        settings: job.settings.clone(),
        state: "queued".into(),
        progress: SharedProgress::default(),
        restarts: BTreeMap::new(),
        rejected: 0,
        error: None,
        exit_code: None,
        created: job.created,
        started: None,
        finished: None,
        cluster: ClusterInfo { coordinator: node.to_string(), ..ClusterInfo::default() },
        layout: None,
    }
}

fn empty_layout() -> Layout {
    Layout {
        identity: crate::durable::SourceIdentity {
            location: String::new(),
            size: None,
            etag: None,
            last_modified: None,
            mtime_ns: None,
        },
        header: Vec::new(),
        leading_blank: 0,
        body_start: None,
        range_bytes: 1,
        count: 0,
    }
}

async fn read_record(c: &super::bus::Bus, id: &str) -> Result<Option<SharedRecord>, Error> {
    let bytes = c.jobs.get(id).await.map_err(|e| c.error("reading a job record", &e))?;
    bytes
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| Error::Internal(format!("job record {id} does not decode: {e}")))
        })
        .transpose()
}

async fn write_record(c: &super::bus::Bus, r: &SharedRecord) -> Result<(), Error> {
    let bytes = serde_json::to_vec(r).map_err(|e| Error::Internal(format!("encoding a job record: {e}")))?;
    c.jobs.put(&r.id, bytes.into()).await.map_err(|e| c.error("writing a job record", &e))?;
    Ok(())
}
