//! A real HTTP/1.1 server on 127.0.0.1 that serves one file with byte ranges, for resume and
//! retry tests of the HTTP client.
//!
//! It serves `/data.csv` (anything else is 404), one request per connection (`Connection: close`),
//! one thread per connection. Every response carries `ETag`, `Last-Modified`, `Accept-Ranges:
//! bytes`, `Content-Length` and `Connection: close`. `Range: bytes=N-`, `bytes=N-M` and
//! `bytes=-N` (a single range) answer `206` with `Content-Range`; a start at or past the end answers
//! `416` with `Content-Range: bytes */TOTAL`; any other Range value (several ranges, other units,
//! garbage) is ignored and the whole body is sent, as RFC 9110 allows. `If-Range` that matches
//! neither the current ETag (strong comparison) nor the current Last-Modified string makes the
//! server ignore the Range and answer `200` with the whole body. Tests steer single requests with
//! [`Behaviour`]s and inspect what happened with [`RangeServer::log`] and
//! [`RangeServer::bytes_sent`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Path the file is served at.
pub const PATH: &str = "/data.csv";

/// Largest piece written to the socket at once.
const PIECE: usize = 16 * 1024;

/// How long a connection may take to send its request head before the server gives up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds since the Unix epoch of the Last-Modified of version 0; each version adds one hour.
const BASE_MTIME: u64 = 1_700_000_000;

/// What the server does with one request instead of (or on top of) serving it normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Serve normally (Range honoured, full `Content-Length` announced) but close the connection
    /// after sending this many body bytes of the response.
    DropAfter(u64),
    /// Ignore any Range header: answer 200 with the whole body.
    IgnoreRange,
    /// Answer with this status code and a short text body (e.g. 503, 404), no file data.
    Status(u16),
    /// Wait this long before sending the response headers, then serve normally.
    Delay(Duration),
}

/// One request the server saw, as recorded by [`RangeServer::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Request method, e.g. "GET" or "HEAD".
    pub method: String,
    /// Request target as sent (including any query), e.g. "/data.csv".
    pub path: String,
    /// Raw `Range` header value, if any.
    pub range: Option<String>,
    /// Raw `If-Range` header value, if any.
    pub if_range: Option<String>,
    /// Status code answered (for [`Behaviour::DropAfter`] the status announced before dropping).
    pub status: u16,
    /// Offset in the file of the first body byte sent (0 for 200 and for responses without data).
    pub start: u64,
    /// File bytes actually written to the socket for this request (0 for HEAD, 404, 416, errors).
    pub sent: u64,
}

/// The current file.
struct File {
    body: Arc<Vec<u8>>,
    version: u64,
}

impl File {
    fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }

    fn last_modified(&self) -> String {
        http_date(BASE_MTIME + self.version * 3600)
    }
}

/// State shared between the handle, the accept loop and the connection threads.
struct Shared {
    file: Mutex<File>,
    queue: Mutex<VecDeque<Behaviour>>,
    log: Mutex<Vec<Served>>,
    bytes_sent: AtomicU64,
    rate: AtomicU64,
    stop: AtomicBool,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not hide the log).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A real HTTP/1.1 server on 127.0.0.1 serving one changeable file with byte ranges until
