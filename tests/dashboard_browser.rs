//! The daemon's dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`), driven over the Chrome DevTools Protocol (a websocket on 127.0.0.1), against a
//! running daemon. It submits a job through the form, watches it reach `succeeded`, opens the
//! job page, checks the plots and the figures against `summary.json`, sees a slowed job's live
//! progress, and saves screenshots to
//! `target/tmp/screenshots/`. Without chromium the tests print `SKIPPED: …` and pass.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{config, Daemon};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "dashboard-test-token-0123456789";

/// A headless Chromium started by the test, killed (only this child) when dropped.
struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or `None` (with a visible notice) when it is not installed.
    fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() {
            eprintln!(
                "SKIPPED: chromium not found at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
            );
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args(["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars"])
            .args([
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let port = devtools_port(&mut child);
        let page = page_target(port);
        let (ws, _) = tungstenite::connect(page.as_str()).expect("the DevTools websocket opens");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        Some(Browser { child, ws, next_id: 0, _profile: profile })
    }

    /// Sends a DevTools command and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("DevTools accepts the command");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Message::Text(text) = self.ws.read().expect("DevTools answers") else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
        panic!("no answer to {method} within 60 s");
    }

    /// Evaluates JavaScript in the page (promises awaited) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is true (at most `secs`); `what` names it in the failure.
    fn wait_for(&mut self, expression: &str, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < deadline, "{what}: not within {secs} s; page: {}", self.text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", 30, url);
    }

    fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''").as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the whole page, 1200 px wide, and returns its path.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        let height = self.eval("document.documentElement.scrollHeight").as_f64().unwrap_or(900.0);
        let clip = json!({"x": 0, "y": 0, "width": 1200, "height": height, "scale": 1});
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, base64(shot["data"].as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DevTools port, from the `DevTools listening on ws://127.0.0.1:PORT/…` line (at most 30 s).
fn devtools_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().parse::<u16>().ok());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).ok().flatten().expect("chromium prints its DevTools address")
}

/// The websocket address of the browser's page, from `GET /json/list`.
fn page_target(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let body = &raw[raw.find("\r\n\r\n").expect("an HTTP answer") + 4..];
    let targets: Value = serde_json::from_str(body).expect("a JSON target list");
    let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target");
    page["webSocketDebuggerUrl"].as_str().unwrap().to_string()
}

/// Standard base64 (the screenshot's encoding), decoded.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> =
        text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..group.len()]);
    }
    out
}

/// What the job page should show for a figure path: the value in `summary.json` as text.
fn expected(summary: &Value, path: &str) -> String {
    let value = path.split('.').fold(summary, |v, key| &v[key]);
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().unwrap().to_string()).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn daemon(dir: &Path, extra: &str) -> (Daemon, String) {
    config(dir, extra);
    let source = dir.join("in/sample.csv");
    std::fs::copy(common::sample(), &source).unwrap();
    (Daemon::start(dir), source.display().to_string())
}

