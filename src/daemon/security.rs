//! What the daemon may touch: output names confined to `daemon.output_root`, sources limited to
//! http(s) and local files under `daemon.input_roots`, and the bearer token compared in constant
//! time. Every refusal says what was refused and what is allowed.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use subtle::ConstantTimeEq;

use super::Refusal;
use crate::source::SourceSpec;

/// Longest output name accepted.
const MAX_NAME: usize = 200;

/// Resolves `name` to a folder under `root` (canonical), without creating it; refuses absolute paths,
/// `..`, `.`, hidden names and any path whose existing part resolves (through symlinks) outside
/// the root, so that nothing is ever written outside it.
pub fn output_dir(root: &Path, name: &str) -> Result<PathBuf, Refusal> {
    let refuse = |why: &str| {
        Refusal::bad_request(
            "invalid output name",
            format!(
                "output {name:?} {why}; give a plain relative name such as \"june\" or \"station/2006-06\""
            ),
        )
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(refuse(&format!("must have 1 to {MAX_NAME} characters")));
    }
    let path = Path::new(name);
    if path.is_absolute() || name.starts_with('/') || name.contains('\\') {
        return Err(refuse("is absolute"));
    }
    for c in path.components() {
        match c {
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => {}
            Component::ParentDir => return Err(refuse("contains `..`")),
            _ => return Err(refuse("contains `.`, a hidden name or a root")),
        }
    }
    let dir = root.join(path);
    check_inside(root, &dir).map_err(|why| refuse(&why))?;
    Ok(dir)
}

/// Creates a folder [`output_dir`] accepted, checking again once it exists (a symlink may have
/// appeared in between).
pub fn create_output(root: &Path, dir: &Path) -> Result<(), Refusal> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Refusal::internal("cannot create the output folder", format!("{}: {e}", dir.display()))
    })?;
    check_inside(root, dir)
        .map_err(|why| Refusal::bad_request("invalid output name", format!("{}: {why}", dir.display())))
}

/// Checks that the existing part of `dir` resolves inside `root` (both canonical or made so).
fn check_inside(root: &Path, dir: &Path) -> Result<(), String> {
    let mut existing = dir.to_path_buf();
    while !existing.exists() {
        if !existing.pop() {
            break;
        }
    }
    let real = existing.canonicalize().map_err(|e| format!("cannot be resolved ({e})"))?;
    if real.starts_with(root) {
        Ok(())
    } else {
        Err("leads outside the output root through a symlink".to_string())
    }
}

/// Checks a job's source: `http://`/`https://` URLs, and files under one of `input_roots`
/// (canonical), returned as the canonical path; standard input and other schemes are refused.
pub fn source(text: &str, input_roots: &[PathBuf]) -> Result<String, Refusal> {
    let refuse = |why: String| Refusal::bad_request("source not allowed", format!("source {text:?}: {why}"));
    match SourceSpec::parse(text).map_err(refuse)? {
        SourceSpec::Http(url) => Ok(url),
        SourceSpec::Stdin => Err(refuse("standard input cannot be read by the daemon; give an http(s) URL or a file under daemon.input_roots".into())),
        SourceSpec::File(path) => {
            let roots = if input_roots.is_empty() {
                "none are configured".to_string()
            } else {
                input_roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
            };
            let real = path.canonicalize().map_err(|e| refuse(format!("cannot open it ({e})")))?;
            if !real.is_file() || !input_roots.iter().any(|r| real.starts_with(r)) {
                return Err(refuse(format!(
                    "local files must be under daemon.input_roots ({roots}); add the folder there or serve the file over http"
                )));
            }
            Ok(real.display().to_string())
        }
    }
}

/// Whether `given` (the `Authorization` header) carries `token`, compared in constant time.
pub fn token_matches(given: Option<&str>, token: &str) -> bool {
    let Some((scheme, bearer)) = given.and_then(|h| h.trim().split_once(' ')) else { return false };
    scheme.eq_ignore_ascii_case("bearer") && bool::from(bearer.trim().as_bytes().ct_eq(token.as_bytes()))
}

/// Refuses what a web page on another site could make a browser send to a daemon on this
/// machine: a state-changing request (anything but GET and HEAD) whose `Origin` is not the
/// daemon's own address (cross-site request forgery: a plain-text POST needs no preflight), and,
/// on a loopback daemon, any request whose `Host` is not a loopback name (DNS rebinding). Clients
/// that are not browsers (curl, `wxflow submit`) send no `Origin` and the right `Host`.
pub fn browser_safe(
    method: &str,
    host: Option<&str>,
    origin: Option<&str>,
    loopback: bool,
) -> Result<(), String> {
    let host = host.unwrap_or("");
    if loopback && !is_loopback_host(host) {
        return Err(format!(
            "Host {host:?} is not a loopback name; this daemon answers only requests addressed to 127.0.0.1, \
             [::1] or localhost"
        ));
    }
    let Some(origin) = origin.filter(|_| !matches!(method, "GET" | "HEAD")) else { return Ok(()) };
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest.trim_end_matches('/'));
    if authority.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(format!(
        "a {method} from the web page at {origin:?} (another site than this daemon, {host}); only the \
         daemon's own pages, curl and the wxflow commands may change jobs"
    ))
}

