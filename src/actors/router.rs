//! The router: fans each parsed chunk out to the task actors and the checkpoint actor.
//!
//! Readings are shared behind one `Arc`, so fan-out costs one message per consumer per chunk and
//! never copies rows.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};

use crate::actors::backpressure::Ticket;
use crate::actors::checkpoint::ChunkDone;
use crate::actors::task::Absorb;
use crate::parse::Parsed;

/// A chunk after parsing, sent by a parse worker.
pub struct ParsedChunk {
    /// Chunk number.
    pub seq: u64,
    /// Byte offset just past the chunk.
    pub end: u64,
    /// Readings, rejects and counts.
    pub parsed: Parsed,
    /// Admission ticket.
    pub ticket: Arc<Ticket>,
}

impl Message for ParsedChunk {
    type Result = ();
}

/// Distributes parsed chunks.
pub struct Router {
    tasks: Vec<Recipient<Absorb>>,
    checkpoint: Recipient<ChunkDone>,
}

impl Router {
    /// A router feeding these task actors and this checkpoint actor.
    pub fn new(tasks: Vec<Recipient<Absorb>>, checkpoint: Recipient<ChunkDone>) -> Router {
        Router { tasks, checkpoint }
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

impl Handler<ParsedChunk> for Router {
    type Result = ();

    fn handle(&mut self, msg: ParsedChunk, _ctx: &mut Self::Context) {
        let Parsed { readings, rejects, blank, lines } = msg.parsed;
        let processed = readings.len() as u64;
        let absorb = Absorb { seq: msg.seq, readings: Arc::new(readings), ticket: msg.ticket.clone() };
        for task in &self.tasks {
            task.do_send(absorb.clone());
        }
        self.checkpoint.do_send(ChunkDone {
            seq: msg.seq,
            end: msg.end,
            lines,
            processed,
            blank,
            rejects,
            ticket: msg.ticket,
        });
    }
}
