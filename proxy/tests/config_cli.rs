//! `sluice --test`: every shipped config passes; broken ones fail naming file:line and field.

use sluice_testkit::{bin_path, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn check(file: &Path) -> (bool, String) {
    check_with_tls(file, None)
}

/// `sluice --test` with `SLUICE_TLS_DIR` (the stack config's certificate folder) set.
fn check_with_tls(file: &Path, tls_dir: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(bin_path("sluice"));
    if let Some(dir) = tls_dir {
        cmd.env("SLUICE_TLS_DIR", dir);
    }
    let out = cmd
        .arg("--config")
        .arg(file)
        .arg("--test")
        .output()
        .expect("running sluice --test");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading conf/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

#[test]
fn every_config_in_conf_passes() {
    let mut files = Vec::new();
    yaml_files(&workspace_root().join("conf"), &mut files);
    assert!(
        files.len() >= 3,
        "expected the stack config and examples, found {files:?}"
    );
    // The stack config serves HTTPS with the certificate `make up` makes; a fresh clone
    // has none, so the same script makes one here.
    let ca = sluice_testkit::tls::TestCa::new();
    ca.issue("server", 1, 2, "DNS:localhost,IP:127.0.0.1");
    for file in files {
        let (ok, stderr) = check_with_tls(&file, Some(ca.dir()));
        assert!(ok, "{} failed sluice --test:\n{stderr}", file.display());
    }
}

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("proxy/tests/fixtures").join(name)
}

#[test]
fn unknown_fields_fail_with_file_line_and_field() {
    let file = fixture("unknown-field.yaml");
    let (ok, stderr) = check(&file);
    assert!(!ok, "an unknown field must fail");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("{}:3: server.lisen: unknown field", file.display()),
            format!("{}:8: routes[0].colour: unknown field", file.display()),
        ]
    );
}

#[test]
fn a_route_naming_a_missing_upstream_fails_with_file_line_and_field() {
    let file = fixture("missing-upstream.yaml");
    let (ok, stderr) = check(&file);
    assert!(!ok, "a missing upstream must fail");
    assert_eq!(
        stderr.trim(),
        format!(
            "{}:10: routes[1].upstream: no upstream named \"payments\" (known: todo)",
            file.display()
        )
    );
}

#[test]
fn a_missing_file_fails_clearly() {
    let (ok, stderr) = check(Path::new("/nonexistent/sluice.yaml"));
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/sluice.yaml: cannot read file"),
        "{stderr}"
    );
}
