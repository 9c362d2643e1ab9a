//! The daemon's pages over real HTTP, without a browser (so they are checked even where chromium
//! is missing): a `<script>` source is escaped, the plots are served as SVG, and with a token the
//! shells carry no job data while `/v1/` still refuses without it.

mod common;

use common::daemon::{config, Daemon};
use serde_json::json;

const TOKEN: &str = "dashboard-test-token-0123456789";

fn body(a: &common::daemon::Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

#[test]
fn pages_escape_sources_link_the_files_and_serve_the_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    config(dir, "");
    let source = dir.join("in/sample.csv");
    std::fs::copy(common::sample(), &source).unwrap();
    let daemon = Daemon::start(dir);
    let hostile =
        daemon.submit(&json!({"source": "http://127.0.0.1:9/<script>alert(1)</script>.csv", "output": "x"}));
    let id = daemon.submit(&json!({"source": source.display().to_string(), "output": "june"}));
    daemon.wait_for(&id, "succeeded", 120);
    let index = daemon.request("GET", "/", None);
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    let html = body(&index);
    assert!(html.contains("http://127.0.0.1:9/&lt;script&gt;alert(1)&lt;/script&gt;.csv"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains(&format!("href=\"/jobs/{hostile}\"")) && html.contains(&format!("href=\"/jobs/{id}\""))
    );

    let page = body(&daemon.request("GET", &format!("/jobs/{id}"), None));
    let summary = daemon.request("GET", &format!("/v1/jobs/{id}/results"), None).json();
    let processed = summary["rows"]["processed"].to_string();
    assert!(page.contains(&format!("data-figure=\"rows.processed\">{processed}<")), "{page}");
    for name in ["hottest.svg", "window.svg", "forecast.svg"] {
        let url = format!("/v1/jobs/{id}/files/{name}");
        assert!(page.contains(&format!("src=\"{url}\"")), "{name} not on the page");
        let svg = daemon.request("GET", &url, None);
        assert_eq!(svg.status, 200, "{name}");
        assert_eq!(svg.header("content-type"), Some("image/svg+xml"), "{name}");
        assert!(body(&svg).contains("</svg>"), "{name}");
    }
    for name in ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"] {
        assert!(page.contains(&format!("href=\"/v1/jobs/{id}/files/{name}\"")), "no link to {name}");
    }
}

#[test]
fn with_a_token_the_pages_are_shells_without_job_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    config(dir, &format!("auth_token = \"{TOKEN}\""));
    let source = dir.join("in/sample.csv");
    std::fs::copy(common::sample(), &source).unwrap();
    let mut daemon = Daemon::start(dir);
    daemon.token = Some(TOKEN.to_string());
    let id = daemon.submit(&json!({"source": source.display().to_string(), "output": "june"}));
    daemon.wait_for(&id, "succeeded", 120);
    daemon.token = None;
    for path in ["/".to_string(), format!("/jobs/{id}")] {
        let a = daemon.request("GET", &path, None);
        assert_eq!(a.status, 200, "{path}");
        let html = body(&a);
        assert!(html.contains("data-token-required=\"true\""), "{path}");
        assert!(!html.contains("sample.csv") && !html.contains("4608"), "{path} shows job data: {html}");
    }
    for path in ["/v1/jobs".to_string(), format!("/v1/jobs/{id}/files/hottest.svg")] {
        assert_eq!(daemon.request("GET", &path, None).status, 401, "{path}");
    }
    assert_eq!(daemon.request("POST", "/", Some("{}")).status, 401, "only GET of a page is open");
}
