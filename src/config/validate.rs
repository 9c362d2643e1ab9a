//! Validation: every setting checked against what is allowed, every problem collected with its
//! key, value and origin, the typed [`super::Plan`] built from what passes.

use super::*;

/// Collects validation problems with the origin of each key.
pub(super) struct Validator<'a> {
    origins: &'a BTreeMap<String, Origin>,
    issues: Vec<ConfigIssue>,
}

impl Validator<'_> {
    pub(super) fn fail(&mut self, key: &str, value: impl fmt::Display, problem: impl Into<String>) {
        let origin = self.origins.get(key).map_or("defaults".to_string(), Origin::to_string);
        self.issues.push(ConfigIssue {
            key: key.to_string(),
            value: value.to_string(),
            origin,
            problem: problem.into(),
        });
    }

    pub(super) fn count(&mut self, key: &str, value: u64, min: u64, max: u64) -> usize {
        if value < min || value > max {
            self.fail(key, value, format!("must be a whole number from {min} to {max}"));
        }
        value.clamp(min, max) as usize
    }

    pub(super) fn size(&mut self, key: &str, value: &ByteSize, min: u64, max: u64) -> usize {
        match parse_size(&value.0) {
            Some(n) if (min..=max).contains(&n) => n as usize,
            Some(_) => {
                self.fail(
                    key,
                    &value.0,
                    format!("must be from {min} bytes to {max} bytes (units: B, KiB, MiB, GiB, KB, MB, GB)"),
                );
                min as usize
            }
            None => {
                self.fail(key, &value.0, "must be a byte size such as 65536, \"64KiB\" or \"1MiB\"");
                min as usize
            }
        }
    }

    fn tenths(&mut self, key: &str, value: f64, non_negative: bool) -> Tenths {
        match Tenths::from_f64(value) {
            Some(t) if non_negative && t.0 < 0 => {
                self.fail(key, value, "must be 0 or more");
                Tenths(0)
            }
            Some(t) => t,
            None => {
                self.fail(
                    key,
                    value,
                    "must have at most one decimal place (values are compared exactly in tenths)",
                );
                Tenths(0)
            }
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, value: &str, options: &[(&str, T)]) -> Option<T> {
        let found = options.iter().find(|(name, _)| name.eq_ignore_ascii_case(value.trim()));
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            self.fail(key, format!("{value:?}"), format!("must be one of {}", names.join(", ")));
        }
        found.map(|(_, v)| *v)
    }
}

