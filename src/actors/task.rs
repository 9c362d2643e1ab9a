//! A task actor: folds each chunk's readings into the partial state of the chunk's epoch.
//!
//! Each task actor runs on its own arbiter thread, so the three analyses proceed in parallel and a
//! slow one only slows itself (and, through the gate, the fetcher). It keeps one fresh partial
//! state per open epoch and hands it to the checkpoint actor once it has absorbed every chunk of
//! the epoch; the checkpoint actor holds the merged, committed states.
//!
//! Supervision is one-for-one: a panic while absorbing a chunk is caught, and this actor alone
//! restarts: the partials of its open epochs (which the panic may have left half-updated) are
//! dropped, the chunks they held are read again from the source ([`crate::actors::replay`]) into
//! fresh partials, and the chunks waiting in the mailbox follow. The other actors keep running;
//! the in-flight bound holds them back while this one catches up. Epochs already handed over are
//! safe in the checkpoint actor, so the replay covers at most one open epoch or so of chunks.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};

use crate::actors::backpressure::Ticket;
use crate::actors::epoch::CloseEpoch;
use crate::actors::replay::ReplaySource;
use crate::actors::supervisor::{catch_panic, Failures, SharedSupervisor};
use crate::chunk::Span;
use crate::error::Error;
use crate::faults::Faults;
use crate::parse::Reading;
use crate::recycle::Recycled;
use crate::tasks::forecast::Forecast;
use crate::tasks::hottest::Hottest;
use crate::tasks::window::Window;
use crate::tasks::{Analysis, DaySpan};

/// One parsed chunk's readings, shared by all task actors without copying.
#[derive(Clone)]
pub struct Absorb {
    /// Where the chunk lies in the input (to read it again after a restart).
    pub span: Span,
    /// Epoch the chunk belongs to.
    pub epoch: u64,
    /// The readings (back to the parse workers when the last task actor drops them).
    pub readings: Arc<Recycled<Reading>>,
    /// Their earliest and latest day, so that the window and the forecast skip most chunks.
    pub days: Option<DaySpan>,
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
    /// The chunks folded into `partial`, to read again if it is lost.
    spans: Vec<Span>,
}

/// The epoch's entry, opened with an empty partial the first time it is met.
fn open_epoch<'a, A: Clone>(
    epochs: &'a mut BTreeMap<u64, Open<A>>,
    empty: &A,
    epoch: u64,
) -> &'a mut Open<A> {
    epochs.entry(epoch).or_insert_with(|| Open {
        partial: empty.clone(),
        absorbed: 0,
        expected: None,
        spans: Vec::new(),
    })
}

/// Holds the open epochs of one analysis.
pub struct TaskActor<A: TaskState> {
    name: &'static str,
    empty: A,
    epochs: BTreeMap<u64, Open<A>>,
    w: TaskWiring,
    broken: bool,
}

/// What a task actor needs besides its state: where partials go, drills, and how it recovers.
pub struct TaskWiring {
    /// The checkpoint actor.
    pub sink: Recipient<EpochPartial>,
    /// Armed faults.
    pub faults: Arc<Faults>,
    /// The job's failure channel, for failures this actor cannot recover from alone.
    pub failures: Failures,
    /// The job's restart policy and record, shared with pipeline restarts.
    pub supervisor: SharedSupervisor,
    /// Where lost chunks are read again.
    pub replay: Arc<ReplaySource>,
}

/// Why catching up after a restart stopped.
enum CatchUp {
    /// Absorbing a replayed chunk failed again.
    Failed(String),
    /// The chunks could not be read again.
    Unreadable(String),
}

impl<A: TaskState> TaskActor<A> {
    /// An actor whose epochs start from `empty`.
    pub fn new(name: &'static str, empty: A, w: TaskWiring) -> Self {
        TaskActor { name, empty, epochs: BTreeMap::new(), w, broken: false }
    }

    /// Folds one chunk into its epoch's partial; a panic comes back as its message.
    fn absorb(
        &mut self,
        epoch: u64,
        span: Span,
        readings: &[Reading],
        days: Option<DaySpan>,
    ) -> Result<(), String> {
        let open = open_epoch(&mut self.epochs, &self.empty, epoch);
        open.spans.push(span);
        let (name, faults) = (self.name, &self.w.faults);
        catch_panic(|| {
            faults.on_chunk(name, span.seq);
            open.partial.absorb_within(readings, days);
        })?;
        open.absorbed += 1;
        Ok(())
    }

