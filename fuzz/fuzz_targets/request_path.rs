//! libFuzzer target: [`sluice_fuzz::request_path`].
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::request_path(data));

/// Built without `cargo fuzz` (as `cargo build --workspace` does): nothing to run.
#[cfg(not(fuzzing))]
fn main() {
    eprintln!("a fuzz target: run it with `make fuzz`");
}
