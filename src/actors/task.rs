//! A task actor: owns one analysis state and folds each chunk's readings into it.
//!
//! Each task actor runs on its own arbiter thread, so the three analyses proceed in parallel and a
//! slow one only slows itself (and, through the gate, the fetcher).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, MessageResult};

use crate::actors::backpressure::Ticket;
use crate::parse::Reading;
use crate::tasks::Analysis;

/// One parsed chunk's readings, shared by all task actors without copying.
#[derive(Clone)]
pub struct Absorb {
    /// Chunk number, for tracing.
    pub seq: u64,
    /// The readings.
    pub readings: Arc<Vec<Reading>>,
    /// Held until this consumer is done with the chunk.
    pub ticket: Arc<Ticket>,
}

impl Message for Absorb {
    type Result = ();
}

/// Asks a task actor for its final state, once all chunks have been absorbed.
pub struct Finish<A>(PhantomData<A>);

impl<A> Finish<A> {
    /// The request.
    pub fn new() -> Self {
        Finish(PhantomData)
    }
}

impl<A> Default for Finish<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Analysis> Message for Finish<A> {
    type Result = Option<A>;
}

/// Holds one analysis state.
pub struct TaskActor<A: Analysis> {
    name: &'static str,
    state: Option<A>,
    delay: Option<Duration>,
}

impl<A: Analysis + Unpin> TaskActor<A> {
    /// An actor for `state`; `delay` injects a per-chunk slowdown (fault drills only).
    pub fn new(name: &'static str, state: A, delay: Option<Duration>) -> Self {
        TaskActor { name, state: Some(state), delay }
    }
}

impl<A: Analysis + Unpin> Actor for TaskActor<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The gate is the real bound; this only documents the expected queue depth.
        ctx.set_mailbox_capacity(64);
        tracing::debug!(task = self.name, "task actor started");
    }
}

impl<A: Analysis + Unpin> Handler<Absorb> for TaskActor<A> {
    type Result = ();

    fn handle(&mut self, msg: Absorb, _ctx: &mut Self::Context) {
        let _span = tracing::trace_span!("absorb", task = self.name, seq = msg.seq).entered();
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        if let Some(state) = self.state.as_mut() {
            state.absorb(&msg.readings);
        }
    }
}

impl<A: Analysis + Unpin> Handler<Finish<A>> for TaskActor<A> {
    type Result = MessageResult<Finish<A>>;

    fn handle(&mut self, _msg: Finish<A>, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.take())
    }
}