/// `127.0.0.1:8640`, `localhost:8640`, `[::1]:8640` (with or without the port).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses to listen beyond loopback without a token.
pub fn check_listen(listen: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if listen.ip().is_loopback() || token.is_some() {
        return Ok(());
    }
    Err(format!(
        "daemon.listen = {listen} is not a loopback address, and daemon.auth_token is empty: anyone who can \
         reach it could run jobs. Set daemon.auth_token (at least 16 characters) or listen on 127.0.0.1"
    ))
}

/// Makes `dir` exist and returns its canonical path.
pub fn canonical_dir(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    dir.canonicalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical_dir(&tmp.path().join("out")).unwrap();
        let june = output_dir(&root, "june").unwrap();
        assert!(june.starts_with(&root));
        create_output(&root, &june).unwrap();
        assert!(output_dir(&root, "station/2006-06").is_ok());
        for bad in ["../x", "/etc", "a/../../x", ".", ".hidden", "", "a\\b"] {
            assert_eq!(output_dir(&root, bad).unwrap_err().status, 400, "{bad}");
        }
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert_eq!(output_dir(&root, "link/x").unwrap_err().status, 400);
        assert_eq!(create_output(&root, &root.join("link/y")).unwrap_err().status, 400);
        assert!(!outside.join("x").exists(), "nothing created outside");
        std::fs::remove_dir(outside.join("y")).ok();
    }

    #[test]
    fn sources_are_urls_or_files_under_the_input_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let root = canonical_dir(&tmp.path().join("in")).unwrap();
        let roots = std::slice::from_ref(&root);
        std::fs::write(root.join("a.csv"), "x").unwrap();
        std::fs::write(tmp.path().join("b.csv"), "x").unwrap();
        assert!(source("http://127.0.0.1/x.csv", &[]).is_ok());
        assert!(source(&root.join("a.csv").display().to_string(), roots).is_ok());
        for bad in ["-", "ftp://x/y.csv", "/etc/passwd"] {
            assert_eq!(source(bad, roots).unwrap_err().status, 400, "{bad}");
        }
        let escape = root.join("../b.csv").display().to_string();
        assert_eq!(source(&escape, roots).unwrap_err().status, 400);
        assert!(source(&root.join("a.csv").display().to_string(), &[]).is_err(), "no roots by default");
    }

    #[test]
    fn tokens() {
        assert!(token_matches(Some("Bearer 0123456789abcdef"), "0123456789abcdef"));
        assert!(
            token_matches(Some("bearer 0123456789abcdef"), "0123456789abcdef"),
            "the scheme ignores case"
        );
        assert!(!token_matches(Some("Basic 0123456789abcdef"), "0123456789abcdef"));
        assert!(!token_matches(Some("Bearer 0123456789abcde"), "0123456789abcdef"));
        assert!(!token_matches(Some("Bearer 0123456789abcdeX"), "0123456789abcdef"));
        assert!(!token_matches(None, "0123456789abcdef"));
        assert!(check_listen("0.0.0.0:1".parse().unwrap(), None).is_err());
        assert!(check_listen("127.0.0.1:1".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn other_sites_cannot_change_jobs_or_rebind_a_loopback_daemon() {
        let host = Some("127.0.0.1:8640");
        assert_eq!(browser_safe("POST", host, None, true), Ok(()), "curl sends no Origin");
        assert_eq!(browser_safe("POST", host, Some("http://127.0.0.1:8640"), true), Ok(()), "own pages");
        assert_eq!(
            browser_safe("GET", host, Some("http://evil.example"), true),
            Ok(()),
            "reads need the token"
        );
        let e = browser_safe("POST", host, Some("http://evil.example"), true).unwrap_err();
        assert!(e.contains("evil.example"), "{e}");
        assert!(browser_safe("DELETE", host, Some("null"), true).is_err());
        assert!(browser_safe("GET", Some("evil.example:8640"), None, true).unwrap_err().contains("loopback"));
        assert_eq!(browser_safe("GET", Some("evil.example:8640"), None, false), Ok(()), "a token guards it");
        for ok in ["localhost:8640", "[::1]:8640", "127.0.0.1", "LOCALHOST"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["", "evil.example", "127.0.0.1.evil.example:80", "[::2]:8640"] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
