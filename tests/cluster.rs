//! Cluster mode with real processes and a real NATS server: three `wxflow daemon`s on loopback
//! share each job's byte ranges through JetStream. Every result is compared byte for byte with
//! `wxflow run` on the same input, after a worker is killed mid-range, after the coordinator is
//! killed, across a restart of the NATS server, and for many small jobs.
//!
//! These tests need a NATS server with JetStream: its address comes from `WXFLOW_TEST_NATS_URL`
//! (`.ci/run` sets it). Without it they print a notice and pass without running, so a plain
//! `cargo test` works offline. Each test uses its own `cluster.name`, so its streams and buckets
//! do not meet another test's on the shared server, and deletes them at the end. The NATS-restart
//! test starts a server of its own (from `nats-server` on the PATH or /usr/sbin) on a free port.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::range_server::RangeServer;
use common::{assert_same_results, gen_input, stderr, summary, wxflow};
use serde_json::{json, Value};

/// Held by each test while it runs: the tests start three daemons each on a two-core machine, and
/// the scaling test measures time, so they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes this test's turn.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// The NATS server to use, or `None` (after a visible notice) to skip.
fn nats(test: &str) -> Option<String> {
    match std::env::var("WXFLOW_TEST_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            eprintln!(
                "NOTICE: {test} skipped: WXFLOW_TEST_NATS_URL is not set (start `nats-server -js` and set it, \
                 e.g. nats://127.0.0.1:4222, to run the cluster tests; .ci/run does)"
            );
            None
        }
    }
}

/// A cluster name of this test run, and the deletion of its streams when dropped.
struct Namespace {
    name: String,
    url: String,
}

impl Namespace {
    fn new(url: &str, tag: &str) -> Namespace {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        Namespace {
            name: format!("t{}{tag}{:05}", std::process::id(), nanos % 100_000),
            url: url.to_string(),
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url)).await
            else {
                return;
            };
            let js = async_nats::jetstream::new(client);
            for stream in [
                format!("{name}_work"),
                format!("KV_{name}_jobs"),
                format!("KV_{name}_active"),
                format!("KV_{name}_leases"),
                format!("OBJ_{name}_partials"),
            ] {
                let _ = tokio::time::timeout(Duration::from_secs(5), js.delete_stream(stream)).await;
            }
        });
    }
}

/// Starts node `id` of cluster `ns` under `root/id`, reading files from `inputs`.
fn node(root: &Path, id: &str, ns: &Namespace, inputs: &Path, daemon: &str, cluster: &str) -> Daemon {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    // Short timeouts so that redelivery and takeover happen within a test; `cluster` may set others.
    let defaults: String = [("ack_wait_secs", 2), ("lease_secs", 3)]
        .iter()
        .filter(|(key, _)| !cluster.contains(key))
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect();
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\noutput_root = \"{}\"\ninput_roots = [\"{}\"]\n{daemon}\n\
         [cluster]\nnats_url = \"{}\"\nnode_id = \"{id}\"\nname = \"{}\"\n{defaults}{cluster}\n",
        dir.join("state").display(),
        dir.join("out").display(),
        inputs.display(),
        ns.url,
        ns.name
    );
    std::fs::write(dir.join("daemon.toml"), text).unwrap();
    Daemon::start(&dir)
}

/// Three nodes `a`, `b`, `c`.
fn three(root: &Path, ns: &Namespace, inputs: &Path, daemon: &str, cluster: &str) -> Vec<Daemon> {
    ["a", "b", "c"].iter().map(|id| node(root, id, ns, inputs, daemon, cluster)).collect()
}