/// dropped. Dropping it stops the accept loop and waits for that loop (not for connections).
pub struct RangeServer {
    /// URL of the file, e.g. "http://127.0.0.1:41234/data.csv".
    pub url: String,
    /// Address the server listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl RangeServer {
    /// Starts serving `body` at "/data.csv" (anything else is 404) until dropped. The first
    /// version has ETag `"v1"`.
    pub fn start(body: Vec<u8>) -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            file: Mutex::new(File { body: Arc::new(body), version: 1 }),
            queue: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
            bytes_sent: AtomicU64::new(0),
            rate: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                thread::spawn(move || serve(stream, &shared));
            }
        });
        RangeServer { url: format!("http://{addr}{PATH}"), addr, shared, accept: Some(accept) }
    }

    /// Replaces the body (the file "changes"): the version counter goes up, which gives a new
    /// ETag (`"v2"`, `"v3"`, ...) and a Last-Modified one hour later; the length is the new one.
    /// Responses already under way keep sending the old body.
    pub fn set_body(&self, body: Vec<u8>) {
        let mut file = lock(&self.shared.file);
        file.body = Arc::new(body);
        file.version += 1;
    }

    /// Current ETag, quoted, e.g. `"v1"`.
    pub fn etag(&self) -> String {
        lock(&self.shared.file).etag()
    }

    /// Current Last-Modified value, an IMF-fixdate such as "Tue, 14 Nov 2023 22:13:20 GMT".
    pub fn last_modified(&self) -> String {
        lock(&self.shared.file).last_modified()
    }

    /// Queues a behaviour for the next requests: one is consumed per request (any path or
    /// method), in FIFO order; when the queue is empty requests are served normally.
    pub fn push(&self, b: Behaviour) {
        lock(&self.shared.queue).push_back(b);
    }

    /// Every request seen so far, in the order they arrived. `sent` is updated while a response
    /// is being written, and is final once the client has seen the connection close.
    pub fn log(&self) -> Vec<Served> {
        lock(&self.shared.log).clone()
    }

    /// Total file bytes written to sockets across all requests (the short text bodies of 404,
    /// 416 and [`Behaviour::Status`] responses are not counted).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::SeqCst)
    }

    /// Serves at most this many bytes per second from now on, also for responses under way
    /// (0 = unpaced), writing in pieces of at most 16 KiB (about 50 ms worth) and sleeping
    /// between them.
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.shared.rate.store(bytes_per_sec, Ordering::SeqCst);
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; only wait for the loop when the wake-up got through.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok();
        if let Some(handle) = self.accept.take() {
            if woke {
                let _ = handle.join();
            }
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    range: Option<String>,
    if_range: Option<String>,
}

/// Reads the request line and headers (bounded in count and size); `None` if the client sent no
/// complete request head.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?).take(64 * 1024);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut range, mut if_range) = (None, None);
    for _ in 0..200 {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            return Some(Request { method, path, range, if_range });
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim().to_string();
        if name.trim().eq_ignore_ascii_case("range") {
            range = Some(value);
        } else if name.trim().eq_ignore_ascii_case("if-range") {
            if_range = Some(value);
        }
    }
    None
}

/// A single byte range parsed from a Range value, against a file of `len` bytes.
enum RangeSpec {
    /// No usable Range: send the whole body.
    Whole,
    /// Inclusive byte range inside the file.
    Part(u64, u64),
    /// The range starts at or past the end.
    Unsatisfiable,
}

/// Parses `bytes=N-`, `bytes=N-M` or `bytes=-N`; anything else is ignored (`Whole`).
fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some((unit, spec)) = value.split_once('=') else { return RangeSpec::Whole };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeSpec::Whole };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        return match last.parse::<u64>() {
            Err(_) => RangeSpec::Whole,
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if len == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Part(len.saturating_sub(n), len - 1),
        };
    }
    let Ok(start) = first.parse::<u64>() else { return RangeSpec::Whole };
    let end = if last.is_empty() {
        None
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => Some(end),
            _ => return RangeSpec::Whole,
        }
    };
    if start >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(start, end.map_or(len - 1, |e| e.min(len - 1)))
}

