//! Helpers shared by the integration tests: the real binary, the real data file, a real HTTP
//! server on 127.0.0.1.
#![allow(dead_code)]

pub mod daemon;
pub mod range_server;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::thread;

use assert_cmd::Command;

/// The `wxflow` binary with a clean environment for `WXFLOW__*` variables and quiet progress.
pub fn wxflow() -> Command {
    let mut cmd = Command::cargo_bin("wxflow").expect("binary builds");
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WXFLOW__")) {
        cmd.env_remove(key);
    }
    cmd.env("WXFLOW__LOG__PROGRESS", "off");
    // A hang (a lost chunk, a deadlock) fails the test instead of stalling CI.
    cmd.timeout(std::time::Duration::from_secs(300));
    cmd
}

/// Path of the real June 2006 export, or `None` (with a printed notice) when it is absent.
pub fn real_file() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cowdenbeath-200606.csv");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("NOTICE: {} is absent; skipping the real-file test", path.display());
        None
    }
}

/// The shipped synthetic sample.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample.csv")
}

/// Runs `wxflow run` with the arguments, writing into `out`; returns the process output.
pub fn run(out: &Path, args: &[&str]) -> Output {
    wxflow().arg("run").arg("--out").arg(out).args(args).output().expect("wxflow runs")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads `summary.json` from an output directory.
pub fn summary(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json written");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// Reads a report file.
pub fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A response the test server gives for a path.
#[derive(Clone)]
pub struct Route {
    /// Request path, e.g. "/200606.csv".
    pub path: String,
    /// Status line code and reason, e.g. "200 OK".
    pub status: String,
    /// Body bytes.
    pub body: Arc<Vec<u8>>,
}

/// A real HTTP/1.1 server on 127.0.0.1 serving fixed routes (404 for anything else). It handles
/// `connections` connections and then stops, so tests never leave it running.
pub struct Server {
    /// Base URL, e.g. "http://127.0.0.1:41234".
    pub url: String,
    handle: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts serving.
    pub fn start(routes: Vec<Route>, connections: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let Ok(stream) = stream else { continue };
                let routes = routes.clone();
                thread::spawn(move || serve(stream, &routes));
            }
        });
        Server { url, handle: Some(handle) }
    }

    /// One route with status 200.
    pub fn file(path: &str, body: Vec<u8>) -> Route {
        Route { path: path.into(), status: "200 OK".into(), body: Arc::new(body) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The accept loop ends after its connection budget; do not block a failing test on it.
        drop(self.handle.take());
    }
}

fn serve(stream: TcpStream, routes: &[Route]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, body) = match routes.iter().find(|r| r.path == path) {
        Some(r) => (r.status.clone(), r.body.clone()),
        None => ("404 Not Found".to_string(), Arc::new(b"<html><body>Not Found</body></html>".to_vec())),
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    for piece in body.chunks(16 * 1024) {
        if stream.write_all(piece).is_err() {
            return;
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// True once `dir` exists and holds an entry: a checkpoint folder after its first commit.
pub fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Writes `wxflow gen ARGS` to `dir/input.csv` and returns its path (deterministic: pass a seed).
pub fn gen_input(dir: &Path, args: &[&str]) -> PathBuf {
    let path = dir.join("input.csv");
    let o = wxflow().arg("gen").args(args).arg("--out").arg(&path).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    path
}

/// The reports every run writes, compared byte for byte between runs.
pub const OUTPUTS: [&str; 4] = ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"];

/// Requires the same reports and row counts in `out` as in `clean`, showing where a report first
/// differs; `after` says what happened to `out` (for the message).
pub fn assert_same_results(clean: &Path, out: &Path, after: &str) {
    for f in OUTPUTS {
        let (a, b) = (read(clean, f), read(out, f));
        if a != b {
            let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            let at = first.unwrap_or(a.lines().count().min(b.lines().count()));
            let show = |t: &str| t.lines().skip(at.saturating_sub(1)).take(3).collect::<Vec<_>>().join("\n");
            panic!(
                "{f} differs {after} ({} vs {} lines), from line {}:\nclean:\n{}\nthen:\n{}",
                a.lines().count(),
                b.lines().count(),
                at + 1,
                show(&a),
                show(&b)
            );
        }
    }
    assert_eq!(summary(clean)["rows"], summary(out)["rows"], "every row counted exactly once");
}
