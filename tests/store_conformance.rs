//! The conformance suite, unchanged, against both local backends: the
//! embedded log (the default) and SQLite.

mod embedded_log {
    use o2ohub::store::embedded::{EmbeddedStore, LogOptions};
    use o2ohub::store::EventStore;
    use std::sync::Arc;

    async fn fresh() -> Arc<dyn EventStore> {
        // Small segments, so the suite also crosses segment boundaries.
        let dir = tempfile::tempdir().expect("temp dir").keep();
        Arc::new(
            EmbeddedStore::open_with(
                &dir,
                LogOptions {
                    segment_bytes: 64 << 10,
                },
            )
            .expect("open store"),
        )
    }

    o2ohub::event_store_conformance!(fresh());
}

mod sqlite {
    use o2ohub::store::sqlite::SqliteStore;
    use o2ohub::store::EventStore;
    use std::sync::Arc;

    async fn fresh() -> Arc<dyn EventStore> {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        Arc::new(SqliteStore::open(&dir).expect("open store"))
    }

    o2ohub::event_store_conformance!(fresh());
}
