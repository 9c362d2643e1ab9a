//! The three analyses, as pure mergeable states.
//!
//! Each analysis folds readings into a state and can merge two states; merging partial states
//! gives the same result as one pass over all readings, whatever the chunk boundaries or the order
//! chunks arrive in. No I/O, no actors: the actor shell only moves chunks to these states.

pub mod forecast;
pub mod hottest;
pub mod window;

use crate::parse::Reading;

/// A fold over readings that can be split and merged freely.
pub trait Analysis: Send + 'static {
    /// Folds a batch of readings (any subset of the input, in any order) into the state.
    fn absorb(&mut self, readings: &[Reading]);

    /// Merges another partial state of the same analysis into this one.
    fn merge(&mut self, other: Self)
    where
        Self: Sized;
}
