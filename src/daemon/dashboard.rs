//! The daemon's pages, for people rather than scripts: the dashboard at `/` (jobs with state,
//! progress, restarts and rejects, updating itself, and a form to submit a job) and a page per
//! job at `/jobs/{id}` (its figures from `summary.json`, its three plots, links to its files).
//!
//! Server-rendered with `maud`, which escapes every value, so a source URL with `<script>` in it
//! shows as text. A few lines of inline JavaScript poll the JSON API (no frontend build); they
//! build the DOM with `textContent`, never HTML. With `daemon.auth_token` set, the pages are
//! served as shells without job data: the script asks for the token once, keeps it in
//! `sessionStorage` and sends it as `Authorization: Bearer` on every fetch.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

/// Figures of `summary.json` shown on a job page: (JSON path, label).
pub const FIGURES: [(&str, &str); 13] = [
    ("rows.read", "Rows read"),
    ("rows.processed", "Rows processed"),
    ("rows.rejected", "Rows rejected"),
    ("rows.blank", "Blank lines"),
    ("hottest.days", "Days in input"),
    ("hottest.most_common.times", "Most common hottest time"),
    ("hottest.most_common.days", "… on this many days"),
    ("window.readings", "Readings in the bands"),
    ("forecast.readings", "Forecast readings"),
    ("forecast.method", "Forecast method"),
    ("pipeline.bytes", "Bytes read"),
    ("retries", "Source retries"),
    ("elapsed_secs", "Seconds"),
];

/// The plots a job page shows (served by `GET /v1/jobs/{id}/files/{name}`).
pub const PLOTS: [&str; 3] = ["hottest.svg", "window.svg", "forecast.svg"];

/// The files a job page links to.
const LINKS: [&str; 4] = ["task1.txt", "task2.txt", "task3.txt", "rejects.csv"];

const CSS: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// The dashboard. `jobs` is the API's job list, or `None` when a token is required (the script
/// then fetches it with the token).
pub fn index(jobs: Option<&[Value]>) -> String {
    page(
        "wxflow daemon",
        jobs.is_none(),
        html! {
            h1 { "wxflow daemon" }
            section {
                h2 { "Jobs" }
                table #jobs {
                    (job_head())
                    tbody { @for job in jobs.unwrap_or_default() { (job_row(job)) } }
                }
                p #empty .note hidden[jobs.is_some_and(|j| !j.is_empty())] { "No jobs yet: submit one below." }
            }
            section { h2 { "Submit a job" } (submit_form()) }
        },
    )
}

/// A job's page. `job` and `summary` are the API's view and the job's `summary.json`, or `None`
/// when a token is required or the job has no results yet.
pub fn job_page(id: &str, job: Option<&Value>, summary: Option<&Value>) -> String {
    page(
        &format!("wxflow job {id}"),
        job.is_none(),
        html! {
            p { a href="/" { "← all jobs" } }
            h1 { "Job " span #job-id { (id) } }
            table #job { (job_head()) tbody { (job_row(job.unwrap_or(&Value::Null))) } }
            section {
                h2 { "Figures (summary.json)" }
                table #figures { tbody { @for (path, label) in FIGURES {
                    tr { th { (label) } td data-figure=(path) { (summary.map(|s| figure(s, path)).unwrap_or_default()) } }
                } } }
            }
            section #plots {
                h2 { "Plots" }
                @for name in PLOTS {
                    figure { img data-plot=(name) alt=(name) src=[summary.map(|_| file_url(id, name))];
                             figcaption { (name) } }
                }
            }
            section {
                h2 { "Files" }
                ul #files { @for name in LINKS { li { a .file href=(file_url(id, name)) { (name) } } }
                            li { a .file href={ "/v1/jobs/" (id) "/results" } { "summary.json" } } }
            }
        },
    )
}

fn job_head() -> Markup {
    html! {
        thead { tr { th { "Job" } th { "Source" } th { "Output" } th { "State" } th { "Progress" }
                     th { "Restarts" } th { "Rejected" } th { "Error" } } }
    }
}

fn file_url(id: &str, name: &str) -> String {
    format!("/v1/jobs/{id}/files/{name}")
}

