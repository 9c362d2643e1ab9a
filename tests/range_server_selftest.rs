//! Tests of the range-capable test server itself (`common::range_server`), with plain
//! `std::net::TcpStream` requests, so the resume/retry tests of the HTTP client can trust it.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::range_server::{http_date, Behaviour, RangeServer, Served};

/// A parsed response: status, headers (names lower-cased), body bytes as received until EOF.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one request with the given extra header lines and reads the response to EOF.
fn request(server: &RangeServer, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", server.addr);
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    // A dropped connection may end in a reset; keep what arrived.
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ASCII head");
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Response { status, headers, body }
}

fn get(server: &RangeServer, headers: &[(&str, &str)]) -> Response {
    request(server, "GET", "/data.csv", headers)
}

/// 1000 distinct-ish bytes.
fn body() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn assert_common_headers(r: &Response) {
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"') && e.ends_with('"')));
    assert!(r.header("last-modified").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("content-length").is_some());
}

#[test]
fn full_get_serves_the_whole_body_with_all_headers() {
    let server = RangeServer::start(body());
    assert!(server.url.starts_with("http://127.0.0.1:") && server.url.ends_with("/data.csv"));
    let r = get(&server, &[]);
    assert_eq!(r.status, 200);
    assert_common_headers(&r);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.body, body());
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0],
        Served {
            method: "GET".into(),
            path: "/data.csv".into(),
            range: None,
            if_range: None,
            status: 200,
            start: 0,
            sent: 1000
        }
    );
    assert_eq!(server.bytes_sent(), 1000);
}

