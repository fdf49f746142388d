//! Programs: WASM (the `wasm` command and the compiled tier's platform), native Linux programs, one-shot jobs.

pub(crate) mod aot;
pub(crate) mod job;
pub(crate) mod native;
pub(crate) mod wasm;
