//! A `wxflow daemon` process for tests: started on a free loopback port (`listen = 127.0.0.1:0`,
//! the bound address read from `daemon.addr`), talked to with a minimal HTTP/1.1 client over
//! `std::net::TcpStream`, and killed (only this child) when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running daemon started by the test.
pub struct Daemon {
    /// The child process.
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Folder holding config, state and outputs.
    pub dir: PathBuf,
    /// Bearer token sent with every request, if set.
    pub token: Option<String>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Writes `dir/daemon.toml` with a [daemon] section (state, outputs and inputs inside `dir`) plus
/// `extra` lines of that section.
pub fn config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let path = dir.join("daemon.toml");
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\noutput_root = \"{}\"\ninput_roots = [\"{}\"]\n{extra}\n",
        dir.join("state").display(),
        dir.join("out").display(),
        dir.join("in").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl Daemon {
    /// Starts `wxflow daemon --config dir/daemon.toml` and waits (at most 60 s) until it answers.
    pub fn start(dir: &Path) -> Daemon {
        Daemon::start_in(dir, None)
    }

    /// As [`Daemon::start`], inside network namespace `netns` (`ip netns exec`) when given.
    pub fn start_in(dir: &Path, netns: Option<&str>) -> Daemon {
        let addr_file = dir.join("state/daemon.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("daemon.log")).unwrap();
        let bin = assert_cmd::cargo::cargo_bin("wxflow");
        let mut command = match netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => std::process::Command::new(bin),
        };
        let child = command
            .args(["daemon", "--config"])
            .arg(dir.join("daemon.toml"))
            .env("WXFLOW__LOG__LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the daemon starts");
        let mut daemon = Daemon { child, addr: String::new(), dir: dir.to_path_buf(), token: None };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                daemon.addr = addr.trim().to_string();
                if daemon.try_request("GET", "/healthz", None).is_some_and(|a| a.status == 200) {
                    return daemon;
                }
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("the daemon exited with {status}: {}", daemon.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not answer within 60 s: {}", daemon.log());
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Sends a request; panics if the daemon does not answer.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}; log:\n{}", self.log()))
    }

    /// Sends a request with a raw body (bytes), or `None` if the connection fails.
    pub fn try_request(&self, method: &str, path: &str, body: Option<&str>) -> Option<Answer> {
        self.try_request_as(method, path, body, &[])
    }

    /// Sends a request as a browser on another site might: `headers` are added, and a `Host`
    /// among them replaces the daemon's own address.
    pub fn request_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_request_as(method, path, body, headers)
            .unwrap_or_else(|| panic!("no answer to {method} {path}; log:\n{}", self.log()))
    }

    fn try_request_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let body = body.unwrap_or("");
        let auth = self.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let host = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map_or(self.addr.clone(), |(_, v)| v.to_string());
        let extra: String = headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        let _ = stream.write_all(body.as_bytes());
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse(&raw)
    }

    /// `GET /v1/jobs/{id}`.
    pub fn job(&self, id: &str) -> Value {
        self.request("GET", &format!("/v1/jobs/{id}"), None).json()
    }

    /// Submits a job; returns its id (panics unless 201).
    pub fn submit(&self, body: &Value) -> String {
        let a = self.request("POST", "/v1/jobs", Some(&body.to_string()));
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        a.json()["id"].as_str().unwrap().to_string()
    }

    /// Polls a job until `state` (at most `secs`); panics on another final state.
    pub fn wait_for(&self, id: &str, state: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let job = self.job(id);
            let now = job["state"].as_str().unwrap_or("").to_string();
            if now == state {
                return job;
            }
            let done = ["succeeded", "failed", "cancelled"].contains(&now.as_str());
            assert!(
                !done && Instant::now() < deadline,
                "job {id} is {now}, waited for {state}: {job}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal to this daemon (by its pid) and waits for it to exit (at most `secs`).
    pub fn signal_and_wait(&mut self, signal: &str, secs: u64) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the daemon did not exit within {secs} s: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Some(Answer { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
