//! `o2ohub bench …`: measurements printed as a readable table, or as one JSON
//! object per measurement with `--json`.
//!
//! - [`store`]: durable appends/s of the embedded store against PostgreSQL.
//! - [`geo`]: the merchant search on a 100k-merchant city against Redis GEOSEARCH.
//! - [`kafka`]: the Kafka relay against a raw producer, and command → Kafka-fed read model latency.
//! - [`rebuild`]: events/s folded when read models are rebuilt from the log.
//! - [`latency`]: percentile bookkeeping shared by the benches.

pub mod geo;
pub mod kafka;
pub mod latency;
pub mod rebuild;
pub mod store;
