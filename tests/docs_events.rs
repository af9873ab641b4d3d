//! `docs/events.md` lists every event type of the catalogue with its current
//! schema version, so the page cannot silently fall behind the code.

#[test]
fn every_event_type_is_documented_with_its_version() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap();
    for (name, version) in o2ohub_events::Event::all_types() {
        let row = format!("| `{name}` | {version} |");
        assert!(doc.contains(&row), "docs/events.md lacks the row `{row}`");
    }
}
