//! The module map as a test: the top-level modules of `src/` form no cycle, and the functional
//! core reaches no actor, I/O, daemon or cluster module.
//!
//! Dependencies are read from the source text: every `crate::module` path (and every module in a
//! `crate::{…}` group) outside comments and outside the `#[cfg(test)] mod tests` that closes a
//! file. Tests may reach anywhere; shipped code may not loop back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// module → module it uses → the places (`file:line`) that use it.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/config/layers.rs` → `config`), or `None` for the
/// crate roots.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).unwrap().components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The modules named right after each `crate::` that starts on the first line of `rest` (a
/// `crate::{…}` group may go on over later lines, so `rest` runs to the end of the file).
fn used_modules(rest: &str) -> Vec<String> {
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = rest[from..line_end].find("crate::").map(|i| from + i) {
        let after = &rest[at + "crate::".len()..];
        match after.strip_prefix('{') {
            Some(group) => found.extend(group_heads(group)),
            None => found.push(ident(after)),
        }
        from = at + "crate::".len();
    }
    found
}

/// The first name of each item of a `{…}` group (`config::{self, Plan}, error::Error` → `config`,
/// `error`); `group` starts just after the opening brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 1;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => item_start = true,
            c if c.is_whitespace() => {}
            _ if depth == 1 && item_start => {
                heads.push(ident(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> String {
    text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let mut offset = 0;
        for (n, line) in code.lines().enumerate() {
            let start = offset;
            offset += line.len() + 1;
            if line.trim_start().starts_with("//") || !line.contains("crate::") {
                continue;
            }
            for used in used_modules(&code[start..]) {
                if used != module && modules.contains(&used) {
                    let place = format!("{}:{}", file.strip_prefix(root).unwrap().display(), n + 1);
                    graph.entry(module.clone()).or_default().entry(used).or_default().push(place);
                }
            }
        }
    }
    graph
}

/// A path from `from` back to `from`, if there is one.
fn cycle_through(graph: &Graph, from: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &Graph,
        target: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flat_map(|m| m.keys()) {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, target, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(graph, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

/// Every module `from` reaches, directly or not.
fn reach(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for next in graph.get(&m).into_iter().flat_map(|m| m.keys()) {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn the_reader_sees_paths_and_groups() {
    assert_eq!(used_modules("use crate::date::Day;\n"), ["date"]);
    assert_eq!(
        used_modules("use crate::{\n    config::{self, Plan},\n    error::Error, tasks,\n};\nuse crate::x;"),
        ["config", "error", "tasks"]
    );
    assert_eq!(used_modules("let n = crate::size::parse_size(s); crate::faults::hit();"), ["size", "faults"]);
    let g = graph();
    assert!(g["config"].contains_key("tasks"), "config's plan uses the tasks' parameters: {g:?}");
    assert!(g["actors"].contains_key("parse"), "{g:?}");
}

#[test]
fn top_level_modules_form_no_cycle() {
    let g = graph();
    let mut cycles = Vec::new();
    for module in g.keys() {
        if let Some(path) = cycle_through(&g, module) {
            let hops: Vec<String> =
                path.windows(2).map(|w| format!("{} -> {} ({})", w[0], w[1], g[&w[0]][&w[1]][0])).collect();
            cycles.push(hops.join(", "));
        }
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_functional_core_reaches_no_actor_io_daemon_or_cluster_module() {
    let g = graph();
    let shell = [
        "actors", "pipeline", "job", "source", "output", "durable", "daemon", "cluster", "commands", "client",
    ];
    for core in ["chunk", "parse", "schema", "tasks", "report", "plots", "date", "tenths", "size", "error"] {
        let reached = reach(&g, core);
        let bad: Vec<&&str> = shell.iter().filter(|m| reached.contains(**m)).collect();
        assert!(bad.is_empty(), "{core} reaches {bad:?}: {:?}", g.get(core));
    }
}
