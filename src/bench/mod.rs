//! `o2ohub bench …`: measurements printed as a readable table, or as one JSON
//! object per measurement with `--json`.
//!
//! - [`api`]: booking commands end to end over HTTP against `o2ohub serve`.
//! - [`store`]: durable appends/s of the embedded store against PostgreSQL.
//! - [`geo`]: the merchant search on a 100k-merchant city against Redis GEOSEARCH.
//! - [`dispatch`]: one dispatcher tick at city scale, and a simulated hour
//!   of the global policy against greedy nearest-rider.
//! - [`kafka`]: the Kafka relay against a raw producer, and command → Kafka-fed read model latency.
//! - [`rebuild`]: events/s folded when read models are rebuilt from the log.
//! - [`served`]: `o2ohub serve` as a child process, the HTTP target.
//! - [`latency`]: percentile bookkeeping shared by the benches.
//! - [`wrk`]: `wrk` as the load generator of an HTTP bench.

pub mod api;
pub mod dispatch;
pub mod geo;
pub mod kafka;
pub mod latency;
pub mod rebuild;
pub mod served;
pub mod store;
pub mod wrk;
