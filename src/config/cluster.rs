//! The `[cluster]` section: whether a daemon joins a cluster of daemons sharing work through NATS
//! JetStream, who it is there, and how work is cut and redelivered; validated like every other
//! section.

use super::validate::Validator;
use super::*;

/// `[cluster]` as written in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ClusterSettings {
    /// `nats://HOST:PORT`; empty = no cluster.
    pub nats_url: String,
    /// This node's name; empty = host name plus a random suffix.
    pub node_id: String,
    /// Prefix of the streams and buckets, so clusters can share one NATS server.
    pub name: String,
    /// Size of one work item (a byte range of a source).
    pub range_bytes: ByteSize,
    /// Seconds without an ack (or in-progress ack) before a range is redelivered.
    pub ack_wait_secs: u64,
    /// Deliveries of one range before it is given up.
    pub max_deliver: u64,
    /// Seconds a coordinator's lease lasts without renewal before another node takes its job.
    pub lease_secs: u64,
    /// Ranges this node processes at once.
    pub ranges_at_once: u64,
}

/// The validated `[cluster]` section; `None` in [`super::Plan::cluster`] when `nats_url` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPlan {
    /// NATS server address.
    pub nats_url: String,
    /// This node's name (letters, digits, `-` and `_`).
    pub node_id: String,
    /// Prefix of stream and bucket names.
    pub name: String,
    /// Bytes per work item.
    pub range_bytes: u64,
    /// Redelivery timeout.
    pub ack_wait: Duration,
    /// Deliveries of one range at most.
    pub max_deliver: u32,
    /// Coordinator lease.
    pub lease: Duration,
    /// Ranges processed at once on this node.
    pub ranges_at_once: usize,
}

/// Checks `[cluster]`, adding every problem to `v`; `None` when clustering is off.
pub(super) fn validate(v: &mut Validator<'_>, c: &ClusterSettings) -> Option<ClusterPlan> {
    let range_bytes = v.size("cluster.range_bytes", &c.range_bytes, 64 << 10, 1 << 40) as u64;
    let ack_wait = Duration::from_secs(v.count("cluster.ack_wait_secs", c.ack_wait_secs, 1, 3600) as u64);
    let max_deliver = v.count("cluster.max_deliver", c.max_deliver, 1, 1000) as u32;
    let lease = Duration::from_secs(v.count("cluster.lease_secs", c.lease_secs, 2, 3600) as u64);
    let ranges_at_once = v.count("cluster.ranges_at_once", c.ranges_at_once, 1, 64);
    let name = c.name.trim();
    if !simple_name(name) || name.len() > 32 {
        v.fail(
            "cluster.name",
            format!("{name:?}"),
            "must be 1 to 32 letters, digits, - or _ (it prefixes stream and bucket names)",
        );
    }
    let node_id = match c.node_id.trim() {
        "" => default_node_id(),
        id if simple_name(id) && id.len() <= 64 => id.to_string(),
        id => {
            v.fail(
                "cluster.node_id",
                format!("{id:?}"),
                "must be 1 to 64 letters, digits, - or _, or \"\" for host name plus a random suffix",
            );
            String::new()
        }
    };
    let url = c.nats_url.trim();
    if url.is_empty() {
        return None;
    }
    if !(url.starts_with("nats://") || url.starts_with("tls://")) || url.contains(char::is_whitespace) {
        v.fail(
            "cluster.nats_url",
            format!("{url:?}"),
            "must be nats://HOST:PORT (or tls://…), or \"\" for no cluster",
        );
    }
    Some(ClusterPlan {
        nats_url: url.to_string(),
        node_id,
        name: name.to_string(),
        range_bytes,
        ack_wait,
        max_deliver,
        lease,
        ranges_at_once,
    })
}

/// Usable in NATS subjects, stream, bucket and object names alike.
fn simple_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The host name (cleaned to a simple name) and a random suffix, so two daemons on one host differ.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "node".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64 ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{}-{:06x}", if host.is_empty() { "node" } else { &host }, mixed >> 40)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn with(sets: &[(&str, &str)]) -> Result<Resolved, ConfigErrors> {
        resolve(&super::super::with(sets))
    }

    #[test]
    fn off_by_default() {
        assert_eq!(with(&[]).unwrap().plan.cluster, None);
    }

    #[test]
    fn on_with_a_url_and_a_generated_node_id() {
        let c = with(&[("cluster.nats_url", "nats://127.0.0.1:4222")]).unwrap().plan.cluster.unwrap();
        assert_eq!(c.range_bytes, 64 << 20);
        assert!(
            c.node_id.len() > 7
                && c.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}",
            c.node_id
        );
        let again = with(&[("cluster.nats_url", "nats://127.0.0.1:4222")]).unwrap().plan.cluster.unwrap();
        assert_ne!(c.node_id, again.node_id, "two daemons on one host get different names");
    }

    #[test]
    fn every_cluster_problem_is_reported() {
        let err = with(&[
            ("cluster.nats_url", "127.0.0.1:4222"),
            ("cluster.node_id", "a b"),
            ("cluster.name", "x.y"),
            ("cluster.range_bytes", "1KiB"),
            ("cluster.max_deliver", "0"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 5, "{text}");
        assert!(text.contains("cluster.nats_url = \"127.0.0.1:4222\""), "{text}");
        assert!(text.contains("cluster.node_id = \"a b\""), "{text}");
    }
}
