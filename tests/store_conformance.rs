//! The conformance suite against the embedded store.

use std::sync::Arc;

use o2ohub::store::embedded::EmbeddedStore;
use o2ohub::store::EventStore;

async fn fresh() -> Arc<dyn EventStore> {
    // Each store lives in its own directory, kept until the process ends.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Arc::new(EmbeddedStore::open(&dir).expect("open store"))
}

o2ohub::event_store_conformance!(fresh());
