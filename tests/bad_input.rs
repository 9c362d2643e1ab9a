//! Bad input through the real binary: each case exits with its documented code and a message a
//! user can act on, and nothing panics. Exit codes: 2 usage/config, 3 data, 4 I/O or network.

mod common;

use std::path::Path;
use std::process::Output;

use common::{read, run, stderr, summary, wxflow, Server};

const HEADER: &str = "Date,Time,Temp Humidity Index   ,Outside Temperature,WindChill,Hi Temperature,Low Temperature,Outside Humidity,DewPoint,WindSpeed,Hi,Wind Direction,Rain,Barometer,Inside  Temperature,Inside  Humidity,ArchivePeriod";

/// Two days of synthetic data made by `wxflow gen` (288 good rows).
fn two_days() -> String {
    let o = wxflow().args(["gen", "--start", "2006-06-01", "--days", "2"]).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

fn run_on(contents: &[u8], extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    std::fs::write(&input, contents).unwrap();
    let mut args = vec!["--source", input.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&dir.path().join("out"), &args);
    (o, dir)
}

fn assert_fails(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
}

#[test]
fn missing_column_lists_expected_and_found() {
    let body = two_days().replacen("Outside Temperature", "Temp Out", 1);
    let (o, _dir) = run_on(body.as_bytes(), &[]);
    assert_fails(
        &o,
        3,
        &[
            "line 1",
            "lacks required column(s) `Outside Temperature`",
            "expected: Date, Time, Outside Temperature, Hi Temperature, Low Temperature",
            "found:    Date, Time, Temp Humidity Index, Temp Out, WindChill",
            "--set columns.outside=",
        ],
    );
}

#[test]
fn renamed_column_works_when_configured() {
    let body = two_days().replacen("Outside Temperature", "Temp Out", 1);
    let (o, dir) = run_on(body.as_bytes(), &["--set", "columns.outside=temp  out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary(&dir.path().join("out"))["rows"]["processed"], 288);
}

#[test]
fn html_body_over_http_is_not_csv() {
    let page = b"<!DOCTYPE html>\n<html><head><title>Site maintenance</title></head></html>\n".to_vec();
    let server = Server::start(vec![Server::file("/200606.csv", page)], 1);
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--source", &format!("{}/200606.csv", server.url)]);
    assert_fails(&o, 3, &["not a CSV weather export", "looks like an HTML page", "<!DOCTYPE html>"]);
    assert!(!dir.path().join("summary.json").exists());
}

#[test]
fn http_404_names_the_status() {
    let server = Server::start(vec![], 1);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/cowdenbeath/209913.csv", server.url);
    let o = run(dir.path(), &["--source", &url]);
    assert_fails(&o, 4, &[&url, "answered HTTP 404 Not Found", "check the URL"]);
}

#[test]
fn unreachable_url_is_a_network_error() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--source", "http://127.0.0.1:1/200606.csv"]);
    assert_fails(&o, 4, &["cannot fetch http://127.0.0.1:1/200606.csv", "onnection refused"]);
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--source", "/nonexistent/200606.csv"]);
    assert_fails(&o, 4, &["cannot open /nonexistent/200606.csv", "No such file"]);
}

#[test]
fn empty_file() {
    let (o, _dir) = run_on(b"", &[]);
    assert_fails(&o, 3, &["the input is empty", "Outside Temperature"]);
    let (o, _dir) = run_on(b"\n\r\n  \n", &[]);
    assert_fails(&o, 3, &["the input is empty"]);
}

#[test]
fn a_lone_unterminated_header_line_is_line_1() {
    let (o, _dir) = run_on(b"Date,Time,Temp Out", &[]);
    assert_fails(&o, 3, &["the header (line 1) lacks required column(s)"]);
    let (o, _dir) = run_on(b"\n\nDate,Time,Temp Out", &[]);
    assert_fails(&o, 3, &["the header (line 3) lacks required column(s)"]);
}

#[test]
fn header_only() {
    for body in [HEADER.to_string(), format!("{HEADER}\n"), format!("{HEADER}\r\n\r\n\n")] {
        let (o, _dir) = run_on(body.as_bytes(), &[]);
        assert_fails(&o, 3, &["header but no data rows"]);
    }
}

#[test]
fn truncated_last_line_is_rejected_and_reported() {
    let mut body = two_days();
    body.push_str("03/06/2006,00:00,12.1,12.1,12");
    let (o, dir) = run_on(body.as_bytes(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("out");
    let s = summary(&out);
    assert_eq!(s["rows"], serde_json::json!({"read": 289, "processed": 288, "rejected": 1, "blank": 0}));
    let rejects = read(&out, "rejects.csv");
    assert_eq!(
        rejects,
        "line,reason,raw\n290,\"expected 17 fields, found 5 (last line has no line ending: the input may be truncated)\",\"03/06/2006,00:00,12.1,12.1,12\"\n"
    );
    assert!(stderr(&o).contains("warning: 1 row(s) rejected"), "{}", stderr(&o));
}

#[test]
fn garbage_bytes_instead_of_csv() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (o, _dir) = run_on(&garbage, &[]);
    assert_fails(&o, 3, &["not a CSV weather export", "binary data", "First bytes: \""]);
}

#[test]
fn garbage_bytes_inside_the_data_are_rejected_rows() {
    let mut body = two_days().into_bytes();
    let at = body.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(100).unwrap().0 + 1;
    body.splice(at..at, b"\xff\xfe\x00garbage\x01,\x02\n".iter().copied());
    let (o, dir) = run_on(&body, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("out");
    assert_eq!(summary(&out)["rows"]["rejected"], 1);
    assert!(
        read(&out, "rejects.csv").contains("102,\"expected 17 fields, found 2\""),
        "{}",
        read(&out, "rejects.csv")
    );
}

#[test]
fn too_many_bad_rows_fail_the_job_and_keep_the_rejects() {
    let o = wxflow().args(["gen", "--days", "1", "--bad-rows", "5"]).output().unwrap();
    let (o, dir) = run_on(&o.stdout, &[]);
    assert_fails(
        &o,
        3,
        &[
            "5 of 149 rows were rejected (3.36%), more than job.max_reject_ratio allows (1.00%)",
            "Date `",
            "--set job.max_reject_ratio=",
        ],
    );
    let rejects = read(&dir.path().join("out"), "rejects.csv");
    assert_eq!(rejects.lines().count(), 6, "{rejects}");
    // Raising the limit lets the same input through, with the same rows rejected.
    let (o, _dir) = run_on(
        &std::fs::read(dir.path().join("input.csv")).unwrap(),
        &["--set", "job.max_reject_ratio=0.05"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn existing_results_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    std::fs::write(&input, two_days()).unwrap();
    let out = dir.path().join("out");
    assert!(run(&out, &["--source", input.to_str().unwrap()]).status.success());
    let o = run(&out, &["--source", input.to_str().unwrap()]);
    assert_fails(&o, 2, &["already holds results", "--force"]);
    let o = run(&out, &["--source", input.to_str().unwrap(), "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!Path::new(&out).join(".summary.json.partial").exists());
}

#[test]
fn download_cut_short_reports_the_byte_reached() {
    // The server promises more bytes than it sends, then closes: a truncated download.
    let body = two_days();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/200606.csv", listener.local_addr().unwrap());
    let sent = body.len() / 2;
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&body.as_bytes()[..sent]);
    });
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--source", &url, "--set", "pipeline.retry_backoff_ms=1"]);
    server.join().unwrap();
    // Retried from the byte reached (the server is gone by then), then reported with both causes.
    let error_line = stderr(&o).lines().find(|l| l.starts_with("error:")).unwrap_or_default().to_string();
    assert!(error_line.contains(&format!("reading {url} failed at byte {sent}")), "{error_line}");
    assert!(
        error_line.contains(&format!("5 retries from byte {sent} failed, the last with: cannot fetch")),
        "{error_line}"
    );
    assert_fails(&o, 4, &[&format!("reading {url} failed at byte {sent}")]);
    assert!(!dir.path().join("summary.json").exists(), "no partial results");
}
