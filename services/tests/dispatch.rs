//! The binary is the service its link is named after, and refuses other names.

use std::path::PathBuf;
use std::process::Command;

/// A temporary folder with `name` linked to the built binary.
fn linked(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join(name);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice-services"), &link).expect("link");
    (dir, link)
}

#[test]
fn each_link_runs_its_own_service() {
    // An option only that service has.
    for (name, option) in [
        ("todo", "[default: 8081]"),
        ("payments", "--default-url"),
        ("processor", "--fee"),
        ("analytics", "--brokers"),
        ("testupstream", "[default: 8201]"),
    ] {
        let (_dir, link) = linked(name);
        let out = Command::new(&link).arg("--help").output().expect("run");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(help.contains(option), "{name}: {help}");
        assert!(help.contains(&format!("Usage: {name}")), "{name}: {help}");
    }
}

#[test]
fn another_name_is_refused_with_the_names_it_knows() {
    let (_dir, link) = linked("sluice-services");
    let out = Command::new(&link).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("todo, payments, processor, analytics, testupstream"),
        "{err}"
    );
}
