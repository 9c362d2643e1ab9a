//! The HTTP API (actix-web): jobs, their results and files, health, readiness and metrics. Every
//! error is JSON `{"error", "detail"}` with a fitting status; with `daemon.auth_token` set, every
//! request but `/healthz`, `/readyz` and the pages' shells (`/`, `/jobs/{id}`, served then without
//! job data) needs `Authorization: Bearer <token>`.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};

use super::registry::State;
use super::scheduler::{Scheduler, Submission};
use super::{dashboard, security, Refusal};
use crate::config::DaemonPlan;
use crate::error::Error;

/// Files a job's output can be fetched by name.
const FILES: [&str; 7] =
    ["task1.txt", "task2.txt", "task3.txt", "rejects.csv", "hottest.svg", "window.svg", "forecast.svg"];

/// Whether `daemon.auth_token` is set: the pages then carry no job data (their script fetches it
/// with the token).
#[derive(Clone, Copy)]
struct TokenRequired(bool);

type Shared = web::Data<Arc<Scheduler>>;

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(self.body())
    }
}

/// A bound, not yet running server.
pub struct Bound {
    /// The server future.
    pub server: Server,
    /// Addresses bound.
    pub addrs: Vec<SocketAddr>,
}

/// Binds `daemon.listen` and builds the server (signals are the daemon's, not actix-web's).
pub fn server(scheduler: Arc<Scheduler>, d: &DaemonPlan) -> Result<Bound, Error> {
    let data = web::Data::new(scheduler);
    let limit = d.max_body_bytes;
    let token: Option<Arc<str>> = d.auth_token.as_deref().map(Arc::from);
    let token_required = web::Data::new(TokenRequired(token.is_some()));
    let http = HttpServer::new(move || {
        let token = token.clone();
        App::new()
            .app_data(data.clone())
            .app_data(token_required.clone())
            .app_data(json_config(limit))
            .app_data(web::PayloadConfig::new(limit))
            .wrap(from_fn(move |req, next| auth(token.clone(), req, next)))
            .configure(routes)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(d.listen)
    .map_err(|source| Error::Listen { addr: d.listen.to_string(), source })?;
    let addrs = http.addrs();
    Ok(Bound { server: http.run(), addrs })
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/jobs/{id}", web::get().to(job_page))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/v1/reload", web::post().to(reload))
        .route("/v1/jobs", web::post().to(submit))
        .route("/v1/jobs", web::get().to(list))
        .route("/v1/jobs/{id}", web::get().to(get))
        .route("/v1/jobs/{id}", web::delete().to(cancel))
        .route("/v1/jobs/{id}/resume", web::post().to(resume))
        .route("/v1/jobs/{id}/results", web::get().to(results))
        .route("/v1/jobs/{id}/files/{name}", web::get().to(file))
        .default_service(web::to(|req: HttpRequest| async move {
            let what = format!("{} {} is not part of the API (see the README)", req.method(), req.path());
            Refusal::new(404, "not found", what).error_response()
        }));
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).content_type_required(false).error_handler(move |err, _req| {
        let refusal = match &err {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => Refusal::new(
                413,
                "request body too large",
                format!("the body is larger than daemon.max_body_bytes ({limit} bytes)"),
            ),
            JsonPayloadError::Deserialize(e) => Refusal::bad_request(
                "invalid request",
                format!("{e}; expected {{\"source\": \"URL or path\", \"output\": \"NAME\", \"settings\": {{\"section.key\": value}}}}"),
            ),
            other => Refusal::bad_request("invalid request", other.to_string()),
        };
        actix_web::error::InternalError::from_response(err, refusal.error_response()).into()
    })
}

