//! Cluster mode: several daemons share every job's work through NATS JetStream, and lose
//! nothing when one dies.
//!
//! The daemon that accepts a job coordinates it ([`coordinator`]): it reads the header, cuts the
//! source into byte ranges ([`layout`]) and queues one work item per range in a JetStream work
//! queue ([`bus`]). Every node's [`worker`] pulls ranges, runs the same pipeline as `wxflow run`
//! over each, and stores the range's partial states (the checkpoint format, versioned) in the
//! JetStream object store before acking. The coordinator [`merge`]s the partials in range order
//! and writes the reports exactly as `wxflow run` would. Job records live in a key-value bucket,
//! so every node answers for every job; a coordinator holds a lease on its job that expires if it
//! dies, and another node's takeover watch then finishes the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

use crate::config::{ClusterPlan, Plan};
use crate::error::Error;
use crate::pipeline::Hooks;

pub mod bus;
pub mod coordinator;
pub mod layout;
pub mod merge;
pub mod worker;

/// What a node's daemon lends the cluster: how it plans a job on this node and where it runs
/// pipelines. (A trait, so that the cluster does not depend on the daemon that holds it.)
pub trait Host: Send + Sync + 'static {
    /// The plan of a job on this node: its configuration plus the job's settings, reading
    /// `source` (checked against this node's input roots) and writing to `out`.
    fn plan(
        &self,
        source: &str,
        out: &Path,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Plan, String>;
    /// How pipelines run in this daemon (its actix system and shared in-flight bound).
    fn hooks(&self) -> Hooks;
    /// A folder for a range's scratch files.
    fn scratch(&self) -> PathBuf;
    /// Where job outputs go on this node.
    fn output_root(&self) -> PathBuf;
}

/// Per-node cluster counters for `/metrics`.
pub struct ClusterMetrics {
    registry: Registry,
    /// Ranges this node processed.
    pub ranges: IntCounter,
    /// Deliveries this node received that were redeliveries.
    pub redeliveries: IntCounter,
    /// Jobs this node took over from a coordinator whose lease lapsed.
    pub takeovers: IntCounter,
    /// Seconds each merge took on this node.
    pub merge_secs: Histogram,
}

impl ClusterMetrics {
    fn new(node: &str) -> ClusterMetrics {
        let registry = Registry::new_custom(None, Some([("node".to_string(), node.to_string())].into()))
            .expect("valid labels");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("registered once");
            c
        };
        let merge_secs = Histogram::with_opts(
            HistogramOpts::new(
                "wxflow_cluster_merge_seconds",
                "Time this node's merges of range partials took",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )
        .expect("valid metric");
        registry.register(Box::new(merge_secs.clone())).expect("registered once");
        ClusterMetrics {
            ranges: counter("wxflow_cluster_ranges_processed_total", "Ranges this node processed"),
            redeliveries: counter(
                "wxflow_cluster_redeliveries_total",
                "Range deliveries to this node that were redeliveries (a node died or failed a range)",
            ),
            takeovers: counter(
                "wxflow_cluster_takeovers_total",
                "Jobs this node took over after their coordinator's lease lapsed",
            ),
            merge_secs,
            registry,
        }
    }

    /// The metric families, to expose beside the daemon's.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

/// This node's membership in a cluster: its NATS connection, its worker and takeover watch.
pub struct Cluster {
    /// The validated `[cluster]` section.
    pub plan: ClusterPlan,
    /// Streams and buckets.
    pub bus: bus::Bus,
    /// Counters for `/metrics`.
    pub metrics: ClusterMetrics,
    host: Arc<dyn Host>,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Sender<Option<i32>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.plan.node_id).field("bus", &self.bus).finish()
    }
}

impl Cluster {
    /// Connects to NATS (failing at once, with what to do, if it cannot), creates what is
    /// missing there, and starts this node's worker and takeover watch on a runtime of their own.
    pub fn join(plan: ClusterPlan, host: Arc<dyn Host>) -> Result<Arc<Cluster>, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wxflow-cluster")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the cluster runtime: {e}")))?;
        let bus = runtime.block_on(bus::Bus::connect(&plan))?;
        let (stop, _) = tokio::sync::watch::channel(None);
        let metrics = ClusterMetrics::new(&plan.node_id);
        let cluster = Arc::new(Cluster { plan, bus, metrics, host, runtime, stop });
        cluster.runtime.spawn(worker::run(cluster.clone()));
        cluster.runtime.spawn(coordinator::watch_leases(cluster.clone()));
        tracing::info!(node = %cluster.plan.node_id, nats = %cluster.plan.nats_url, "joined the cluster");
        Ok(cluster)
    }

    /// Stops pulling work; ranges in progress stop and are handed back for redelivery, and jobs
    /// this node coordinates are left to the takeover of another node once their lease lapses.
    pub fn leave(&self) {
        let _ = self.stop.send(Some(15));
    }

    /// Becomes `Some` when the node leaves the cluster.
    pub fn stop_rx(&self) -> tokio::sync::watch::Receiver<Option<i32>> {
        self.stop.subscribe()
    }

    /// Runs `f` on the cluster's runtime and waits for it, from any thread but the runtime's own
    /// (an actix thread, a job's thread): the NATS client lives on that runtime.
    pub fn call<T: Send + 'static>(&self, f: impl std::future::Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().expect("the cluster runtime outlives its callers")
    }

    /// The job record (the API view) of a job any node accepted, if the cluster knows it.
    pub fn record(&self, id: &str) -> Option<serde_json::Value> {
        let (jobs, id) = (self.bus.jobs.clone(), id.to_string());
        let entry = self.call(async move { jobs.get(id).await }).ok()??;
        let mut record: serde_json::Value = serde_json::from_slice(&entry).ok()?;
        if let Some(o) = record.as_object_mut() {
            o.remove("layout");
            o.remove("settings");
        }
        Some(record)
    }
}
