//! Talking to a running daemon, for the client commands in [`crate::commands`]: where it is (its
//! `daemon.addr` file in `daemon.state_dir`, else `daemon.listen`), requests with the token, the
//! daemon's errors mapped to the usual exit codes (no daemon: 7), and how jobs are shown.

use std::time::Duration;

use serde_json::Value;

use crate::cli::ClientArgs;
use crate::config::{self, Layers};
use crate::error::Error;

/// Where the daemon is and how to authenticate, from the configuration.
pub struct Daemon {
    base: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Daemon {
    /// The daemon the configuration names.
    pub fn from(args: &ClientArgs) -> Result<Daemon, Error> {
        let plan = config::resolve(&Layers::from_process(args.config.clone(), Vec::new()))?.plan.daemon;
        let written = std::fs::read_to_string(plan.state_dir.join(crate::daemon::ADDR_FILE)).ok();
        let addr = written.map(|a| a.trim().to_string()).unwrap_or_else(|| plan.listen.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start an async runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Internal(format!("cannot build an HTTP client: {e}")))?;
        Ok(Daemon { base: format!("http://{addr}"), token: plan.auth_token, runtime, http })
    }

    /// Sends a request; answers the JSON body of a 2xx, or the daemon's error.
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        self.runtime.block_on(async {
            let resp = req.send().await.map_err(|e| Error::NoDaemon {
                addr: self.base.clone(),
                detail: crate::source::error_chain(&e),
            })?;
            let status = resp.status().as_u16();
            let text = resp
                .text()
                .await
                .map_err(|e| Error::NoDaemon { addr: self.base.clone(), detail: e.to_string() })?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if (200..300).contains(&status) {
                return Ok(value);
            }
            let detail = match &value["detail"] {
                Value::Array(items) => {
                    items.iter().map(|i| format!("\n  - {}", i.as_str().unwrap_or(&i.to_string()))).collect()
                }
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Err(Error::Api {
                status,
                message: format!("{}: {detail}", value["error"].as_str().unwrap_or("error")),
            })
        })
    }
}

/// A job as `wxflow status` shows it: one field per line, readable in a terminal or a log.
pub fn print_job(j: &Value) {
    let p = &j["progress"];
    println!("id        {}", text(&j["id"]));
    println!("state     {}", text(&j["state"]));
    println!("source    {}", text(&j["source"]));
    println!("output    {}", text(&j["output"]));
    println!(
        "progress  {} of {} bytes ({}), {} rows, {} rows/s, ETA {} s",
        p["bytes"],
        p["total_bytes"],
        percent(j),
        p["rows"],
        p["rows_per_sec"],
        p["eta_secs"]
    );
    println!("restarts  {}", restarts_by_actor(&j["restarts"]));
    println!("rejected  {}", j["rejected"]);
    if !j["error"].is_null() {
        println!("error     {}", text(&j["error"]));
    }
}

/// All restarts of a job (the API gives them per actor).
pub fn total_restarts(restarts: &Value) -> u64 {
    restarts.as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

/// "0", or the actors that restarted with their counts, e.g. "window 2, router 1".
pub fn restarts_by_actor(restarts: &Value) -> String {
    let some: Vec<String> = restarts
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(actor, n)| format!("{actor} {n}"))
        .collect();
    if some.is_empty() {
        "0".into()
    } else {
        some.join(", ")
    }
}

/// The job will not change any more (so `status --watch` stops).
pub fn is_final(j: &Value) -> bool {
    matches!(text(&j["state"]), "succeeded" | "failed" | "cancelled")
}

/// How far a job got, as a percentage of the source, or "-" when its size is unknown.
pub fn percent(j: &Value) -> String {
    let p = &j["progress"];
    match (p["bytes"].as_u64(), p["total_bytes"].as_u64()) {
        _ if text(&j["state"]) == "succeeded" => "100%".into(),
        (Some(b), Some(t)) if t > 0 => format!("{:.0}%", 100.0 * b as f64 / t as f64),
        _ => "-".into(),
    }
}

/// A JSON string field as text, "-" when absent, so tables never show `null` or quotes.
pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}
