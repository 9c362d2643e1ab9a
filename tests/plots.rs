//! The SVG plots through the real binary on the shipped sample: `wxflow run` writes hottest.svg,
//! window.svg and forecast.svg beside the text reports, each well-formed SVG with the figures it
//! promises, and `job.plots = false` writes none of them.

mod common;

use common::{run, stderr, summary};

const PLOTS: [&str; 3] = ["hottest.svg", "window.svg", "forecast.svg"];

/// Parses `name` as XML and returns the document's text, checking its root is an `<svg>`.
fn svg_text(out: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name} is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{name}");
    assert_eq!(doc.root_element().attribute("width"), Some("1200"), "{name}");
    text
}

#[test]
fn wxflow_run_draws_the_three_plots_as_valid_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let days = summary(&out)["hottest"]["days"].as_u64().unwrap() as usize;
    let hottest = svg_text(&out, "hottest.svg");
    assert!(hottest.contains("Hottest time (HH:MM, local)") && hottest.contains("Daily maximum (°C)"));
    assert!(hottest.contains("01/06/2006"), "dates as people write them");
    // One mark per day in each panel, plus one legend mark.
    assert_eq!(hottest.matches("<circle").count(), 2 * days + 1, "one point per day ({days} days)");
    let window = svg_text(&out, "window.svg");
    assert!(window.contains("Hi Temperature band 21.3 to 23.3 °C"));
    assert!(window.contains("Low Temperature band 10.1 to 10.5 °C"));
    let readings = summary(&out)["window"]["readings"].as_u64().unwrap() as usize;
    assert_eq!(
        window.matches("<circle").count(),
        2 * readings + 2,
        "a Hi and a Low mark per matching reading"
    );
    let forecast = svg_text(&out, "forecast.svg");
    assert!(forecast.contains("Forecast for July 2006 from the window readings of June 2006"));
    assert!(forecast.contains("Outside Temperature (°C)"));
    for name in PLOTS {
        let len = std::fs::metadata(out.join(name)).unwrap().len();
        assert!(len < 200_000, "{name} stays small: {len} bytes");
    }
}

#[test]
fn plots_false_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(&out, &["--set", "job.plots=false"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("summary.json").exists());
    for name in PLOTS {
        assert!(!out.join(name).exists(), "{name} written although job.plots = false");
    }
}
