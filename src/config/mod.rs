//! Layered configuration: defaults, file, environment, command line.
//!
//! Settings are read with the `config` crate in four layers (later wins): the embedded defaults
//! (`config/*.toml`, one file per concern), an optional `--config PATH` (a file, or a directory
//! of files split the same way), `WXFLOW__SECTION__KEY` environment variables and command-line
//! flags. Each key remembers the layer it came from, so that every
//! validation message can say where a bad value was set. Validation collects every problem at once
//! and turns the raw settings into a [`Plan`] of typed values the job uses.
//!
//! Split by concern, in private modules: `settings` (raw sections), `layers` (where values come
//! from), `validate` (checks) and `plan` (the typed result).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Map, Value, ValueKind};
use serde::{Deserialize, Serialize};

use crate::date::Month;
use crate::source::SourceSpec;
use crate::tasks::forecast::{ForecastMethod, ForecastParams};
use crate::tasks::hottest::HottestParams;
use crate::tasks::window::WindowParams;
use crate::tenths::Tenths;

mod cluster;
mod daemon;
mod layers;
mod plan;
mod settings;
mod validate;

pub use crate::error::{ConfigErrors, ConfigIssue};
pub use crate::schema::Columns;
pub use crate::size::parse_size;
pub use cluster::{ClusterPlan, ClusterSettings};
pub use daemon::{DaemonPlan, DaemonSettings, WatchPlan, WatchSettings};
use layers::*;
pub use layers::{Layers, Origin, Override};
pub use plan::*;
pub use settings::*;
use validate::validate;

/// One file of the compiled-in defaults: its path in the repository, which `config check` and
/// validation messages show as the origin of a default value, and its text.
#[derive(Debug, Clone, Copy)]
pub struct DefaultFile {
    /// e.g. `config/pipeline.toml`.
    pub path: &'static str,
    /// The TOML text.
    pub text: &'static str,
}

macro_rules! default_file {
    ($name:literal) => {
        DefaultFile { path: concat!("config/", $name), text: include_str!(concat!("../../config/", $name)) }
    };
}

/// The defaults, one file per concern (each section in exactly one file, tested), compiled in so
/// the binary behaves the same from any working directory.
pub const DEFAULT_FILES: [DefaultFile; 8] = [
    default_file!("job.toml"),
    default_file!("pipeline.toml"),
    default_file!("analyses.toml"),
    default_file!("logging.toml"),
    default_file!("durability.toml"),
    default_file!("faults.toml"),
    default_file!("daemon.toml"),
    default_file!("cluster.toml"),
];

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "WXFLOW";

/// Resolves all layers and validates them, collecting every problem.
pub fn resolve(layers: &Layers) -> Result<Resolved, ConfigErrors> {
    let (known, mut origins) = default_keys()?;
    let mut issues = Vec::new();

    let mut files = Vec::new();
    if let Some(path) = &layers.file {
        match config_files(path) {
            Ok(found) => files = found,
            Err(issue) => issues.push(issue),
        }
        record_files(&files, &known, &mut origins, &mut issues);
    }
    let env = collect(env_source(&layers.env))?;
    record_layer(&env, &known, &mut origins, &mut issues, |key| Origin::Env(env_var_name(key)));
    for o in &layers.overrides {
        check_override_key(o, &known, &mut origins, &mut issues);
    }
    for (key, value) in &layers.request {
        if known.contains_key(key) {
            origins.insert(key.clone(), Origin::Request);
        } else {
            issues.push(unknown_key(key, &value.to_string(), &Origin::Request.to_string(), &known));
        }
    }
    // Unknown keys were reported above (deserialization ignores them), so the checks below can
    // add every other problem to the same list.
    if issues.iter().any(|i| i.key == "--config") {
        return Err(ConfigErrors(issues)); // the merged build would only repeat the file's error
    }
    let built = build(&files, layers).and_then(|c| {
        c.try_deserialize::<Settings>().map_err(|e| ConfigErrors(vec![type_issue(&e, &origins)]))
    });
    let settings = match built {
        Ok(settings) => settings,
        Err(ConfigErrors(more)) => {
            issues.extend(more);
            return Err(ConfigErrors(issues));
        }
    };
    match validate(&settings, &origins) {
        Ok(plan) if issues.is_empty() => Ok(Resolved { settings, origins, plan }),
        Ok(_) => Err(ConfigErrors(issues)),
        Err(ConfigErrors(more)) => {
            issues.extend(more);
            Err(ConfigErrors(issues))
        }
    }
}

