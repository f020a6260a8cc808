//! `sluice-services` — the stack's five services in one binary: run through a link named
//! `todo`, `payments`, `processor`, `analytics` or `testupstream` (what
//! scripts/build-release.sh makes next to it), it is that service, with its arguments.
//!
//! Why: with the release profile's fat LTO, each binary is a whole-program optimisation of
//! its own, on one core. Five of them took 232 s of a fresh `make up`'s build; this one,
//! with the same code, 100 s (bench/NOTES.md, time to the first request). Each service's
//! `main` stays in its own crate's `src/bin/` (`cargo run --bin todo`, the tests), and is
//! compiled here as a module: one source for both.

#[path = "../../analytics/src/bin/analytics.rs"]
mod analytics;
#[path = "../../backend/src/bin/payments.rs"]
mod payments;
#[path = "../../backend/src/bin/processor.rs"]
mod processor;
#[path = "../../backend/src/bin/testupstream.rs"]
mod testupstream;
#[path = "../../backend/src/bin/todo.rs"]
mod todo;

/// A service's `main`.
type Main = fn() -> anyhow::Result<()>;

/// The services, by the name they run under.
const SERVICES: [(&str, Main); 5] = [
    ("todo", todo::main),
    ("payments", payments::main),
    ("processor", processor::main),
    ("analytics", analytics::main),
    ("testupstream", testupstream::main),
];

fn main() -> anyhow::Result<()> {
    let called = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&called)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match SERVICES.iter().find(|(service, _)| *service == name) {
        Some((_, run)) => run(),
        None => {
            let names: Vec<&str> = SERVICES.iter().map(|(service, _)| *service).collect();
            anyhow::bail!(
                "sluice-services runs as one of {}: call it through a link of that name \
                 (e.g. `ln -s sluice-services todo && ./todo --port 8081`), not as {name:?}",
                names.join(", ")
            )
        }
    }
}
