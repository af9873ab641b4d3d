//! Architecture invariants, checked rather than hoped for:
//! - `events` depends on no other crate of the project;
//! - `projections` depends on `events` only;
//! - the domain (`src/domain/`) and the read models (`projections/`) perform
//!   no IO and read no clock or randomness: decisions are pure functions.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Names of the project's own crates a manifest depends on.
fn internal_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    text.lines()
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .filter(|name| name.starts_with("o2ohub"))
        .map(str::to_owned)
        .filter(|name| !text.contains(&format!("name = \"{name}\"")))
        .collect()
}

#[test]
fn events_depends_on_nothing_of_ours() {
    assert_eq!(
        internal_dependencies(&root().join("events/Cargo.toml")),
        Vec::<String>::new()
    );
}

#[test]
fn projections_depend_on_events_only() {
    assert_eq!(
        internal_dependencies(&root().join("projections/Cargo.toml")),
        vec!["o2ohub-events".to_owned()]
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What pure code must not mention.
const IMPURE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::io",
    "std::process",
    "std::thread",
    "tokio",
    "rusqlite",
    "Utc::now",
    "SystemTime",
    "Instant::now",
    "rand::",
    "now_v7",
];

#[test]
fn domain_and_projections_are_pure() {
    let mut files = Vec::new();
    rust_files(&root().join("src/domain"), &mut files);
    rust_files(&root().join("projections/src"), &mut files);
    assert!(files.len() > 5, "found the domain sources");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may use what they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for word in IMPURE {
            assert!(
                !code.contains(word),
                "{} mentions `{word}`: decisions must stay pure",
                file.display()
            );
        }
    }
}
