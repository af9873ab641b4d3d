//! The conformance suite, unchanged, against both local backends — the
//! embedded log (the default; with direct writes and without) and SQLite —
//! and, with the `eventstoredb`
//! feature, against an EventStoreDB/KurrentDB server.

/// A fresh embedded log with small segments, so the suite also crosses
/// segment boundaries.
async fn fresh_log(direct_writes: bool) -> std::sync::Arc<dyn o2ohub::store::EventStore> {
    use o2ohub::store::embedded::{EmbeddedStore, LogOptions};
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let options = LogOptions {
        segment_bytes: 64 << 10,
        direct_writes,
    };
    std::sync::Arc::new(EmbeddedStore::open_with(&dir, options).expect("open store"))
}

mod embedded_log {
    use o2ohub::store::EventStore;
    use std::sync::Arc;

    async fn fresh() -> Arc<dyn EventStore> {
        super::fresh_log(true).await
    }

    o2ohub::event_store_conformance!(fresh());
}

/// The log where direct writes are off or refused: `pwrite` + `fdatasync`.
mod embedded_log_buffered {
    use o2ohub::store::EventStore;
    use std::sync::Arc;

    async fn fresh() -> Arc<dyn EventStore> {
        super::fresh_log(false).await
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

/// Needs a server, so every case is ignored (listed by name as ignored, never
/// passed) unless run with `-- --ignored`; scripts/test.sh does that when
/// `O2OHUB_ESDB_URL` is set. Each case gets its own namespace on the server.
#[cfg(feature = "eventstoredb")]
mod eventstoredb {
    use o2ohub::store::esdb::EsdbStore;
    use o2ohub::store::EventStore;
    use std::sync::Arc;

    async fn fresh() -> Arc<dyn EventStore> {
        let url = std::env::var("O2OHUB_ESDB_URL").expect(
            "O2OHUB_ESDB_URL must point at an EventStoreDB/KurrentDB server \
             (e.g. esdb://localhost:2113?tls=false) to run these cases",
        );
        Arc::new(
            EsdbStore::connect_fresh(&url)
                .await
                .expect("connect to EventStoreDB"),
        )
    }

    o2ohub::event_store_conformance!(
        fresh(),
        ignore = "needs an EventStoreDB server: set O2OHUB_ESDB_URL and run with -- --ignored"
    );
}
