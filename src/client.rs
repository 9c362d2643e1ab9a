//! The client commands (`submit`, `jobs`, `status`, `cancel`, `resume`): talk to the daemon named
//! by the configuration (its `daemon.addr` file in `daemon.state_dir`, else `daemon.listen`),
//! print readable tables, and map answers to the usual exit codes (no daemon: 7).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::cli::{ClientArgs, JobArgs, StatusArgs, SubmitArgs};
use crate::config::{self, Layers};
use crate::error::Error;

/// Where the daemon is and how to authenticate, from the configuration.
struct Daemon {
    base: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Daemon {
    fn from(args: &ClientArgs) -> Result<Daemon, Error> {
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
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
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

/// `wxflow submit SOURCE --output NAME [--set k=v]`: prints the new job's id.
pub fn submit(args: &SubmitArgs) -> Result<(), Error> {
    let daemon = Daemon::from(&args.client)?;
    let settings: Map<String, Value> = args.set.iter().map(|(k, v)| (k.clone(), setting_value(v))).collect();
    let body = json!({"source": local_source(&args.source), "output": args.output, "settings": settings});
    let job = daemon.call(reqwest::Method::POST, "/v1/jobs", Some(body))?;
    println!("{}", job["id"].as_str().unwrap_or_default());
    eprintln!(
        "wxflow: job {} {} (wxflow status {} --watch)",
        job["id"].as_str().unwrap_or("?"),
        job["state"].as_str().unwrap_or("?"),
        job["id"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// A `--set` value as JSON: lists (`[...]`) as lists, everything else as text (the daemon
/// converts text to numbers and booleans where the key needs them).
fn setting_value(v: &str) -> Value {
    if v.trim_start().starts_with('[') {
        if let Ok(list) = serde_json::from_str(v) {
            return list;
        }
    }
    Value::String(v.to_string())
}

/// A local path made absolute (the daemon runs elsewhere); URLs unchanged.
fn local_source(source: &str) -> String {
    if source.contains("://") || source == "-" {
        return source.to_string();
    }
    std::fs::canonicalize(source).map_or(source.to_string(), |p| p.display().to_string())
}

/// `wxflow jobs`: one line per job.
pub fn jobs(args: &ClientArgs) -> Result<(), Error> {
    let daemon = Daemon::from(args)?;
    let jobs = daemon.call(reqwest::Method::GET, "/v1/jobs", None)?;
    println!(
        "{:<9} {:<10} {:>6} {:>12} {:>8} {:>8}  {:<20} SOURCE",
        "ID", "STATE", "DONE", "ROWS", "REJECTED", "RESTARTS", "OUTPUT"
    );
    for j in jobs.as_array().into_iter().flatten() {
        println!(
            "{:<9} {:<10} {:>6} {:>12} {:>8} {:>8}  {:<20} {}",
            text(&j["id"]),
            text(&j["state"]),
            percent(j),
            j["progress"]["rows"].to_string(),
            j["rejected"].to_string(),
            total_restarts(&j["restarts"]),
            text(&j["output"]),
            text(&j["source"])
        );
    }
    Ok(())
}

/// `wxflow status ID [--watch]`.
pub fn status(args: &StatusArgs) -> Result<(), Error> {
    let daemon = Daemon::from(&args.job.client)?;
    let path = format!("/v1/jobs/{}", args.job.id);
    let mut job = daemon.call(reqwest::Method::GET, &path, None)?;
    if args.watch {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
                .expect("valid template"),
        );
        while !is_final(&job) {
            let p = &job["progress"];
            bar.set_length(p["total_bytes"].as_u64().unwrap_or(0));
            bar.set_position(p["bytes"].as_u64().unwrap_or(0));
            bar.set_message(format!(
                "{} {} rows, {} rows/s, {} restarts",
                text(&job["state"]),
                p["rows"],
                p["rows_per_sec"],
                total_restarts(&job["restarts"])
            ));
            std::thread::sleep(Duration::from_millis(500));
            job = daemon.call(reqwest::Method::GET, &path, None)?;
        }
        bar.finish_and_clear();
    }
    print_job(&job);
    match text(&job["state"]) {
        "failed" => Err(Error::Api {
            status: 200,
            message: format!("job {} failed: {}", args.job.id, text(&job["error"])),
        }),
        _ => Ok(()),
    }
}

/// `wxflow cancel ID`.
pub fn cancel(args: &JobArgs) -> Result<(), Error> {
    let job =
        Daemon::from(&args.client)?.call(reqwest::Method::DELETE, &format!("/v1/jobs/{}", args.id), None)?;
    println!("job {}: {} (cancelling; its checkpoint is kept)", args.id, text(&job["state"]));
    Ok(())
}

/// `wxflow resume ID`.
pub fn resume(args: &JobArgs) -> Result<(), Error> {
    let path = format!("/v1/jobs/{}/resume", args.id);
    let job = Daemon::from(&args.client)?.call(reqwest::Method::POST, &path, None)?;
    println!("job {}: {}", args.id, text(&job["state"]));
    Ok(())
}

fn print_job(j: &Value) {
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
fn total_restarts(restarts: &Value) -> u64 {
    restarts.as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

/// "0", or the actors that restarted with their counts, e.g. "window 2, router 1".
fn restarts_by_actor(restarts: &Value) -> String {
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

fn is_final(j: &Value) -> bool {
    matches!(text(&j["state"]), "succeeded" | "failed" | "cancelled")
}

fn percent(j: &Value) -> String {
    let p = &j["progress"];
    match (p["bytes"].as_u64(), p["total_bytes"].as_u64()) {
        _ if text(&j["state"]) == "succeeded" => "100%".into(),
        (Some(b), Some(t)) if t > 0 => format!("{:.0}%", 100.0 * b as f64 / t as f64),
        _ => "-".into(),
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}
