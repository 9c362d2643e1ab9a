//! The in-flight bound: real back-pressure for actix.
//!
//! actix's `Addr::send` does not wait for mailbox space and `do_send` ignores capacity, so mailbox
//! bounds alone do not hold a fast producer back. Instead each chunk carries a [`Ticket`], a permit
//! of a semaphore with `in_flight` permits; the fetcher must get one before cutting the next chunk,
//! and it is returned only when the last consumer drops the chunk. Memory is thereby bounded by
//! `chunk_size × in_flight`, whatever the input size.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits at most `bound` chunks into the pipeline at once, and records how full it got.
#[derive(Debug)]
pub struct Gate {
    permits: Arc<Semaphore>,
    shared: Option<Arc<Semaphore>>,
    bound: usize,
    max_in_flight: AtomicUsize,
    stalls: AtomicU64,
}

/// Proof that a chunk is admitted; dropping the last clone of its `Arc` readmits one chunk.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    _shared: Option<OwnedSemaphorePermit>,
}

impl Gate {
    /// A gate admitting `bound` chunks (at least 1).
    pub fn new(bound: usize) -> Arc<Gate> {
        Gate::with_shared(bound, None)
    }

    /// A gate admitting `bound` chunks of this job, each also holding a permit of `shared` when
    /// given: the bound across all jobs of a daemon. [`Gate::drain`] waits only for this job's
    /// chunks.
    pub fn with_shared(bound: usize, shared: Option<Arc<Semaphore>>) -> Arc<Gate> {
        let bound = bound.max(1);
        Arc::new(Gate {
            permits: Arc::new(Semaphore::new(bound)),
            shared,
            bound,
            max_in_flight: AtomicUsize::new(0),
            stalls: AtomicU64::new(0),
        })
    }

    /// Waits for room for one more chunk.
    pub async fn enter(&self) -> Arc<Ticket> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.stalls.fetch_add(1, Ordering::Relaxed);
                tracing::trace!("fetcher waits: {} chunks in flight", self.bound);
                self.permits.clone().acquire_owned().await.expect("gate semaphore is never closed")
            }
        };
        let shared = match &self.shared {
            Some(shared) => Some(match shared.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    self.stalls.fetch_add(1, Ordering::Relaxed);
                    shared.clone().acquire_owned().await.expect("shared semaphore is never closed")
                }
            }),
            None => None,
        };
        let in_flight = self.bound - self.permits.available_permits();
        self.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        Arc::new(Ticket { _permit: permit, _shared: shared })
    }

    /// Waits until every admitted chunk has been released: the pipeline is empty.
    pub async fn drain(&self) {
        let all = self.bound as u32;
        let _all = self.permits.acquire_many(all).await.expect("gate semaphore is never closed");
    }

    /// Chunks in flight right now.
    pub fn in_flight(&self) -> usize {
        self.bound - self.permits.available_permits()
    }

    /// Configured bound.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Most chunks in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::Relaxed)
    }

    /// How often the fetcher had to wait for room.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn holds_the_producer_until_a_ticket_is_dropped() {
        let gate = Gate::new(2);
        let a = gate.enter().await;
        let _b = gate.enter().await;
        assert_eq!(gate.in_flight(), 2);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), gate.enter()).await;
        assert!(waiting.is_err(), "a third chunk must wait");
        drop(a);
        let _c = gate.enter().await;
        assert_eq!((gate.max_in_flight(), gate.stalls()), (2, 1), "one wait, for the third chunk");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_shared_bound_holds_across_gates_and_drain_waits_only_for_its_own() {
        let shared = Arc::new(Semaphore::new(2));
        let (a, b) = (Gate::with_shared(4, Some(shared.clone())), Gate::with_shared(4, Some(shared.clone())));
        let _a1 = a.enter().await;
        let b1 = b.enter().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), a.enter()).await;
        assert!(waiting.is_err(), "the shared bound of 2 is reached");
        drop(b1);
        tokio::time::timeout(std::time::Duration::from_secs(5), b.drain()).await.expect("b is empty");
        let _a2 = a.enter().await;
        assert_eq!(shared.available_permits(), 0);
    }
}
