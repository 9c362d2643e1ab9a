//! Layered configuration: defaults, file, environment, command line.
//!
//! Settings are read with the `config` crate in four layers (later wins): the embedded
//! `config/default.toml`, an optional `--config FILE`, `WXFLOW__SECTION__KEY` environment
//! variables and command-line flags. Each key remembers the layer it came from, so that every
//! validation message can say where a bad value was set. Validation collects every problem at once
//! and turns the raw settings into a [`Plan`] of typed values the job uses.
//!
//! Split by concern, in private modules: `settings` (raw sections), `layers` (where values come
//! from), `validate` (checks) and `plan` (the typed result).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
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

pub use cluster::{ClusterPlan, ClusterSettings};
pub use daemon::{DaemonPlan, DaemonSettings, WatchPlan, WatchSettings};
use layers::*;
pub use layers::{ConfigErrors, ConfigIssue, Layers, Origin, Override};
pub use plan::*;
pub use settings::*;
use validate::validate;

/// The defaults, compiled in so the binary behaves the same from any working directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "WXFLOW";

/// Resolves all layers and validates them, collecting every problem.
pub fn resolve(layers: &Layers) -> Result<Resolved, ConfigErrors> {
    let known = flatten(&collect(default_source())?);
    let mut issues = Vec::new();
    let mut origins: BTreeMap<String, Origin> = known.keys().map(|k| (k.clone(), Origin::Default)).collect();

    if let Some(path) = &layers.file {
        match file_layer(path) {
            Ok(map) => record_layer(&map, &known, &mut origins, &mut issues, |_| Origin::File(path.clone())),
            Err(issue) => issues.push(issue),
        }
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
    let built = build(layers).and_then(|c| {
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
            let origin = resolved.origins.get(&dotted).unwrap_or(&Origin::Default);
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
        assert_eq!(Columns::default().outside, "Outside Temperature");
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
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("4MB"), Some(4_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("lots"), None);
    }
}