#[test]
fn open_ended_and_closed_ranges_answer_206() {
    let server = RangeServer::start(body());
    let r = get(&server, &[("Range", "bytes=10-")]);
    assert_eq!(r.status, 206);
    assert_common_headers(&r);
    assert_eq!(r.header("content-range"), Some("bytes 10-999/1000"));
    assert_eq!(r.header("content-length"), Some("990"));
    assert_eq!(r.body, body()[10..]);

    // Header names are case-insensitive.
    let r = get(&server, &[("rAnGe", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.body, body()[10..20]);

    // An end past the file is clamped; a suffix range gives the tail.
    let r = get(&server, &[("Range", "bytes=990-5000")]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 990-999/1000")));
    assert_eq!(r.body, body()[990..]);
    let r = get(&server, &[("Range", "bytes=-5")]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 995-999/1000")));
    assert_eq!(r.body, body()[995..]);

    let log = server.log();
    assert_eq!(log.len(), 4);
    assert_eq!(
        (log[0].range.as_deref(), log[0].status, log[0].start, log[0].sent),
        (Some("bytes=10-"), 206, 10, 990)
    );
    assert_eq!((log[1].range.as_deref(), log[1].start, log[1].sent), (Some("bytes=10-19"), 10, 10));
    assert_eq!((log[2].start, log[2].sent), (990, 10));
    assert_eq!((log[3].start, log[3].sent), (995, 5));
    assert_eq!(server.bytes_sent(), 990 + 10 + 10 + 5);
}

#[test]
fn unsatisfiable_and_unusable_ranges() {
    let server = RangeServer::start(body());
    let r = get(&server, &[("Range", "bytes=1000-")]);
    assert_eq!(r.status, 416);
    assert_common_headers(&r);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    let r = get(&server, &[("Range", "bytes=5000-6000")]);
    assert_eq!(r.status, 416);
    // Several ranges or garbage: ignored, whole body.
    let r = get(&server, &[("Range", "bytes=0-1,5-6")]);
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let r = get(&server, &[("Range", "bytes=20-10")]);
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let log = server.log();
    assert_eq!(log.iter().map(|s| s.status).collect::<Vec<_>>(), [416, 416, 200, 200]);
    assert_eq!((log[0].sent, log[1].sent), (0, 0));
    assert_eq!(server.bytes_sent(), 2000);
}

#[test]
fn if_range_matching_etag_or_date_honours_the_range_otherwise_whole_body() {
    let server = RangeServer::start(body());
    let etag = server.etag();
    let date = server.last_modified();
    assert_eq!(etag, "\"v1\"");

    let r = get(&server, &[("Range", "bytes=100-"), ("If-Range", &etag)]);
    assert_eq!((r.status, r.body.as_slice()), (206, &body()[100..]));
    let r = get(&server, &[("Range", "bytes=100-"), ("if-range", &date)]);
    assert_eq!((r.status, r.body.as_slice()), (206, &body()[100..]));

    let r = get(&server, &[("Range", "bytes=100-"), ("If-Range", "\"v0\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.body, body());
    // Weak tags never match (strong comparison).
    let r = get(&server, &[("Range", "bytes=100-"), ("If-Range", "W/\"v1\"")]);
    assert_eq!(r.status, 200);

    // After the file changes, the old tag no longer matches.
    server.set_body(b"new content".to_vec());
    let r = get(&server, &[("Range", "bytes=3-"), ("If-Range", &etag)]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"new content"[..]));
    let r = get(&server, &[("Range", "bytes=4-"), ("If-Range", &server.etag())]);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"content"[..]));

    let log = server.log();
    assert_eq!(log[0].if_range.as_deref(), Some(etag.as_str()));
    assert_eq!(log[1].if_range.as_deref(), Some(date.as_str()));
    assert_eq!(log.iter().map(|s| s.status).collect::<Vec<_>>(), [206, 206, 200, 200, 200, 206]);
}

#[test]
fn set_body_changes_etag_last_modified_and_length() {
    let server = RangeServer::start(body());
    let first = get(&server, &[]);
    server.set_body(vec![b'x'; 20]);
    let second = get(&server, &[]);
    assert_eq!(second.header("etag"), Some("\"v2\""));
    assert_ne!(first.header("etag"), second.header("etag"));
    assert_ne!(first.header("last-modified"), second.header("last-modified"));
    assert_eq!(second.header("last-modified"), Some(server.last_modified().as_str()));
    assert_eq!(second.header("content-length"), Some("20"));
    assert_eq!(second.body, vec![b'x'; 20]);
    server.set_body(Vec::new());
    assert_eq!(server.etag(), "\"v3\"");
    let r = get(&server, &[("Range", "bytes=0-")]);
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */0")));
}

#[test]
fn head_gives_headers_only() {
    let server = RangeServer::start(body());
    let r = request(&server, "HEAD", "/data.csv", &[]);
    assert_eq!(r.status, 200);
    assert_common_headers(&r);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert!(r.body.is_empty());
    let r = request(&server, "HEAD", "/data.csv", &[("Range", "bytes=10-")]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 10-999/1000")));
    assert!(r.body.is_empty());
    assert_eq!(server.bytes_sent(), 0);
    assert_eq!(server.log()[0].method, "HEAD");
}

#[test]
fn other_paths_and_methods_are_logged_errors() {
    let server = RangeServer::start(body());
    let r = request(&server, "GET", "/other.csv", &[]);
    assert_eq!(r.status, 404);
    assert_common_headers(&r);
    let r = request(&server, "POST", "/data.csv", &[]);
    assert_eq!(r.status, 405);
    // A query string does not change the path.
    let r = request(&server, "GET", "/data.csv?x=1", &[]);
    assert_eq!(r.status, 200);
    let log = server.log();
    assert_eq!(log.len(), 3);
    assert_eq!((log[0].path.as_str(), log[0].status, log[0].sent), ("/other.csv", 404, 0));
    assert_eq!((log[1].method.as_str(), log[1].status), ("POST", 405));
    assert_eq!(server.bytes_sent(), 1000);
}

#[test]
fn drop_after_cuts_the_body_short() {
    let server = RangeServer::start(body());
    server.push(Behaviour::DropAfter(100));
    server.push(Behaviour::DropAfter(50));
    let r = get(&server, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.body, body()[..100]);
    let r = get(&server, &[("Range", "bytes=100-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("900"));
    assert_eq!(r.body, body()[100..150]);
    // The queue is empty again: normal service.
    let r = get(&server, &[("Range", "bytes=150-")]);
    assert_eq!(r.body, body()[150..]);
    let log = server.log();
    assert_eq!(
        log.iter().map(|s| (s.status, s.start, s.sent)).collect::<Vec<_>>(),
        [(200, 0, 100), (206, 100, 50), (206, 150, 850)]
    );
    assert_eq!(server.bytes_sent(), 1000);
}

#[test]
fn ignore_range_status_and_delay_behaviours() {
    let server = RangeServer::start(body());
    server.push(Behaviour::IgnoreRange);
    server.push(Behaviour::Status(503));
    server.push(Behaviour::Status(404));
    server.push(Behaviour::Delay(Duration::from_millis(300)));

    let r = get(&server, &[("Range", "bytes=10-")]);
    assert_eq!((r.status, r.header("content-range"), r.body.len()), (200, None, 1000));
    let r = get(&server, &[("Range", "bytes=10-")]);
    assert_eq!(r.status, 503);
    assert_common_headers(&r);
    assert_eq!(r.header("content-range"), None);
    assert!(r.body.starts_with(b"503"));
    let r = get(&server, &[]);
    assert_eq!(r.status, 404);
    let begun = Instant::now();
    let r = get(&server, &[("Range", "bytes=10-19")]);
    assert!(begun.elapsed() >= Duration::from_millis(300), "{:?}", begun.elapsed());
    assert_eq!((r.status, r.body.as_slice()), (206, &body()[10..20]));

    let log = server.log();
    assert_eq!(
        log.iter().map(|s| (s.status, s.sent)).collect::<Vec<_>>(),
        [(200, 1000), (503, 0), (404, 0), (206, 10)]
    );
    assert_eq!(server.bytes_sent(), 1010);
}

#[test]
fn set_rate_paces_the_body() {
    let server = RangeServer::start(vec![b'a'; 10_000]);
    server.set_rate(20_000);
    let begun = Instant::now();
    let r = get(&server, &[]);
    let took = begun.elapsed();
    assert_eq!(r.body.len(), 10_000);
    assert!(took >= Duration::from_millis(350), "{took:?}");
    server.set_rate(0);
    let begun = Instant::now();
    let r = get(&server, &[]);
    assert_eq!(r.body.len(), 10_000);
    assert!(begun.elapsed() < took);
    assert_eq!(server.bytes_sent(), 20_000);
}

#[test]
fn drop_does_not_hang_and_closes_the_port() {
    let server = RangeServer::start(body());
    server.push(Behaviour::Delay(Duration::from_secs(60)));
    // A connection waiting in a long delay, and one that never sends a request.
    let mut waiting = TcpStream::connect(server.addr).unwrap();
    waiting.write_all(b"GET /data.csv HTTP/1.1\r\n\r\n").unwrap();
    let _silent = TcpStream::connect(server.addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.log().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.log().len(), 1);
    let addr = server.addr;
    let begun = Instant::now();
    drop(server);
    assert!(begun.elapsed() < Duration::from_secs(2), "{:?}", begun.elapsed());
    assert!(TcpStream::connect(addr).is_err(), "still listening after drop");
    // The delayed connection is closed without a response once the server stops.
    waiting.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = waiting.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn http_dates_are_imf_fixdates() {
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
}