/// Renders the resolved settings as TOML, each key annotated with the layer it came from.
pub fn render(resolved: &Resolved) -> String {
    let value = toml::Value::try_from(&resolved.settings).expect("settings serialize to TOML");
    let mut out = String::new();
    let Some(sections) = value.as_table() else { return out };
    for (section, table) in sections {
        out.push_str(&format!("[{section}]\n"));
        for (key, v) in table.as_table().into_iter().flatten() {
            let dotted = format!("{section}.{key}");
            let origin = resolved.origins.get(&dotted).map(Origin::to_string).unwrap_or_default();
            out.push_str(&format!("{key} = {v}  # {origin}\n"));
        }
        out.push('\n');
    }
    out
}

/// Layers with `sets` as `--set` flags, for the tests of every section.
#[cfg(test)]
pub(crate) fn with(sets: &[(&str, &str)]) -> Layers {
    Layers {
        overrides: sets
            .iter()
            .map(|(k, v)| Override { key: k.to_string(), value: v.to_string(), flag: "--set".into() })
            .collect(),
        ..Layers::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        assert_eq!(Settings::defaults().columns, Columns::default());
        assert_eq!(Settings::defaults().window.days, 9);
    }

    #[test]
    fn defaults_resolve() {
        let r = resolve(&Layers::default()).unwrap();
        assert_eq!(r.plan.pipeline.chunk_size, 1 << 20);
        assert_eq!(r.plan.month, Month { year: 2006, month: 6 });
        assert_eq!(r.plan.window.hi_band(), (Tenths(213), Tenths(233)));
        assert_eq!(r.plan.window.low_band(), (Tenths(101), Tenths(105)));
    }

    #[test]
    fn layers_apply_in_order_and_record_origin() {
        let mut layers = with(&[("pipeline.in_flight", "3")]);
        layers.env.insert("WXFLOW__PIPELINE__IN_FLIGHT".into(), "5".into());
        layers.env.insert("WXFLOW__PIPELINE__PARSE_WORKERS".into(), "7".into());
        let r = resolve(&layers).unwrap();
        assert_eq!(r.plan.pipeline.in_flight, 3);
        assert_eq!(r.plan.pipeline.parse_workers, 7);
        assert_eq!(
            r.origins["pipeline.parse_workers"],
            Origin::Env("WXFLOW__PIPELINE__PARSE_WORKERS".into())
        );
        assert!(
            render(&r).contains("parse_workers = 7  # environment variable WXFLOW__PIPELINE__PARSE_WORKERS")
        );
    }

    #[test]
    fn every_problem_is_reported_with_key_value_and_origin() {
        let err = resolve(&with(&[
            ("pipeline.chunk_size", "0"),
            ("pipeline.parse_workers", "0"),
            ("job.reference_month", "June"),
            ("window.low_tolerance", "-0.2"),
            ("window.hi_center", "22.35"),
            ("job.source", "ftp://example.org/x.csv"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 6, "{text}");
        assert!(
            text.contains("pipeline.chunk_size = 0 (from command-line --set): must be from 1 bytes"),
            "{text}"
        );
        assert!(text.contains("job.reference_month = \"June\""), "{text}");
        assert!(text.contains("window.low_tolerance = -0.2"), "{text}");
        assert!(text.contains("at most one decimal place"), "{text}");
        assert!(text.contains("unsupported scheme"), "{text}");
    }

    #[test]
    fn unknown_keys_suggest_the_right_one() {
        let mut layers = with(&[("pipeline.chunk_sise", "4")]);
        layers.env.insert("WXFLOW__WINDOW__DAZE".into(), "4".into());
        let text = resolve(&layers).unwrap_err().to_string();
        assert!(text.contains("pipeline.chunk_sise = 4 (from command-line --set): unknown key; did you mean `pipeline.chunk_size`?"), "{text}");
        assert!(text.contains("window.daze = 4 (from environment variable WXFLOW__WINDOW__DAZE)"), "{text}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_together() {
        let err = resolve(&with(&[("window.dayz", "3"), ("pipeline.in_flight", "0")])).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert_eq!(err.0[0].key, "window.dayz");
        assert_eq!(err.0[1].key, "pipeline.in_flight");
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = resolve(&with(&[("pipeline.parse_workers", "many")])).unwrap_err().to_string();
        assert!(text.contains("pipeline.parse_workers"), "{text}");
    }

    #[test]
    fn each_section_of_the_defaults_lives_in_exactly_one_file() {
        let sections: Vec<String> = match toml::Value::try_from(Settings::defaults()).unwrap() {
            toml::Value::Table(t) => t.keys().cloned().collect(),
            other => panic!("settings serialize to a table, not {other:?}"),
        };
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for file in &DEFAULT_FILES {
            let table: toml::Table =
                toml::from_str(file.text).unwrap_or_else(|e| panic!("{}: {e}", file.path));
            assert!(!table.is_empty(), "{} sets nothing", file.path);
            for section in table.keys() {
                assert!(sections.contains(section), "{} has [{section}], which Settings lacks", file.path);
                if let Some(first) = seen.insert(section.clone(), file.path) {
                    panic!("[{section}] is in both {first} and {}", file.path);
                }
            }
        }
        let missing: Vec<&String> = sections.iter().filter(|s| !seen.contains_key(*s)).collect();
        assert!(missing.is_empty(), "sections in no config/*.toml file: {missing:?}");
    }

    #[test]
    fn a_default_value_names_the_file_it_comes_from() {
        let r = resolve(&Layers::default()).unwrap();
        assert_eq!(r.origins["window.hi_center"], Origin::Default("config/analyses.toml"));
        assert_eq!(r.origins["pipeline.chunk_size"], Origin::Default("config/pipeline.toml"));
        assert_eq!(r.origins["supervision.max_restarts"], Origin::Default("config/durability.toml"));
        assert_eq!(r.origins["cluster.range_bytes"], Origin::Default("config/cluster.toml"));
        assert!(render(&r).contains("hi_center = 22.3  # config/analyses.toml"));
        let text = resolve(&with(&[("window.days", "0")])).unwrap_err().to_string();
        assert!(text.contains("window.days = 0 (from command-line --set)"), "{text}");
    }

    fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn with_config(path: &Path) -> Layers {
        Layers { file: Some(path.to_path_buf()), ..Layers::default() }
    }

    #[test]
    fn a_config_directory_is_read_file_by_file_in_name_order() {
        let dir = config_dir(&[
            ("pipeline.toml", "[pipeline]\nin_flight = 3\n"),
            ("window.toml", "[window]\ndays = 7\n[forecast]\nbase = 20.0\n"),
            ("notes.md", "[window]\ndays = 1\n"),
        ]);
        let r = resolve(&with_config(dir.path())).unwrap();
        assert_eq!(r.plan.pipeline.in_flight, 3);
        assert_eq!(r.settings.window.days, 7);
        assert_eq!(r.settings.forecast.base, 20.0);
        assert_eq!(r.origins["pipeline.in_flight"], Origin::File(dir.path().join("pipeline.toml")));
        assert_eq!(r.origins["window.days"], Origin::File(dir.path().join("window.toml")));
        assert_eq!(r.origins["window.hi_center"], Origin::Default("config/analyses.toml"));
        // The environment and flags still win over the directory.
        let mut layers = with(&[("window.days", "5")]);
        layers.file = Some(dir.path().to_path_buf());
        assert_eq!(resolve(&layers).unwrap().settings.window.days, 5);
    }

    #[test]
    fn a_key_set_in_two_files_of_a_directory_is_an_error_naming_both() {
        let dir = config_dir(&[
            ("a.toml", "[window]\ndays = 7\n"),
            ("b.toml", "[window]\ndays = 8\nhi_centre = 1.5\n"),
        ]);
        let err = resolve(&with_config(dir.path())).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 2, "{text}");
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        assert!(
            text.contains(&format!(
                "window.days = 8 (from config file {}): also set in {}; set each key in one file of the directory",
                b.display(),
                a.display()
            )),
            "{text}"
        );
        assert!(text.contains("window.hi_centre = 1.5"), "{text}");
        assert!(text.contains("did you mean `window.hi_center`?"), "{text}");
    }

    #[test]
    fn a_config_path_that_names_no_toml_is_an_error_that_says_what_to_give() {
        let empty = config_dir(&[("readme.txt", "nothing here")]);
        let text = resolve(&with_config(empty.path())).unwrap_err().to_string();
        assert!(text.contains("the directory holds no *.toml file"), "{text}");
        let missing = empty.path().join("nope.toml");
        let text = resolve(&with_config(&missing)).unwrap_err().to_string();
        assert!(text.contains(&format!("--config = {}", missing.display())), "{text}");
        assert!(text.contains("no such file or directory"), "{text}");
        let broken = config_dir(&[("a.toml", "[window]\ndays = 7\n"), ("b.toml", "[window\n")]);
        let text = resolve(&with_config(broken.path())).unwrap_err().to_string();
        assert!(text.contains(&format!("--config = {}", broken.path().join("b.toml").display())), "{text}");
        assert!(text.contains("not valid TOML"), "{text}");
    }

    #[test]
    fn the_shipped_config_directory_resolves_to_the_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let r = resolve(&with_config(&dir)).unwrap();
        assert_eq!(
            toml::Value::try_from(&r.settings).unwrap(),
            toml::Value::try_from(Settings::defaults()).unwrap()
        );
        assert_eq!(r.origins["pipeline.in_flight"], Origin::File(dir.join("pipeline.toml")));
    }
}
