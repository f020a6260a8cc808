//! Replays the committed seed corpus, and every input a fuzzing run ever crashed on
//! (`fuzz/regressions/<target>/`), through the checks the fuzz targets run: `make test`
//! keeps each crash fixed without needing the nightly toolchain.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir).join(target)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(files.len() >= 3, "{target}: the seed corpus is missing");
    for file in files {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            file.display()
        );
    }
}

#[test]
fn config_corpus() {
    replay("config", sluice_fuzz::config);
}

#[test]
fn event_batch_corpus() {
    replay("event_batch", sluice_fuzz::event_batch);
}

#[test]
fn api_key_header_corpus() {
    replay("api_key_header", sluice_fuzz::api_key_header);
}

#[test]
fn payment_json_corpus() {
    replay("payment_json", sluice_fuzz::payment_json);
}

#[test]
fn request_path_corpus() {
    replay("request_path", sluice_fuzz::request_path);
}
