//! A task actor: folds each chunk's readings into the partial state of the chunk's epoch.
//!
//! Each task actor runs on its own arbiter thread, so the three analyses proceed in parallel and a
//! slow one only slows itself (and, through the gate, the fetcher). It keeps one fresh partial
//! state per open epoch and hands it to the checkpoint actor once it has absorbed every chunk of
//! the epoch; the checkpoint actor holds the merged, committed states.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, Recipient};

use crate::actors::backpressure::Ticket;
use crate::actors::epoch::CloseEpoch;
use crate::actors::supervisor::{guarded, Failures};
use crate::faults::Faults;
use crate::parse::Reading;
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;
use crate::tasks::Analysis;

/// One parsed chunk's readings, shared by all task actors without copying.
#[derive(Clone)]
pub struct Absorb {
    /// Chunk number, for tracing.
    pub seq: u64,
    /// Epoch the chunk belongs to.
    pub epoch: u64,
    /// The readings.
    pub readings: Arc<Vec<Reading>>,
    /// Held until this consumer is done with the chunk.
    pub ticket: Arc<Ticket>,
}

impl Message for Absorb {
    type Result = ();
}

/// A partial state of one analysis, covering exactly the chunks of one epoch.
#[derive(Debug, Clone)]
pub enum Partial {
    /// Hottest times.
    Hottest(Hottest),
    /// Temperature-band window.
    Window(Window),
    /// Forecast.
    Forecast(Forecast),
}

/// An epoch's partial state, sent to the checkpoint actor.
pub struct EpochPartial {
    /// The epoch.
    pub epoch: u64,
    /// The state.
    pub partial: Partial,
}

impl Message for EpochPartial {
    type Result = ();
}

/// An analysis a task actor can run: it can be wrapped into a [`Partial`].
pub trait TaskState: Analysis + Clone + Send + Unpin + 'static {
    /// Wraps the state for the checkpoint actor.
    fn wrap(self) -> Partial;
}

impl TaskState for Hottest {
    fn wrap(self) -> Partial {
        Partial::Hottest(self)
    }
}

impl TaskState for Window {
    fn wrap(self) -> Partial {
        Partial::Window(self)
    }
}

impl TaskState for Forecast {
    fn wrap(self) -> Partial {
        Partial::Forecast(self)
    }
}

/// An epoch being absorbed.
struct Open<A> {
    partial: A,
    absorbed: u64,
    expected: Option<u64>,
}

/// Holds the open epochs of one analysis.
pub struct TaskActor<A: TaskState> {
    name: &'static str,
    empty: A,
    epochs: BTreeMap<u64, Open<A>>,
    sink: Recipient<EpochPartial>,
    delay: Option<Duration>,
    faults: Arc<Faults>,
    failures: Failures,
    broken: bool,
}

/// What a task actor needs besides its state: where partials go, drills, and where failures go.
pub struct TaskWiring {
    /// The checkpoint actor.
    pub sink: Recipient<EpochPartial>,
    /// Per-chunk slowdown (fault drills only).
    pub delay: Option<Duration>,
    /// Armed faults.
    pub faults: Arc<Faults>,
    /// The job's failure channel.
    pub failures: Failures,
}

impl<A: TaskState> TaskActor<A> {
    /// An actor whose epochs start from `empty`.
    pub fn new(name: &'static str, empty: A, w: TaskWiring) -> Self {
        TaskActor {
            name,
            empty,
            epochs: BTreeMap::new(),
            sink: w.sink,
            delay: w.delay,
            faults: w.faults,
            failures: w.failures,
            broken: false,
        }
    }

    fn open(&mut self, epoch: u64) -> &mut Open<A> {
        let empty = &self.empty;
        self.epochs.entry(epoch).or_insert_with(|| Open {
            partial: empty.clone(),
            absorbed: 0,
            expected: None,
        })
    }

    fn hand_over_if_complete(&mut self, epoch: u64) {
        let complete = self.epochs.get(&epoch).is_some_and(|o| o.expected == Some(o.absorbed));
        if complete {
            let open = self.epochs.remove(&epoch).expect("checked above");
            tracing::trace!(task = self.name, epoch, "epoch handed over");
            self.sink.do_send(EpochPartial { epoch, partial: open.partial.wrap() });
        }
    }
}

impl<A: TaskState> Actor for TaskActor<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The gate is the real bound; this only documents the expected queue depth.
        ctx.set_mailbox_capacity(64);
        tracing::debug!(task = self.name, "task actor started");
    }
}

impl<A: TaskState> Handler<Absorb> for TaskActor<A> {
    type Result = ();

    fn handle(&mut self, msg: Absorb, _ctx: &mut Self::Context) {
        let _span = tracing::trace_span!("absorb", task = self.name, seq = msg.seq).entered();
        if self.broken {
            return; // failed: the job is restarting the pipeline; hand nothing over
        }
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        let (name, faults) = (self.name, &self.faults);
        let empty = &self.empty;
        let open = self.epochs.entry(msg.epoch).or_insert_with(|| Open {
            partial: empty.clone(),
            absorbed: 0,
            expected: None,
        });
        let absorbed = guarded(name, &self.failures, || {
            faults.on_chunk(name, msg.seq);
            open.partial.absorb(&msg.readings);
        });
        if absorbed.is_none() {
            self.broken = true;
            return;
        }
        open.absorbed += 1;
        self.hand_over_if_complete(msg.epoch);
    }
}

impl<A: TaskState> Handler<CloseEpoch> for TaskActor<A> {
    type Result = ();

    fn handle(&mut self, msg: CloseEpoch, _ctx: &mut Self::Context) {
        if self.broken {
            return;
        }
        self.open(msg.epoch).expected = Some(msg.chunks);
        self.hand_over_if_complete(msg.epoch);
    }
}