pub(super) fn validate(s: &Settings, origins: &BTreeMap<String, Origin>) -> Result<Plan, ConfigErrors> {
    let mut v = Validator { origins, issues: Vec::new() };
    let source = SourceSpec::parse(&s.job.source).unwrap_or_else(|problem| {
        v.fail("job.source", format!("{:?}", s.job.source), problem);
        SourceSpec::Stdin
    });
    if s.job.out.trim().is_empty() {
        v.fail("job.out", "\"\"", "must name a directory");
    }
    let month = Month::parse(&s.job.reference_month).unwrap_or_else(|| {
        v.fail(
            "job.reference_month",
            format!("{:?}", s.job.reference_month),
            "must be a month as YYYY-MM, e.g. \"2006-06\"",
        );
        Month { year: 2006, month: 6 }
    });
    let ratio = s.job.max_reject_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        v.fail("job.max_reject_ratio", ratio, "must be a fraction from 0 to 1 (0.01 = 1%)");
    }
    let pipeline = PipelinePlan {
        chunk_size: v.size("pipeline.chunk_size", &s.pipeline.chunk_size, 1, 1 << 30),
        parse_workers: v.count("pipeline.parse_workers", s.pipeline.parse_workers, 1, 256),
        in_flight: v.count("pipeline.in_flight", s.pipeline.in_flight, 1, 4096),
        max_line: v.size("pipeline.max_line", &s.pipeline.max_line, 64, 1 << 30),
        connect_timeout: Duration::from_secs(v.count(
            "pipeline.connect_timeout_secs",
            s.pipeline.connect_timeout_secs,
            1,
            3600,
        ) as u64),
        read_timeout: Duration::from_secs(v.count(
            "pipeline.read_timeout_secs",
            s.pipeline.read_timeout_secs,
            1,
            3600,
        ) as u64),
        fetch_retries: v.count("pipeline.fetch_retries", s.pipeline.fetch_retries, 0, 100) as u32,
        connections: v.count("pipeline.connections", s.pipeline.connections, 1, 64),
        map_files: s.pipeline.map_files,
        retry_backoff: Duration::from_millis(v.count(
            "pipeline.retry_backoff_ms",
            s.pipeline.retry_backoff_ms,
            1,
            600_000,
        ) as u64),
    };
    check_columns(&mut v, &s.columns);
    let hottest = HottestParams { top_days: v.count("hottest.top_days", s.hottest.top_days, 1, 100_000) };
    let days = v.count("window.days", s.window.days, 1, 28) as u32;
    let window = WindowParams::new(
        month,
        days,
        v.tenths("window.hi_center", s.window.hi_center, false),
        v.tenths("window.hi_tolerance", s.window.hi_tolerance, true),
        v.tenths("window.low_center", s.window.low_center, false),
        v.tenths("window.low_tolerance", s.window.low_tolerance, true),
    );
    let method = v
        .choice(
            "forecast.method",
            &s.forecast.method,
            &[("offset", ForecastMethod::Offset), ("proportional", ForecastMethod::Proportional)],
        )
        .unwrap_or(ForecastMethod::Offset);
    let forecast = ForecastParams::new(
        month,
        days,
        v.tenths("forecast.base", s.forecast.base, false),
        method,
        v.count("forecast.decimals", s.forecast.decimals, 0, 6) as u32,
    );
    check_log(&mut v, &s.log);
    let faults = fault_plan(&mut v, &s.faults);
    let out = PathBuf::from(&s.job.out);
    let sv = &s.supervision;
    if !(1.0..=100.0).contains(&sv.backoff_multiplier) {
        v.fail("supervision.backoff_multiplier", sv.backoff_multiplier, "must be from 1.0 to 100.0");
    }
    if !(0.0..=1.0).contains(&sv.jitter) {
        v.fail("supervision.jitter", sv.jitter, "must be a fraction from 0 to 1");
    }
    let supervision = SupervisionPlan {
        max_restarts: v.count("supervision.max_restarts", sv.max_restarts, 0, 1000) as u32,
        within: Duration::from_secs(v.count("supervision.within_secs", sv.within_secs, 1, 86_400) as u64),
        backoff_initial: Duration::from_millis(v.count(
            "supervision.backoff_initial_ms",
            sv.backoff_initial_ms,
            0,
            600_000,
        ) as u64),
        backoff_max: Duration::from_millis(v.count(
            "supervision.backoff_max_ms",
            sv.backoff_max_ms,
            0,
            3_600_000,
        ) as u64),
        multiplier: sv.backoff_multiplier.clamp(1.0, 100.0),
        jitter: sv.jitter.clamp(0.0, 1.0),
    };
    let checkpoint = CheckpointPlan {
        enabled: s.checkpoint.enabled,
        every_chunks: v.count("checkpoint.every_chunks", s.checkpoint.every_chunks, 1, 1 << 30) as u64,
        every_secs: Duration::from_secs(
            v.count("checkpoint.every_secs", s.checkpoint.every_secs, 1, 86_400) as u64
        ),
        dir: match s.checkpoint.dir.trim() {
            "" => out.join(".wxflow-checkpoint"),
            dir => PathBuf::from(dir),
        },
    };
    let daemon = super::daemon::validate(&mut v, &s.daemon);
    let cluster = super::cluster::validate(&mut v, &s.cluster);
    if !v.issues.is_empty() {
        return Err(ConfigErrors(v.issues));
    }
    Ok(Plan {
        source,
        out,
        month,
        max_reject_ratio: ratio,
        plots: s.job.plots,
        pipeline,
        columns: s.columns.clone(),
        hottest,
        window,
        forecast,
        log: s.log.clone(),
        checkpoint,
        supervision,
        faults,
        daemon,
        cluster,
    })
}

pub(super) fn check_columns(v: &mut Validator<'_>, c: &Columns) {
    let named = [
        ("columns.date", &c.date),
        ("columns.time", &c.time),
        ("columns.outside", &c.outside),
        ("columns.hi", &c.hi),
        ("columns.low", &c.low),
    ];
    for (key, name) in named {
        if name.trim().is_empty() {
            v.fail(key, "\"\"", "must name a header column");
        }
    }
}

pub(super) fn check_log(v: &mut Validator<'_>, log: &LogSettings) {
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        v.fail(
            "log.level",
            format!("{:?}", log.level),
            "must be trace, debug, info, warn, error or a tracing filter such as \"wxflow=debug\"",
        );
    }
    v.choice("log.format", &log.format, &[("pretty", ()), ("json", ())]);
    v.choice("log.progress", &log.progress, &[("auto", ()), ("bar", ()), ("log", ()), ("off", ())]);
    v.count("log.progress_interval_secs", log.progress_interval_secs, 1, 86_400);
}

pub(super) fn fault_plan(v: &mut Validator<'_>, f: &FaultSettings) -> FaultPlan {
    let mut armed = Vec::new();
    for (i, spec) in f.inject.iter().enumerate() {
        match crate::faults::Fault::parse(spec) {
            Ok(fault) => armed.push(fault),
            Err(problem) => v.fail("faults.inject", format!("[{i}] {spec:?}"), problem),
        }
    }
    FaultPlan { armed: crate::faults::Faults::new(armed) }
}
