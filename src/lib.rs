//! wxflow: a streaming actor pipeline that turns weather-station CSV exports into three reports.
//!
//! Functional core: [`parse`], [`tasks`] and [`report`] are pure and hold the rules.
//! Actor shell: [`actors`] and [`pipeline`] move chunks, hold state and bound memory.

#![warn(missing_docs)]

pub mod actors;
pub mod chunk;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod date;
pub mod durable;
pub mod error;
pub mod faults;
pub mod gen;
pub mod job;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod plots;
pub mod progress;
pub mod recycle;
pub mod report;
pub mod schema;
pub mod size;
pub mod source;
pub mod tasks;
pub mod tenths;