/// Sleeps for `d`, in short steps, ending early when the server stops; returns false if it did.
fn sleep_unless_stopped(d: Duration, shared: &Shared) -> bool {
    let deadline = std::time::Instant::now() + d;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// Reason phrase for the status codes tests use.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Handles one connection: one request, one response, then the connection is closed.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let Some(req) = read_request(&stream) else { return };
    let behaviour = lock(&shared.queue).pop_front();
    let (body, etag, last_modified) = {
        let file = lock(&shared.file);
        (file.body.clone(), file.etag(), file.last_modified())
    };
    let len = body.len() as u64;
    let is_head = req.method.eq_ignore_ascii_case("HEAD");
    let path_only = req.path.split('?').next().unwrap_or("");

    // Decide the response: status, extra headers, and either a text body or a file slice.
    let mut extra = String::new();
    let mut text: Option<String> = None;
    let mut slice = (0u64, 0u64); // file offset and length of the data to send
    let status = if let Some(Behaviour::Status(code)) = behaviour {
        text = Some(format!("{code} {}\n", reason(code)));
        code
    } else if !req.method.eq_ignore_ascii_case("GET") && !is_head {
        extra.push_str("Allow: GET, HEAD\r\n");
        text = Some("405 Method Not Allowed\n".into());
        405
    } else if path_only != PATH {
        text = Some("404 Not Found\n".into());
        404
    } else {
        let if_range_ok = req.if_range.as_deref().is_none_or(|v| v == etag || v == last_modified);
        let spec = match (&req.range, &behaviour) {
            (_, Some(Behaviour::IgnoreRange)) => RangeSpec::Whole,
            (Some(range), _) if if_range_ok => parse_range(range, len),
            _ => RangeSpec::Whole,
        };
        match spec {
            RangeSpec::Whole => {
                slice = (0, len);
                200
            }
            RangeSpec::Part(first, last) => {
                extra.push_str(&format!("Content-Range: bytes {first}-{last}/{len}\r\n"));
                slice = (first, last - first + 1);
                206
            }
            RangeSpec::Unsatisfiable => {
                extra.push_str(&format!("Content-Range: bytes */{len}\r\n"));
                text = Some("416 Range Not Satisfiable\n".into());
                416
            }
        }
    };

    let index = {
        let mut log = lock(&shared.log);
        log.push(Served {
            method: req.method.clone(),
            path: req.path.clone(),
            range: req.range.clone(),
            if_range: req.if_range.clone(),
            status,
            start: slice.0,
            sent: 0,
        });
        log.len() - 1
    };

    if let Some(Behaviour::Delay(d)) = behaviour {
        if !sleep_unless_stopped(d, shared) {
            return;
        }
    }

    let (content_type, content_length) = match &text {
        Some(t) => ("text/plain", t.len() as u64),
        None => ("text/csv", slice.1),
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nETag: {etag}\r\nLast-Modified: {last_modified}\r\n\
         Accept-Ranges: bytes\r\n{extra}Content-Type: {content_type}\r\n\
         Content-Length: {content_length}\r\nConnection: close\r\n\r\n",
        reason(status)
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if is_head {
        let _ = stream.shutdown(Shutdown::Write);
        return;
    }
    if let Some(t) = text {
        let _ = stream.write_all(t.as_bytes());
        let _ = stream.shutdown(Shutdown::Write);
        return;
    }

    let limit = match behaviour {
        Some(Behaviour::DropAfter(n)) => n.min(slice.1),
        _ => slice.1,
    };
    let start = slice.0 as usize;
    let data = &body[start..start + limit as usize];
    let mut written = 0usize;
    while written < data.len() {
        let rate = shared.rate.load(Ordering::SeqCst);
        let piece = if rate == 0 { PIECE } else { (rate / 20).clamp(1, PIECE as u64) as usize };
        let chunk = &data[written..(written + piece).min(data.len())];
        let n = match stream.write(chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        written += n;
        shared.bytes_sent.fetch_add(n as u64, Ordering::SeqCst);
        lock(&shared.log)[index].sent = written as u64;
        if rate > 0 && written < data.len() {
            let pause = Duration::from_secs_f64(n as f64 / rate as f64);
            if !sleep_unless_stopped(pause, shared) {
                break;
            }
        }
    }
    let _ = stream.flush();
    if written as u64 == slice.1 {
        let _ = stream.shutdown(Shutdown::Write);
    } else {
        // Cut short (DropAfter, disconnect or stop): close both directions at once.
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// Formats seconds since the Unix epoch as an IMF-fixdate, e.g. "Tue, 14 Nov 2023 22:13:20 GMT".
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
