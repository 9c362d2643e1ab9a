//! Supervision: failures caught at every actor's handler boundary, and the restart policy.
//!
//! actix 0.13 does not restart a panicked actor (a panicking handler kills the actor's task and
//! the actor silently disappears), so supervision is ours: [`guarded`] runs a handler body under
//! `catch_unwind` and turns a panic into an [`Error::ActorFailed`] on the job's failure channel;
//! the job then stops its actors and [`Supervisor`] decides whether and when to restart the
//! pipeline from the last checkpoint — Erlang/OTP's restart intensity (at most `max_restarts`
//! within `within`) with Flink's exponential-delay backoff and jitter. Task actors are restarted
//! one-for-one instead (see [`crate::actors::task`]), under the same supervisor.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::SupervisionPlan;
use crate::error::Error;
use crate::faults::ACTORS;

/// Where actors report their failures; the job listens on the other end.
pub type Failures = tokio::sync::mpsc::Sender<Error>;

/// One supervisor per job, shared by the pipeline (which restarts everything) and the task
/// actors (which restart on their own), so that the restart intensity counts both.
pub type SharedSupervisor = std::sync::Arc<std::sync::Mutex<Supervisor>>;

/// Runs `body`; a panic is reported as a failure of `actor` and gives `None`.
pub fn guarded<T>(actor: &'static str, failures: &Failures, body: impl FnOnce() -> T) -> Option<T> {
    match catch_panic(body) {
        Ok(value) => Some(value),
        Err(detail) => {
            tracing::error!(actor, "actor failed: {detail}");
            let _ = failures.try_send(Error::ActorFailed { actor, detail });
            None
        }
    }
}

/// Runs `body`; a panic comes back as its message, for an actor that recovers by itself.
pub fn catch_panic<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| panic_text(panic.as_ref()))
}

/// The message of a caught panic.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into())
}

/// The restart policy and the record of restarts.
#[derive(Debug)]
pub struct Supervisor {
    plan: SupervisionPlan,
    recent: VecDeque<Instant>,
    counts: BTreeMap<&'static str, u64>,
    retries: u64,
}

impl Supervisor {
    /// A supervisor applying `plan`.
    pub fn new(plan: SupervisionPlan) -> Supervisor {
        Supervisor {
            plan,
            recent: VecDeque::new(),
            counts: ACTORS.iter().map(|a| (*a, 0)).collect(),
            retries: 0,
        }
    }

    /// Continues the record of earlier runs of the same job (from its checkpoint), so that the
    /// counts a finished job reports cover every run. The restart intensity still counts only
    /// recent restarts.
    pub fn with_history(mut self, restarts: &BTreeMap<String, u64>, retries: u64) -> Supervisor {
        for (actor, n) in restarts {
            if let Some(count) = self.counts.iter_mut().find(|(a, _)| **a == actor.as_str()) {
                *count.1 += n;
            }
        }
        self.retries += retries;
        self
    }

    /// Records a fetch retry (a reopened source); retries are not restarts and have their own
    /// limit (`pipeline.fetch_retries`).
    pub fn retried(&mut self) {
        self.retries += 1;
    }

    /// Fetch retries so far.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Records a failure of `actor`: the delay before restarting, or [`Error::GaveUp`] when the
    /// restarts within the window would exceed the limit.
    pub fn failed(&mut self, actor: &'static str, detail: &str) -> Result<Duration, Error> {
        let now = Instant::now();
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > self.plan.within) {
            self.recent.pop_front();
        }
        if self.recent.len() as u32 >= self.plan.max_restarts {
            return Err(Error::GaveUp {
                actor,
                detail: detail.to_string(),
                restarts: self.recent.len() as u32,
                within_secs: self.plan.within.as_secs(),
                max: self.plan.max_restarts,
            });
        }
        self.recent.push_back(now);
        *self.counts.entry(actor).or_default() += 1;
        let n = self.recent.len() as i32 - 1;
        let base = self.plan.backoff_initial.mul_f64(self.plan.multiplier.powi(n)).min(self.plan.backoff_max);
        Ok(jittered(base, self.plan.jitter))
    }

    /// Restarts so far, per actor, zeros included.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.iter().map(|(a, n)| (a.to_string(), *n)).collect()
    }
}

/// `d` spread by ±`spread` (a fraction) at random, so that restarts and retries of many jobs or
/// clients do not happen in lockstep. Not for anything a result depends on.
pub fn jittered(d: Duration, spread: f64) -> Duration {
    static SEED: AtomicU64 = AtomicU64::new(0);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |t| t.as_nanos() as u64);
    let mut x = SEED.fetch_add(now | 1, Ordering::Relaxed) ^ now;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let unit = (x % 1_000_000) as f64 / 1_000_000.0;
    d.mul_f64((1.0 + spread * (2.0 * unit - 1.0)).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(max: u32) -> SupervisionPlan {
        SupervisionPlan {
            max_restarts: max,
            within: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(250),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(1000), 0.25).as_millis();
            assert!((750..=1250).contains(&d), "{d}");
        }
    }

    #[test]
    fn backs_off_exponentially_then_gives_up_naming_the_actor() {
        let mut s = Supervisor::new(plan(3));
        assert_eq!(s.failed("window", "boom").unwrap(), Duration::from_millis(100));
        assert_eq!(s.failed("router", "boom").unwrap(), Duration::from_millis(200));
        assert_eq!(s.failed("window", "boom").unwrap(), Duration::from_millis(250), "capped");
        let e = s.failed("window", "boom again").unwrap_err().to_string();
        assert!(e.contains("3 restarts within 60 s") && e.contains("window actor failed: boom again"), "{e}");
        assert_eq!(s.counts()["window"], 2);
        assert_eq!(s.counts()["fetcher"], 0);
    }

    #[test]
    fn counts_continue_from_earlier_runs_but_intensity_does_not() {
        let earlier = [("window".to_string(), 5), ("router".to_string(), 1)].into();
        let mut s = Supervisor::new(plan(1)).with_history(&earlier, 4);
        s.retried();
        assert_eq!(
            s.failed("window", "boom").unwrap(),
            Duration::from_millis(100),
            "earlier runs do not count"
        );
        assert_eq!((s.counts()["window"], s.counts()["router"], s.retries()), (6, 1, 5));
    }

    #[test]
    fn a_panic_becomes_a_failure_report() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        assert_eq!(guarded("parser", &tx, || 7), Some(7));
        assert_eq!(guarded("parser", &tx, || -> i32 { panic!("bad chunk") }), None);
        let e = rx.try_recv().unwrap().to_string();
        assert_eq!(e, "the parser actor failed: bad chunk");
    }
}
