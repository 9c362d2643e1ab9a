//! The cluster's JetStream resources, named after `cluster.name`: the work-queue stream of range
//! work items with its one durable pull consumer, the key-value buckets of job records, active
//! jobs and coordinator leases, and the object store of range partials. Every daemon creates them
//! if they are missing, with the same configuration, so any node may start first.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::config::ClusterPlan;
use crate::durable::partial::{self, RangeResult};

use crate::error::NatsError;

/// Handles to the cluster's streams and buckets.
#[derive(Clone)]
pub struct Bus {
    url: String,
    name: String,
    client: async_nats::Client,
    js: jetstream::Context,
    /// Range work items.
    pub work: stream::Stream,
    /// Job records (the API's view of each job), by job id.
    pub jobs: kv::Store,
    /// Jobs not finished yet, by job id: what the takeover watch scans.
    pub active: kv::Store,
    /// Coordinator leases, by job id; entries expire after `cluster.lease_secs`.
    pub leases: kv::Store,
    /// Range results, as `<job>/<range>`.
    pub partials: object_store::ObjectStore,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("url", &self.url).field("name", &self.name).finish()
    }
}

/// Name of the durable consumer every node pulls work from.
const WORKERS: &str = "workers";

impl Bus {
    /// Connects (retrying until the server answers, so nodes may start before it) and makes sure
    /// every stream and bucket exists.
    pub async fn connect(plan: &ClusterPlan) -> Result<Bus, NatsError> {
        let url = plan.nats_url.clone();
        let fail = |doing: &str| {
            let (url, doing) = (url.clone(), doing.to_string());
            move |e: &dyn std::fmt::Display| NatsError {
                url: url.clone(),
                doing: doing.clone(),
                detail: e.to_string(),
            }
        };
        let client = async_nats::ConnectOptions::new()
            .name(format!("wxflow {}", plan.node_id))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(&url)
            .await
            .map_err(|e| fail("connecting")(&e))?;
        let js = jetstream::new(client.clone());
        let name = plan.name.clone();
        let work = js
            .get_or_create_stream(stream::Config {
                name: format!("{name}_work"),
                subjects: vec![format!("{name}.work")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| fail("creating the work stream")(&e))?;
        let bucket = |suffix: &str, max_age: Duration| kv::Config {
            bucket: format!("{name}_{suffix}"),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let jobs = key_value(&js, bucket("jobs", Duration::ZERO))
            .await
            .map_err(|e| fail("creating the jobs bucket")(&e))?;
        let active = key_value(&js, bucket("active", Duration::ZERO))
            .await
            .map_err(|e| fail("creating the active bucket")(&e))?;
        let leases = key_value(&js, bucket("leases", plan.lease))
            .await
            .map_err(|e| fail("creating the leases bucket")(&e))?;
        let store_name = format!("{name}_partials");
        let partials = match js.get_object_store(&store_name).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: store_name,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| fail("creating the partials store")(&e))?,
        };
        let bus = Bus { url, name, client, js, work, jobs, active, leases, partials };
        bus.consumer(plan).await?;
        Ok(bus)
    }

    /// The shared pull consumer of work items (explicit acks; redelivered after `ack_wait`, at
    /// most `max_deliver` times).
    pub async fn consumer(&self, plan: &ClusterPlan) -> Result<consumer::PullConsumer, NatsError> {
        self.work
            .get_or_create_consumer(
                WORKERS,
                consumer::pull::Config {
                    durable_name: Some(WORKERS.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: plan.ack_wait,
                    max_deliver: i64::from(plan.max_deliver),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error("creating the workers consumer", &e))
    }

    /// An error of this bus.
    pub fn error(&self, doing: &str, e: &dyn std::fmt::Display) -> NatsError {
        NatsError { url: self.url.clone(), doing: doing.into(), detail: e.to_string() }
    }

    /// Queues a work item; `id` makes a second publish of the same item within two minutes a
    /// no-op (JetStream's duplicate window), so a coordinator taking a job over may republish.
    pub async fn publish_work(&self, id: &str, item: Bytes) -> Result<(), NatsError> {
        let publish = jetstream::message::PublishMessage::build().payload(item).message_id(id);
        let ack = self
            .js
            .send_publish(format!("{}.work", self.name), publish)
            .await
            .map_err(|e| self.error("queueing a range", &e))?;
        ack.await.map_err(|e| self.error("queueing a range (no acknowledgement)", &e))?;
        Ok(())
    }

    /// Subject on which workers announce a stored range of `job`.
    pub fn done_subject(&self, job: &str) -> String {
        format!("{}.done.{job}", self.name)
    }

    /// Announces that a range of `job` is stored (a hint; the coordinator also polls).
    pub async fn announce(&self, job: &str) {
        let _ = self.client.publish(self.done_subject(job), Bytes::new()).await;
    }

    /// Subscribes to the announcements of `job`.
    pub async fn announcements(&self, job: &str) -> Option<async_nats::Subscriber> {
        self.client.subscribe(self.done_subject(job)).await.ok()
    }

    /// Subscribes to JetStream's advisories of work items that reached `max_deliver` deliveries
    /// without an ack (the nodes that took them died or hung each time).
    pub async fn exhausted(&self) -> Option<async_nats::Subscriber> {
        let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}_work.{WORKERS}", self.name);
        self.client.subscribe(subject).await.ok()
    }

    /// The work item an advisory of [`Bus::exhausted`] names: its stream sequence and payload.
    pub async fn exhausted_item(&self, advisory: &[u8]) -> Option<(u64, Bytes)> {
        let seq = serde_json::from_slice::<serde_json::Value>(advisory).ok()?["stream_seq"].as_u64()?;
        let message = self.work.get_raw_message(seq).await.ok()?;
        Some((seq, message.payload))
    }

    /// Removes a work item that will not be delivered again (resuming its job queues it anew).
    pub async fn remove_work(&self, seq: u64) {
        let _ = self.work.delete_message(seq).await;
    }

    /// Stores a range result (replacing one stored before: a range processed twice is harmless).
    pub async fn put_result(&self, job: &str, index: u32, result: &RangeResult) -> Result<(), NatsError> {
        let bytes = partial::encode(result);
        self.partials
            .put(object_name(job, index).as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| self.error(&format!("storing range {index} of job {job}"), &e))?;
        Ok(())
    }

    /// A stored range result, or `None` if that range is not done yet.
    pub async fn get_result(&self, job: &str, index: u32) -> Result<Option<RangeResult>, NatsError> {
        let name = object_name(job, index);
        let mut object = match self.partials.get(&name).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(&format!("reading {name}"), &e)),
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| self.error(&format!("reading {name}"), &e))?;
        partial::decode(&bytes).map(Some).map_err(|e| self.error(&format!("decoding {name}"), &e))
    }

    /// Removes a finished job's range results.
    pub async fn delete_results(&self, job: &str, count: u32) {
        for index in 0..count {
            let _ = self.partials.delete(object_name(job, index)).await;
        }
    }

    /// Keys of the jobs not finished yet.
    pub async fn active_jobs(&self) -> Result<Vec<String>, NatsError> {
        let keys = match self.active.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(self.error("listing active jobs", &e)),
        };
        Ok(keys.filter_map(|k| std::future::ready(k.ok())).collect().await)
    }
}

/// Object name of a range result.
fn object_name(job: &str, index: u32) -> String {
    format!("{job}/{index:06}")
}

/// The bucket, created with `config` if missing. The stream is created directly, as the client's
/// own `create_key_value` would make it: that call first asks for account information in a shape
/// servers before 2.10 do not answer with.
async fn key_value(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, String> {
    if let Ok(store) = js.get_key_value(config.bucket.clone()).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{}", config.bucket),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: config.history.max(1),
        max_age: config.max_age,
        storage: config.storage,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    js.get_key_value(config.bucket).await.map_err(|e| e.to_string())
}
