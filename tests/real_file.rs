//! Acceptance on the real June 2006 Cowdenbeath export, through the real binary: from a file,
//! over HTTP from a local server, from a CRLF copy, from stdin, and at chunk sizes from a few
//! bytes to the whole file. Every expected value was computed by hand from the file (and
//! cross-checked with an independent Python `decimal` script).

mod common;

use std::path::Path;

use common::{read, real_file, run, stderr, summary, wxflow, Server};
use serde_json::json;

const TOP10: [&str; 10] = [
    "03/06/2006 14:50 19.6",
    "06/06/2006 14:20 23.2",
    "07/06/2006 13:00 19.6",
    "08/06/2006 16:20 20.7",
    "10/06/2006 13:00 19.9",
    "11/06/2006 11:00 22.4",
    "12/06/2006 15:00 19.4",
    "15/06/2006 13:50 21.1",
    "17/06/2006 14:50 18.9",
    "28/06/2006 10:40 21.4",
];

/// Asserts every acceptance figure of the real file on one output directory.
fn assert_real_results(out: &Path) {
    let s = summary(out);
    assert_eq!(s["rows"], json!({"read": 4473, "processed": 4463, "rejected": 0, "blank": 10}));
    let june = s["hottest"]["monthly"].as_array().unwrap().iter().find(|m| m["month"] == "2006-06").unwrap();
    assert_eq!(june, &json!({"month": "2006-06", "mean_time": "13:24:40", "days": 30}));
    assert_eq!(s["hottest"]["most_common"], json!({"times": ["13:00", "14:50"], "days": 4}));
    let top: Vec<String> = s["hottest"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let d = t["date"].as_str().unwrap();
            format!(
                "{}/{}/{} {} {:.1}",
                &d[8..10],
                &d[5..7],
                &d[0..4],
                t["time"].as_str().unwrap(),
                t["value"].as_f64().unwrap()
            )
        })
        .collect();
    assert_eq!(top, TOP10);
    assert_eq!(s["window"]["readings"], 115);
    assert_eq!(s["forecast"], json!({"readings": 1296, "method": "offset"}));

    let task1 = read(out, "task1.txt");
    assert!(task1.contains("2006-06  13:24:40  (30 days)"), "{task1}");
    assert!(task1.contains("Most common hottest time: 13:00, 14:50  (4 days each)"), "{task1}");
    for line in TOP10 {
        assert!(task1.contains(&format!("  {line}\n")), "{line} missing from\n{task1}");
    }
    let task2 = read(out, "task2.txt");
    assert_eq!(task2.lines().count(), 115);
    assert!(task2.lines().all(|l| l.len() > 16 && l.as_bytes()[2] == b'/' && l.as_bytes()[13] == b':'));
    let exactly_10_1 = task2.lines().filter(|l| l.contains(" low=10.1 ") && l.ends_with("match=low")).count();
    assert_eq!(exactly_10_1, 13, "the readings whose Low Temperature is exactly 10.1");
    let task3 = read(out, "task3.txt");
    let lines: Vec<&str> = task3.lines().collect();
    assert_eq!(lines.len(), 1296);
    assert_eq!(&lines[..2], ["01/07/2006 00:00 22.08", "01/07/2006 00:10 21.98"]);
    assert_eq!(read(out, "rejects.csv"), "line,reason,raw\n");
}

#[test]
fn real_file_from_disk() {
    let Some(path) = real_file() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["--source", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_real_results(dir.path());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("4463 rows processed, 0 rejected, 10 blank"), "{stdout}");
}

#[test]
fn real_file_over_http_from_a_local_server() {
    let Some(path) = real_file() else { return };
    let server =
        Server::start(vec![Server::file("/cowdenbeath/200606.csv", std::fs::read(&path).unwrap())], 1);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/cowdenbeath/200606.csv", server.url);
    let o = run(dir.path(), &["--source", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_real_results(dir.path());
    assert_eq!(summary(dir.path())["source"], url);
}

#[test]
fn real_file_with_crlf_line_endings() {
    let Some(path) = real_file() else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains('\r'));
    let dir = tempfile::tempdir().unwrap();
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(&crlf, text.replace('\n', "\r\n")).unwrap();
    let out = dir.path().join("out");
    let o = run(&out, &["--source", crlf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_real_results(&out);
}

#[test]
fn real_file_from_stdin() {
    let Some(path) = real_file() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = wxflow()
        .args(["run", "--source", "-", "--out"])
        .arg(dir.path())
        .pipe_stdin(&path)
        .unwrap()
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_real_results(dir.path());
}

#[test]
fn chunk_size_never_changes_a_result() {
    let Some(path) = real_file() else { return };
    let whole = std::fs::metadata(&path).unwrap().len().to_string();
    let root = tempfile::tempdir().unwrap();
    let mut reports: Vec<(String, [String; 3])> = Vec::new();
    for size in ["3", "100", "4KiB", "64KiB", whole.as_str()] {
        let out = root.path().join(format!("chunk-{size}"));
        let o = run(&out, &["--source", path.to_str().unwrap(), "--chunk-size", size, "--in-flight", "4"]);
        assert!(o.status.success(), "chunk size {size}: {}", stderr(&o));
        assert_real_results(&out);
        let chunks = summary(&out)["pipeline"]["chunks"].as_u64().unwrap();
        if size == "3" {
            assert_eq!(chunks, 4473, "a 3-byte target cuts one line per chunk");
        }
        if size == whole {
            assert_eq!(chunks, 1);
        }
        reports.push((size.to_string(), ["task1.txt", "task2.txt", "task3.txt"].map(|f| read(&out, f))));
    }
    for (size, files) in &reports[1..] {
        assert_eq!(files, &reports[0].1, "chunk size {size} changed a report");
    }
}
