//! Differential fuzzing of the fast parser against the reference, guided by coverage.
//!
//! The input chooses the schema and the chunking as well as the bytes (see
//! `wxflow::parse::differential::decode_case`); the fast parser as it ships on this CPU and the
//! reference must agree exactly on every piece, every block kernel the CPU has must classify
//! every block as the byte loop does, and nothing may panic (`check_shipping`). Any input saved
//! here replays in `tests/differential.rs`, which parses it with every kernel.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wxflow::parse::differential::{check_input, schemas};
use wxflow::schema::Schema;

/// Built once per process rather than per execution.
static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();

fuzz_target!(|input: &[u8]| {
    check_input(SCHEMAS.get_or_init(schemas), input);
});