fn page(title: &str, token_required: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body data-token-required=(token_required) {
                form #auth hidden {
                    label { "This daemon needs its token (daemon.auth_token): "
                            input name="token" type="password" autocomplete="off" required; }
                    button { "Use token" }
                }
                main { (body) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

fn submit_form() -> Markup {
    html! {
        form #submit {
            label { "Source (http(s) URL or a file under daemon.input_roots)"
                    input name="source" required placeholder="https://example.org/station/200607.csv"; }
            label { "Output name" input name="output" required placeholder="2006-07"; }
            label { "Settings (optional JSON, as --set keys)"
                    textarea name="settings" rows="2" placeholder="{\"job.reference_month\": \"2006-07\"}" {} }
            button type="submit" { "Submit" }
            p #submit-result role="status" {}
        }
    }
}

/// One row of the jobs table: the same cells the script builds from `GET /v1/jobs`.
fn job_row(job: &Value) -> Markup {
    let id = job["id"].as_str().unwrap_or_default();
    let state = job["state"].as_str().unwrap_or_default();
    html! {
        tr data-id=(id) data-state=(state) {
            td { a href={ "/jobs/" (id) } { (id) } }
            td .source { (job["source"].as_str().unwrap_or_default()) }
            td { (job["output"].as_str().unwrap_or_default()) }
            td .state-cell { span class={ "state " (state) } { (state) } }
            td .progress { (progress(&job["progress"], state)) }
            td .restarts { (restarts(&job["restarts"])) }
            td .rejected { (job["rejected"]) }
            td .error { (job["error"].as_str().unwrap_or_default()) }
        }
    }
}

fn progress(p: &Value, state: &str) -> Markup {
    let (bytes, total) = (p["bytes"].as_f64().unwrap_or(0.0), p["total_bytes"].as_f64());
    // Unknown progress animates only while the job may still move.
    let moving = matches!(state, "queued" | "running");
    let done = match total.filter(|t| *t > 0.0) {
        _ if state == "succeeded" => Some(1.0),
        Some(t) => Some(bytes / t),
        None => (!moving).then_some(0.0),
    };
    html! {
        progress max="1" value=[done] {}
        span .figures { (progress_text(p)) }
    }
}

/// `1.2 MB of 3.4 MB · 5,000 rows/s · ETA 12 s`, as the script writes it too.
fn progress_text(p: &Value) -> String {
    let mut parts = vec![match p["total_bytes"].as_u64() {
        Some(total) => format!("{} of {}", size(p["bytes"].as_u64().unwrap_or(0)), size(total)),
        None => size(p["bytes"].as_u64().unwrap_or(0)),
    }];
    if let Some(rate) = p["rows_per_sec"].as_f64().filter(|r| *r > 0.0) {
        parts.push(format!("{} rows/s", rate.round()));
    }
    if let Some(eta) = p["eta_secs"].as_f64() {
        parts.push(format!("ETA {} s", eta.round()));
    }
    parts.join(" · ")
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// `parser 1, window 2`, or `none`.
fn restarts(r: &Value) -> String {
    let nonzero: Vec<String> = r
        .as_object()
        .map(|m| {
            m.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) > 0).map(|(a, n)| format!("{a} {n}")).collect()
        })
        .unwrap_or_default();
    if nonzero.is_empty() {
        "none".to_string()
    } else {
        nonzero.join(", ")
    }
}

/// The value at a dotted `path` of `summary.json` as text: lists joined by `, `.
pub fn figure(summary: &Value, path: &str) -> String {
    let value = path.split('.').fold(summary, |v, key| &v[key]);
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(source: &str) -> Value {
        json!({"id": "j000001", "source": source, "output": "june", "state": "running",
               "progress": {"bytes": 2048, "total_bytes": 4096, "rows": 10, "rows_per_sec": 1500.4, "eta_secs": 3.2},
               "restarts": {"fetcher": 0, "parser": 2}, "rejected": 5, "error": null})
    }

    #[test]
    fn a_source_with_a_script_tag_shows_as_text() {
        let html = index(Some(&[job("https://x.org/<script>alert(1)</script>.csv")]));
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(html.contains("https://x.org/&lt;script&gt;alert(1)&lt;/script&gt;.csv"));
    }

    #[test]
    fn a_row_shows_state_progress_restarts_per_actor_and_rejects() {
        let html = index(Some(&[job("https://x.org/a.csv")]));
        for text in ["j000001", "running", "2.0 KiB of 4.0 KiB · 1500 rows/s · ETA 3 s", "parser 2", ">5<"]
        {
            assert!(html.contains(text), "{text} missing: {html}");
        }
        assert!(html.contains("<progress max=\"1\" value=\"0.5\">"), "{html}");
    }

    #[test]
    fn with_a_token_required_the_shell_holds_no_job_data() {
        let html = job_page("j000001", None, None);
        assert!(html.contains("data-token-required=\"true\""));
        assert!(!html.contains("https://"), "{html}");
    }

    #[test]
    fn figures_are_read_by_path() {
        let s = json!({"rows": {"read": 7}, "hottest": {"most_common": {"times": ["14:00", "15:10"]}}});
        assert_eq!(figure(&s, "rows.read"), "7");
        assert_eq!(figure(&s, "hottest.most_common.times"), "14:00, 15:10");
        assert_eq!(figure(&s, "rows.missing"), "");
    }
}
