//! The router: fans each parsed chunk out to the task actors and the checkpoint actor.
//!
//! Readings are shared behind one `Arc`, so fan-out costs one message per consumer per chunk and
//! never copies rows; the last task actor to drop them sends the vector back to the parse
//! workers. Epoch closes from the fetcher are fanned out the same way.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};

use crate::actors::backpressure::Ticket;
use crate::actors::checkpoint::ChunkDone;
use crate::actors::epoch::CloseEpoch;
use crate::actors::supervisor::{guarded, Failures};
use crate::actors::task::Absorb;
use crate::chunk::Span;
use crate::faults::Faults;
use crate::parse::{Parsed, Reading};
use crate::recycle::Recycled;
use crate::tasks::DaySpan;

/// A chunk after parsing, sent by a parse worker.
pub struct ParsedChunk {
    /// Where the chunk lies in the input.
    pub span: Span,
    /// Epoch of the chunk.
    pub epoch: u64,
    /// The readings, in a vector that goes back to the parse workers after use.
    pub readings: Recycled<Reading>,
    /// Their earliest and latest day.
    pub days: Option<DaySpan>,
    /// Rejects and counts (its `readings` are in the field above).
    pub parsed: Parsed,
    /// Admission ticket.
    pub ticket: Arc<Ticket>,
}

impl Message for ParsedChunk {
    type Result = ();
}

/// Where the router sends things.
pub struct Router {
    tasks: Vec<(Recipient<Absorb>, Recipient<CloseEpoch>)>,
    checkpoint: (Recipient<ChunkDone>, Recipient<CloseEpoch>),
    faults: Arc<Faults>,
    failures: Failures,
}

impl Router {
    /// A router feeding these task actors and this checkpoint actor.
    pub fn new(
        tasks: Vec<(Recipient<Absorb>, Recipient<CloseEpoch>)>,
        checkpoint: (Recipient<ChunkDone>, Recipient<CloseEpoch>),
        faults: Arc<Faults>,
        failures: Failures,
    ) -> Router {
        Router { tasks, checkpoint, faults, failures }
    }

    fn route(&self, msg: ParsedChunk) {
        let span = msg.span;
        self.faults.on_chunk("router", span.seq);
        let Parsed { rejects, blank, lines, .. } = msg.parsed;
        let readings = msg.readings;
        let processed = readings.len() as u64;
        let absorb = Absorb {
            span,
            epoch: msg.epoch,
            readings: Arc::new(readings),
            days: msg.days,
            ticket: msg.ticket.clone(),
        };
        for (task, _) in &self.tasks {
            task.do_send(absorb.clone());
        }
        self.checkpoint.0.do_send(ChunkDone {
            seq: span.seq,
            epoch: msg.epoch,
            end: span.end,
            first_line: span.first_line,
            lines,
            processed,
            blank,
            rejects,
            ticket: msg.ticket,
        });
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

impl Handler<ParsedChunk> for Router {
    type Result = ();

    fn handle(&mut self, msg: ParsedChunk, _ctx: &mut Self::Context) {
        guarded("router", &self.failures, || self.route(msg));
    }
}

impl Handler<CloseEpoch> for Router {
    type Result = ();

    fn handle(&mut self, msg: CloseEpoch, _ctx: &mut Self::Context) {
        for (_, close) in &self.tasks {
            close.do_send(msg);
        }
        self.checkpoint.1.do_send(msg);
    }
}
