//! `o2ohub bench …`: measurements printed as a readable table, or as one JSON
//! object per measurement with `--json`.
//!
//! - [`store`]: durable appends/s of the embedded store against PostgreSQL.
//! - [`latency`]: percentile bookkeeping shared by the benches.

pub mod latency;
pub mod store;