    /// Hands every complete epoch over to the checkpoint actor.
    fn hand_over_complete(&mut self) {
        let complete: Vec<u64> =
            self.epochs.iter().filter(|(_, o)| o.expected == Some(o.absorbed)).map(|(e, _)| *e).collect();
        for epoch in complete {
            let open = self.epochs.remove(&epoch).expect("listed above");
            tracing::trace!(task = self.name, epoch, "epoch handed over");
            self.w.sink.do_send(EpochPartial { epoch, partial: open.partial.wrap() });
        }
    }

    /// Drops the partials of the open epochs (keeping what is known of their size) and returns
    /// the chunks they held, in chunk order, with their epochs.
    fn reset(&mut self) -> Vec<(u64, Span)> {
        let mut lost = Vec::new();
        for (epoch, open) in &mut self.epochs {
            lost.extend(open.spans.drain(..).map(|s| (*epoch, s)));
            open.partial = self.empty.clone();
            open.absorbed = 0;
        }
        lost.sort_by_key(|(_, s)| s.seq);
        lost
    }

    /// Restarts this actor after a failure: backs off as the policy says, then replays the lost
    /// chunks; a failure during replay restarts again. Past the policy's limit, or when the
    /// chunks cannot be read again, the failure goes to the job, which stops or restarts the
    /// pipeline from the last checkpoint.
    fn recover(&mut self, mut detail: String) {
        loop {
            let lost = self.reset();
            let failed =
                self.w.supervisor.lock().unwrap_or_else(|e| e.into_inner()).failed(self.name, &detail);
            let delay = match failed {
                Ok(delay) => delay,
                Err(gave_up) => return self.escalate(gave_up),
            };
            if !self.w.replay.can_replay() {
                // The job says why nothing can restart on standard input.
                return self.escalate(Error::ActorFailed { actor: self.name, detail });
            }
            let (from, to) = lost.first().zip(lost.last()).map_or((0, 0), |(a, b)| (a.1.offset, b.1.end));
            tracing::warn!(
                actor = self.name,
                "the {} actor failed ({detail}); restarting it alone after {} ms and replaying {} chunk(s) \
                 from bytes {from} to {to}",
                self.name,
                delay.as_millis(),
                lost.len()
            );
            std::thread::sleep(delay);
            match self.catch_up(lost) {
                Ok(()) => return,
                Err(CatchUp::Failed(again)) => detail = again,
                Err(CatchUp::Unreadable(why)) => {
                    let detail = format!("{detail}; reading its chunks again failed: {why}");
                    return self.escalate(Error::ActorFailed { actor: self.name, detail });
                }
            }
        }
    }

    /// Reads the lost chunks again and absorbs them.
    fn catch_up(&mut self, lost: Vec<(u64, Span)>) -> Result<(), CatchUp> {
        let mut replayed = self.w.replay.replay(lost.iter().map(|(_, s)| *s).collect());
        let mut pending = lost.into_iter();
        while let Some((epoch, span)) = pending.next() {
            let (got, readings) = match replayed.next() {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(CatchUp::Unreadable(e)),
                None => return Err(CatchUp::Unreadable("the replay stopped early".into())),
            };
            debug_assert_eq!(got, span);
            if let Err(again) = self.absorb(epoch, span, &readings, DaySpan::of(&readings)) {
                // The chunks not replayed yet are still lost: the next restart reads them too.
                for (epoch, span) in pending {
                    open_epoch(&mut self.epochs, &self.empty, epoch).spans.push(span);
                }
                return Err(CatchUp::Failed(again));
            }
        }
        tracing::info!(actor = self.name, "the {} actor caught up after its restart", self.name);
        Ok(())
    }

    /// Gives up on this instance: the job decides what happens next.
    fn escalate(&mut self, e: Error) {
        tracing::error!(actor = self.name, "{e}");
        self.broken = true;
        let _ = self.w.failures.try_send(e);
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
        let _span = tracing::trace_span!("absorb", task = self.name, seq = msg.span.seq).entered();
        if self.broken {
            return; // gave up: the job is stopping or restarting the pipeline
        }
        if let Err(detail) = self.absorb(msg.epoch, msg.span, &msg.readings, msg.days) {
            tracing::error!(actor = self.name, "actor failed: {detail}");
            self.recover(detail);
        }
        if !self.broken {
            self.hand_over_complete();
        }
    }
}

impl<A: TaskState> Handler<CloseEpoch> for TaskActor<A> {
    type Result = ();

    fn handle(&mut self, msg: CloseEpoch, _ctx: &mut Self::Context) {
        if self.broken {
            return;
        }
        open_epoch(&mut self.epochs, &self.empty, msg.epoch).expected = Some(msg.chunks);
        self.hand_over_complete();
    }
}