#[test]
fn a_job_submitted_through_the_dashboard_shows_its_plots_and_figures() {
    let Some(mut browser) = Browser::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, source) = daemon(tmp.path(), "");
    let hostile = "http://127.0.0.1:9/<script>window.pwned=1</script>.csv";
    daemon.submit(&json!({"source": hostile, "output": "hostile"}));
    let base = format!("http://{}", daemon.addr);
    browser.open(&format!("{base}/"));

    // Live progress: a job slowed down by a fault shows a moving bar, rows/s and ETA.
    let settings = json!({"faults.inject": ["slow:parser:300"], "pipeline.chunk_size": "16KiB"});
    let slow = daemon.submit(&json!({"source": source, "output": "slow", "settings": settings}));
    let slow_row = format!("document.querySelector('tr[data-id=\"{slow}\"]')");
    browser.wait_for(
        &format!(
            "{slow_row} !== null && {slow_row}.dataset.state === 'running' && \
             {slow_row}.querySelector('progress').value > 0 && {slow_row}.textContent.includes('rows/s')"
        ),
        60,
        "a running job's progress on the dashboard",
    );
    browser.screenshot("dashboard-running.png");

    // A refusal is shown, not swallowed.
    let fill = |source: &str, output: &str| {
        format!(
            "(() => {{ const f = document.querySelector('#submit'); f.source.value = {}; f.output.value = {}; \
             f.querySelector('button').click(); return true; }})()",
            json!(source),
            json!(output)
        )
    };
    browser.eval(&fill(&source, "../outside"));
    browser.wait_for(
        "document.querySelector('#submit-result').className === 'error' && \
         document.querySelector('#submit-result').textContent.includes('invalid job: output \"../outside\" contains')",
        30,
        "the refusal shown under the form",
    );

    browser.eval(&fill(&source, "june"));
    browser.wait_for("document.querySelector('#submitted') !== null", 30, "the submitted job's link");
    let id = browser.eval("document.querySelector('#submitted').textContent").as_str().unwrap().to_string();
    let row = format!("document.querySelector('tr[data-id=\"{id}\"]')");
    browser.wait_for(
        &format!("{row} !== null && {row}.dataset.state === 'succeeded'"),
        120,
        "the job succeeded on the dashboard",
    );
    assert_eq!(daemon.job(&id)["state"], "succeeded", "{}", daemon.log());

    // The hostile source is text, and its script never ran.
    let shown =
        browser.eval("[...document.querySelectorAll('td.source')].map(td => td.textContent).join('\\n')");
    assert!(shown.as_str().unwrap().contains(hostile), "{shown}");
    assert_eq!(browser.eval("typeof window.pwned"), json!("undefined"));
    let page = browser.text();
    for text in ["succeeded", "Restarts", "Rejected", "335.4 KiB of 335.4 KiB"] {
        assert!(page.contains(text), "{text} missing from the dashboard: {page}");
    }
    browser.screenshot("dashboard.png");

    browser.open(&format!("{base}/jobs/{id}"));
    browser.wait_for(
        "document.body.dataset.loaded === 'true' && [...document.querySelectorAll('img[data-plot]')]\
         .every(i => i.complete && i.naturalWidth >= 1200)",
        60,
        "the three plots loaded",
    );
    assert_eq!(browser.eval("document.querySelectorAll('img[data-plot]').length"), json!(3));
    let summary = daemon.request("GET", &format!("/v1/jobs/{id}/results"), None).json();
    let shown = browser.eval(
        "Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(td => [td.dataset.figure, td.textContent]))",
    );
    let shown = shown.as_object().expect("figures on the page");
    assert!(shown.len() >= 10, "{shown:?}");
    for (path, text) in shown {
        assert_eq!(text.as_str().unwrap(), expected(&summary, path), "figure {path}");
    }
    browser.screenshot("job.png");
}

#[test]
fn with_a_token_the_page_asks_for_it_once_and_then_shows_the_jobs() {
    let Some(mut browser) = Browser::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut daemon, source) = daemon(tmp.path(), &format!("auth_token = \"{TOKEN}\""));
    daemon.token = Some(TOKEN.to_string());
    let id = daemon.submit(&json!({"source": source, "output": "june"}));
    daemon.wait_for(&id, "succeeded", 120);
    daemon.token = None;
    let shell = daemon.request("GET", "/", None);
    assert_eq!(shell.status, 200);
    assert!(!String::from_utf8_lossy(&shell.body).contains("sample.csv"), "the shell holds no job data");
    assert_eq!(daemon.request("GET", "/v1/jobs", None).status, 401, "the API still needs the token");

    browser.open(&format!("http://{}/", daemon.addr));
    browser.wait_for("document.querySelector('#auth').hidden === false", 30, "the token prompt");
    browser.eval(&format!(
        "(() => {{ const f = document.querySelector('#auth'); f.token.value = {}; f.querySelector('button').click(); return true; }})()",
        json!(TOKEN)
    ));
    browser.wait_for(
        &format!("document.querySelector('tr[data-id=\"{id}\"]')?.dataset.state === 'succeeded'"),
        30,
        "the jobs, fetched with the token",
    );
    browser.open(&format!("http://{}/jobs/{id}", daemon.addr));
    browser.wait_for(
        "document.body.dataset.loaded === 'true' && [...document.querySelectorAll('img[data-plot]')].every(i => i.naturalWidth >= 1200)",
        60,
        "the plots, fetched with the token",
    );
    browser.screenshot("job-with-token.png");
}