async fn auth(
    token: Option<Arc<str>>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let page = req.method() == "GET" && (req.path() == "/" || req.path().starts_with("/jobs/"));
    let open = page || matches!(req.path(), "/healthz" | "/readyz");
    let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
    let loopback = req.app_config().local_addr().ip().is_loopback();
    if let Err(why) =
        security::browser_safe(req.method().as_str(), header("host"), header("origin"), loopback)
    {
        let response = HttpResponse::Forbidden().json(Refusal::new(403, "forbidden", why).body());
        return Ok(req.into_response(response).map_into_right_body());
    }
    if let (Some(token), false) = (token, open) {
        let given = req.headers().get("authorization").and_then(|h| h.to_str().ok());
        if !security::token_matches(given, &token) {
            let refusal = Refusal::new(401, "unauthorized", "send Authorization: Bearer <daemon.auth_token>");
            let response = HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(refusal.body());
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

async fn index(s: Shared, auth: web::Data<TokenRequired>) -> HttpResponse {
    let jobs = if auth.0 { None } else { s.list().as_array().cloned() };
    html(dashboard::index(jobs.as_deref()))
}

async fn job_page(
    s: Shared,
    auth: web::Data<TokenRequired>,
    id: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    if auth.0 {
        return Ok(html(dashboard::job_page(&id, None, None)));
    }
    let job = s.get(&id)?;
    let (dir, state) = s.output_of(&id)?;
    let summary = (state == State::Succeeded)
        .then(|| std::fs::read(dir.join("summary.json")).ok())
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    Ok(html(dashboard::job_page(&id, Some(&job), summary.as_ref())))
}

fn html(page: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(s: Shared) -> HttpResponse {
    if s.stopping() {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "stopping"}))
    } else {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    }
}

async fn metrics(s: Shared) -> HttpResponse {
    let text = s.metrics.render(s.gauges());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

async fn submit(s: Shared, body: web::Json<Submission>) -> Result<HttpResponse, Refusal> {
    let s = s.into_inner();
    let view = web::block(move || s.submit(body.into_inner()))
        .await
        .map_err(|e| Refusal::internal("submission failed", e.to_string()))??;
    let id = view["id"].as_str().unwrap_or_default().to_string();
    Ok(HttpResponse::Created().insert_header(("Location", format!("/v1/jobs/{id}"))).json(view))
}

async fn reload(s: Shared) -> Result<HttpResponse, Refusal> {
    let s = s.into_inner();
    let answer = web::block(move || s.reload())
        .await
        .map_err(|e| Refusal::internal("reload failed", e.to_string()))??;
    Ok(HttpResponse::Ok().json(answer))
}

async fn list(s: Shared) -> HttpResponse {
    HttpResponse::Ok().json(s.list())
}

async fn get(s: Shared, id: web::Path<String>) -> Result<HttpResponse, Refusal> {
    Ok(HttpResponse::Ok().json(s.get(&id)?))
}

async fn cancel(s: Shared, id: web::Path<String>) -> Result<HttpResponse, Refusal> {
    Ok(HttpResponse::Accepted().json(s.cancel(&id)?))
}

async fn resume(s: Shared, id: web::Path<String>) -> Result<HttpResponse, Refusal> {
    Ok(HttpResponse::Accepted().json(s.resume(&id)?))
}

async fn results(s: Shared, id: web::Path<String>) -> Result<HttpResponse, Refusal> {
    let (dir, state) = s.output_of(&id)?;
    finished(&id, state)?;
    let text = std::fs::read(dir.join("summary.json"))
        .map_err(|e| Refusal::new(404, "no results", format!("summary.json of job {id}: {e}")))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(text))
}

async fn file(s: Shared, path: web::Path<(String, String)>) -> Result<HttpResponse, Refusal> {
    let (id, name) = path.into_inner();
    if !FILES.contains(&name.as_str()) {
        return Err(Refusal::new(
            404,
            "no such file",
            format!("{name:?}: the files are {}", FILES.join(", ")),
        ));
    }
    let (dir, state) = s.output_of(&id)?;
    finished(&id, state)?;
    let file = std::fs::File::open(dir.join(&name))
        .map_err(|e| Refusal::new(404, "no such file", format!("{name} of job {id}: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => "text/csv",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    Ok(HttpResponse::Ok().content_type(content_type).no_chunking(len).streaming(stream))
}

fn finished(id: &str, state: State) -> Result<(), Refusal> {
    if state == State::Succeeded {
        Ok(())
    } else {
        Err(Refusal::new(
            409,
            "no results yet",
            format!("job {id} is {}; results exist once it has succeeded", state.name()),
        ))
    }
}
