//! The actor shell: moves chunks between the pure parts, holds state, and bounds memory.
//!
//! ```text
//!  source ──blocks──▶ Fetcher ──chunks──▶ parse pool ──parsed──▶ Router ─┬─▶ Task<Hottest>
//!            (Gate: ≤ in_flight chunks)   (N threads,              ├─▶ Task<Window>
//!                                          crossbeam)              ├─▶ Task<Forecast>
//!                                                                  └─▶ Checkpoint
//! ```
//! A chunk holds a [`backpressure::Ticket`] from the moment the fetcher cuts it until every consumer
//! is done with it, so at most `in_flight` chunks exist at once and a slow consumer stalls the
//! fetcher instead of filling mailboxes.

pub mod backpressure;
pub mod checkpoint;
pub mod epoch;
pub mod fetcher;
pub mod lines;
pub mod parsers;
pub mod replay;
pub mod router;
pub mod supervisor;
pub mod task;
