//! `wxflow submit SOURCE --output NAME [--set k=v]`: hands a job to the running daemon.

use serde_json::{json, Map, Value};

use crate::cli::SubmitArgs;
use crate::client::Daemon;
use crate::error::Error;

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