/// `wxflow run` on `source`, the reference every cluster result must equal.
fn reference(source: &str, out: &Path) {
    let o = wxflow()
        .args(["run", "--source", source, "--out"])
        .arg(out)
        .args(["--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A counter of a node's `/metrics` (0 if absent).
fn metric(d: &Daemon, name: &str) -> f64 {
    let text = String::from_utf8(d.request("GET", "/metrics", None).body).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `f` every 50 ms until it holds (at most `secs`); panics with `what` otherwise.
fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shared record of a job, as another node answers for it.
fn record(d: &Daemon, id: &str) -> Value {
    d.job(id)
}

/// The output folder of a finished job: under its (last) coordinator's output root.
fn outputs(root: &Path, any: &Daemon, id: &str, output: &str) -> PathBuf {
    let seen = record(any, id);
    let node = seen["cluster"]["coordinator"].as_str().unwrap_or_else(|| panic!("no coordinator: {seen}"));
    root.join(node).join("out").join(output)
}

/// kill -9 of a node (a process this test started).
fn kill(d: &mut Daemon) {
    d.signal_and_wait("-KILL", 30);
}

#[test]
fn three_nodes_split_a_200_mb_source_into_ranges_and_match_wxflow_run() {
    let Some(url) = nats("three_nodes_split_a_200_mb_source") else { return };
    let _turn = turn();
    let ns = Namespace::new(&url, "big");
    let root = tempfile::tempdir().unwrap();
    let inputs = root.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let args = ["--size", "200MB", "--seed", "8", "--bad-rows", "40", "--blank-lines", "25"];
    let input = gen_input(&inputs, &args).canonicalize().unwrap();
    reference(input.to_str().unwrap(), &root.path().join("ref"));
    let nodes = three(root.path(), &ns, &inputs.canonicalize().unwrap(), "", "range_bytes = \"16MiB\"");
    let id = nodes[0].submit(&json!({"source": input, "output": "big"}));
    let done = nodes[0].wait_for(&id, "succeeded", 600);
    assert_same_results(&root.path().join("ref"), &root.path().join("a/out/big"), "from three nodes");
    let ranges = nodes.iter().map(|d| metric(d, "wxflow_cluster_ranges_processed_total")).collect::<Vec<_>>();
    assert!(ranges.iter().sum::<f64>() >= 12.0, "at least 12 ranges: {ranges:?}");
    assert!(ranges.iter().all(|&n| n > 0.0), "every node processed ranges: {ranges:?}");
    for other in &nodes[1..] {
        let seen = record(other, &id);
        assert_eq!(seen["state"], "succeeded", "every node answers for the job: {seen}");
        assert!(seen["cluster"]["ranges"].as_u64().unwrap() >= 12, "{seen}");
        assert_eq!(seen["progress"]["rows"], done["progress"]["rows"]);
    }
    assert!(metric(&nodes[0], "wxflow_cluster_merge_seconds_count") >= 1.0);
}

/// A generated input served over HTTP at `rate` bytes per second per connection, its reference
/// run, and the folder the nodes live in.
fn paced(tag: &str, size: &str, rate: u64) -> (tempfile::TempDir, RangeServer, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let args = ["--size", size, "--seed", "12", "--bad-rows", "15", "--blank-lines", "6"];
    let input = gen_input(root.path(), &args);
    let server = RangeServer::start(std::fs::read(&input).unwrap());
    let clean = root.path().join(format!("ref-{tag}"));
    reference(input.to_str().unwrap(), &clean);
    server.set_rate(rate);
    let inputs = root.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    (root, server, clean)
}

/// A paced source of `size` at 4 MiB/s per connection, its reference run, and three nodes that cut
/// it in 2 MiB ranges (about eight).
fn paced_three(
    url: &str,
    tag: &str,
    size: &str,
) -> (Namespace, tempfile::TempDir, RangeServer, PathBuf, Vec<Daemon>) {
    let ns = Namespace::new(url, tag);
    let (root, server, clean) = paced(tag, size, 4 << 20);
    let inputs = root.path().join("in");
    let nodes = three(root.path(), &ns, &inputs, "", "range_bytes = \"2MiB\"");
    (ns, root, server, clean, nodes)
}

#[test]
fn a_worker_killed_mid_range_has_its_range_redelivered_and_nothing_changes() {
    let Some(url) = nats("a_worker_killed_mid_range") else { return };
    let _turn = turn();
    let (_ns, root, server, clean, mut nodes) = paced_three(&url, "wk", "16MB");
    let id = nodes[0].submit(&json!({"source": server.url, "output": "wk"}));
    wait_until(60, "node b to start a range", || nodes[1].log().contains("range started"));
    kill(&mut nodes[1]);
    nodes[0].wait_for(&id, "succeeded", 120);
    let out = outputs(root.path(), &nodes[2], &id, "wk");
    assert_same_results(&clean, &out, "after a worker was killed mid-range");
    let redelivered = metric(&nodes[0], "wxflow_cluster_redeliveries_total")
        + metric(&nodes[2], "wxflow_cluster_redeliveries_total");
    assert!(redelivered >= 1.0, "the killed node's range was redelivered to another node");
}

#[test]
fn a_killed_coordinator_is_replaced_by_another_node_that_finishes_the_job() {
    let Some(url) = nats("a_killed_coordinator") else { return };
    let _turn = turn();
    let (_ns, root, server, clean, mut nodes) = paced_three(&url, "co", "16MB");
    let id = nodes[0].submit(&json!({"source": server.url, "output": "co"}));
    wait_until(60, "a first range done", || {
        record(&nodes[1], &id)["cluster"]["ranges_done"].as_u64() >= Some(1)
    });
    kill(&mut nodes[0]);
    wait_until(120, "another node to finish the job", || record(&nodes[1], &id)["state"] == "succeeded");
    let seen = record(&nodes[2], &id);
    let taker = seen["cluster"]["coordinator"].as_str().unwrap().to_string();
    assert!(taker == "b" || taker == "c", "{seen}");
    assert_same_results(&clean, &root.path().join(&taker).join("out/co"), "after the coordinator was killed");
    let takeovers: f64 = nodes[1..].iter().map(|d| metric(d, "wxflow_cluster_takeovers_total")).sum();
    assert_eq!(takeovers, 1.0, "one node took the job over");
}

/// A NATS server of this test's own, on a free port, storing in `dir`.
struct OwnNats {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl OwnNats {
    fn binary() -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("nats-server"));
        on_path.chain([PathBuf::from("/usr/sbin/nats-server")]).find(|p| p.is_file())
    }

    fn start(dir: &Path, port: u16) -> OwnNats {
        let bin = OwnNats::binary().expect("checked");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(30, "the test's NATS server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        OwnNats { child, port, dir: dir.to_path_buf() }
    }

    fn restart(&mut self, down: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        std::thread::sleep(down);
        *self = OwnNats::start(&self.dir.clone(), self.port);
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_job_survives_a_restart_of_the_nats_server() {
    let Some(_) = nats("a_job_survives_a_restart_of_the_nats_server") else { return };
    let _turn = turn();
    if OwnNats::binary().is_none() {
        eprintln!(
            "NOTICE: a_job_survives_a_restart_of_the_nats_server skipped: no nats-server binary to start"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (root, server, clean) = paced("nr", "16MB", 4 << 20);
    let mut own = OwnNats::start(&root.path().join("nats"), port);
    let ns = Namespace::new(&format!("nats://127.0.0.1:{port}"), "nr");
    let inputs = root.path().join("in");
    let nodes = three(root.path(), &ns, &inputs, "", "range_bytes = \"2MiB\"\nlease_secs = 10");
    let id = nodes[0].submit(&json!({"source": server.url, "output": "nr"}));
    wait_until(60, "a first range done", || {
        record(&nodes[1], &id)["cluster"]["ranges_done"].as_u64() >= Some(1)
    });
    own.restart(Duration::from_secs(2));
    nodes[0].wait_for(&id, "succeeded", 180);
    // A node may have taken the job over if the restart outlasted the coordinator's lease.
    let out = outputs(root.path(), &nodes[1], &id, "nr");
    assert_same_results(&clean, &out, "across a NATS restart");
    assert_eq!(summary(&clean)["rows"], summary(&out)["rows"], "nothing counted twice");
}

/// Seconds from submission to success of one job.
fn timed(d: &Daemon, source: &str, output: &str) -> f64 {
    let started = Instant::now();
    let id = d.submit(&json!({"source": source, "output": output}));
    d.wait_for(&id, "succeeded", 300);
    started.elapsed().as_secs_f64()
}

#[test]
fn three_nodes_and_three_connections_scale_on_a_capped_link() {
    let Some(url) = nats("three_nodes_and_three_connections_scale") else { return };
    let _turn = turn();
    // 24 MiB at 2 MiB/s per connection: the link, not the CPU, sets the pace even in a debug
    // build. Both ways cut it in pieces of 8 MiB (three connections, three nodes with two 4 MiB
    // ranges each).
    let (root, server, clean) = paced("sc", "24MiB", 2 << 20);
    let inputs = root.path().join("in");
    let solo_ns = Namespace::new(&url, "s1");
    let solo = node(root.path(), "solo", &solo_ns, &inputs, "", "range_bytes = \"4MiB\"");
    let one = timed(&solo, &server.url, "one");
    drop(solo);
    assert_same_results(&clean, &root.path().join("solo/out/one"), "on one node");
    let ns = Namespace::new(&url, "s3");
    let nodes = three(root.path(), &ns, &inputs, "", "range_bytes = \"4MiB\"");
    let three_secs = timed(&nodes[0], &server.url, "three");
    assert_same_results(&clean, &root.path().join("a/out/three"), "on three nodes");
    let run = |n: &str, out: &str| {
        let started = Instant::now();
        let o = wxflow()
            .args(["run", "--source", &server.url, "--progress", "off", "--connections", n, "--out"])
            .arg(root.path().join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_same_results(&clean, &root.path().join(out), "over several connections");
        started.elapsed().as_secs_f64()
    };
    let (c1, c3) = (run("1", "c1"), run("3", "c3"));
    eprintln!(
        "capped link (2 MiB/s per connection, 24 MiB): one node {one:.2} s, three nodes {three_secs:.2} s ({:.2}x); \
         --connections 1 {c1:.2} s, 3 {c3:.2} s ({:.2}x)",
        one / three_secs,
        c1 / c3
    );
    assert!(one / three_secs >= 2.4, "three nodes: {one:.2} s vs {three_secs:.2} s");
    assert!(c1 / c3 >= 2.4, "three connections: {c1:.2} s vs {c3:.2} s");
}

#[test]
fn two_hundred_small_jobs_complete_across_three_nodes() {
    let Some(url) = nats("two_hundred_small_jobs") else { return };
    let _turn = turn();
    let Some(real) = common::real_file() else {
        eprintln!("NOTICE: two_hundred_small_jobs skipped: the June 2006 export is not at ../shared/data");
        return;
    };
    let real = real.canonicalize().unwrap();
    let ns = Namespace::new(&url, "many");
    let root = tempfile::tempdir().unwrap();
    let clean = root.path().join("ref");
    reference(real.to_str().unwrap(), &clean);
    let inputs = real.parent().unwrap();
    let daemon = "max_concurrent_jobs = 16\nmax_queued_jobs = 400";
    let nodes = three(root.path(), &ns, inputs, daemon, "");
    let ids: Vec<String> =
        (0..200).map(|i| nodes[0].submit(&json!({"source": real, "output": format!("j{i:03}")}))).collect();
    for (i, id) in ids.iter().enumerate() {
        nodes[0].wait_for(id, "succeeded", 600);
        assert_same_results(&clean, &root.path().join(format!("a/out/j{i:03}")), &format!("for job {i}"));
    }
    let ranges = nodes.iter().map(|d| metric(d, "wxflow_cluster_ranges_processed_total")).collect::<Vec<_>>();
    assert!(ranges.iter().sum::<f64>() >= 200.0, "{ranges:?}");
    assert!(ranges.iter().all(|&n| n > 0.0), "all three nodes worked: {ranges:?}");
}

#[test]
fn a_cancelled_cluster_job_resumes_with_the_ranges_not_done() {
    let Some(url) = nats("a_cancelled_cluster_job_resumes") else { return };
    let _turn = turn();
    let (_ns, root, server, clean, nodes) = paced_three(&url, "cr", "16MB");
    let id = nodes[0].submit(&json!({"source": server.url, "output": "cr"}));
    wait_until(60, "a first range done", || {
        record(&nodes[1], &id)["cluster"]["ranges_done"].as_u64() >= Some(1)
    });
    let cancelled = nodes[0].request("DELETE", &format!("/v1/jobs/{id}"), None);
    assert_eq!(cancelled.status, 202, "{}", String::from_utf8_lossy(&cancelled.body));
    nodes[0].wait_for(&id, "cancelled", 60);
    wait_until(30, "every node to see the cancel", || record(&nodes[2], &id)["state"] == "cancelled");
    let resumed = nodes[0].request("POST", &format!("/v1/jobs/{id}/resume"), None);
    assert_eq!(resumed.status, 202, "{}", String::from_utf8_lossy(&resumed.body));
    nodes[0].wait_for(&id, "succeeded", 120);
    assert_same_results(&clean, &outputs(root.path(), &nodes[1], &id, "cr"), "after a cancel and a resume");
    let seen = record(&nodes[1], &id);
    assert_eq!(seen["cluster"]["ranges_done"], seen["cluster"]["ranges"], "{seen}");
}

/// Network namespaces of this test's own making: one bridge in the test's namespace holding
/// `10.201.X.1`, and per node a namespace with a veth on that bridge holding `10.201.X.(10+i)`.
/// Removed when dropped.
struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
    subnet: String,
}

impl Hosts {
    /// `None` (after a notice) where the machine does not allow it (not root, no `ip`).
    fn create(n: usize) -> Option<Hosts> {
        let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        let tag = std::process::id() % 250;
        let hosts = Hosts {
            bridge: format!("wxbr{tag}"),
            namespaces: (0..n).map(|i| format!("wx{tag}n{i}")).collect(),
            subnet: format!("10.201.{tag}"),
        };
        let bridge_ip = format!("{}.1/24", hosts.subnet);
        let mut ok = ip(&["link", "add", &hosts.bridge, "type", "bridge"])
            && ip(&["addr", "add", &bridge_ip, "dev", &hosts.bridge])
            && ip(&["link", "set", &hosts.bridge, "up"]);
        for (i, ns) in hosts.namespaces.iter().enumerate() {
            let (outer, inner) = (format!("wx{tag}v{i}"), format!("wx{tag}p{i}"));
            let addr = format!("{}.{}/24", hosts.subnet, 10 + i);
            ok = ok
                && ip(&["netns", "add", ns])
                && ip(&["link", "add", &outer, "type", "veth", "peer", "name", &inner])
                && ip(&["link", "set", &inner, "netns", ns])
                && ip(&["link", "set", &outer, "master", &hosts.bridge, "up"])
                && ip(&["netns", "exec", ns, "ip", "addr", "add", &addr, "dev", &inner])
                && ip(&["netns", "exec", ns, "ip", "link", "set", &inner, "up"])
                && ip(&["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        }
        if !ok {
            eprintln!("NOTICE: cannot make network namespaces here (needs root and iproute2); the cluster runs on loopback in the other tests");
            return None;
        }
        Some(hosts)
    }

    /// Address of node `i`.
    fn addr(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, 10 + i)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

#[test]
fn three_nodes_on_hosts_of_their_own_share_a_job() {
    let Some(_) = nats("three_nodes_on_hosts_of_their_own") else { return };
    let _turn = turn();
    let Some(bin) = OwnNats::binary() else {
        eprintln!("NOTICE: three_nodes_on_hosts_of_their_own skipped: no nats-server binary to start");
        return;
    };
    let Some(hosts) = Hosts::create(3) else { return };
    let root = tempfile::tempdir().unwrap();
    let inputs = root.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let args = ["--size", "24MB", "--seed", "31", "--bad-rows", "9", "--blank-lines", "4"];
    let input = gen_input(&inputs, &args).canonicalize().unwrap();
    let clean = root.path().join("ref");
    reference(input.to_str().unwrap(), &clean);
    // The NATS server listens on the bridge, the only address the nodes share.
    let bridge = format!("{}.1", hosts.subnet);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(bin)
        .args(["-a", &bridge, "-p", &port.to_string(), "-js", "-sd"])
        .arg(root.path().join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(30, "NATS on the bridge", || std::net::TcpStream::connect((bridge.as_str(), port)).is_ok());
    let ns = Namespace::new(&format!("nats://{bridge}:{port}"), "ns");
    let token = "a-test-token-of-32-characters-xx";
    let nodes: Vec<Daemon> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let daemon = format!("listen = \"{}:0\"\nauth_token = \"{token}\"", hosts.addr(i));
            let dir = root.path().join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let text = format!(
                "[daemon]\nstate_dir = \"{}\"\noutput_root = \"{}\"\ninput_roots = [\"{}\"]\n{daemon}\n\
                 [cluster]\nnats_url = \"{}\"\nnode_id = \"{id}\"\nname = \"{}\"\nrange_bytes = \"2MiB\"\n",
                dir.join("state").display(),
                dir.join("out").display(),
                inputs.canonicalize().unwrap().display(),
                ns.url,
                ns.name
            );
            std::fs::write(dir.join("daemon.toml"), text).unwrap();
            let mut d = Daemon::start_in(&dir, Some(&hosts.namespaces[i]));
            d.token = Some(token.to_string());
            d
        })
        .collect();
    let id = nodes[0].submit(&json!({"source": input, "output": "ns"}));
    nodes[0].wait_for(&id, "succeeded", 300);
    assert_same_results(&clean, &root.path().join("a/out/ns"), "from three hosts");
    let ranges = nodes.iter().map(|d| metric(d, "wxflow_cluster_ranges_processed_total")).collect::<Vec<_>>();
    assert!(ranges.iter().all(|&n| n > 0.0), "every host processed ranges: {ranges:?}");
    assert_eq!(record(&nodes[2], &id)["state"], "succeeded");
    drop(nodes);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_range_whose_every_delivery_dies_fails_the_job_which_then_resumes() {
    let Some(url) = nats("a_range_whose_every_delivery_dies") else { return };
    let _turn = turn();
    let ns = Namespace::new(&url, "md");
    let (root, server, clean) = paced("md", "16MB", 4 << 20);
    let inputs = root.path().join("in");
    // One delivery per range: the range node b dies in is never delivered again.
    let mut nodes = three(root.path(), &ns, &inputs, "", "range_bytes = \"2MiB\"\nmax_deliver = 1");
    let id = nodes[0].submit(&json!({"source": server.url, "output": "md"}));
    wait_until(60, "node b to start a range", || nodes[1].log().contains("range started"));
    kill(&mut nodes[1]);
    let failed = nodes[0].wait_for(&id, "failed", 120);
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("was delivered 1 times (cluster.max_deliver)"), "{failed}");
    assert_eq!(failed["exit_code"], 5, "an internal failure: {failed}");
    let resumed = nodes[0].request("POST", &format!("/v1/jobs/{id}/resume"), None);
    assert_eq!(resumed.status, 202, "{}", String::from_utf8_lossy(&resumed.body));
    nodes[0].wait_for(&id, "succeeded", 120);
    assert_same_results(&clean, &outputs(root.path(), &nodes[2], &id, "md"), "after a resume");
}
