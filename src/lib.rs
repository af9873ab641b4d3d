//! o2ohub: an event-sourced O2O order and local-service hub.
//!
//! # Layout
//!
//! - [`api`]: the HTTP API (warp): routes per audience, auth, problem+json.
//! - [`secrets`]: the JWT and code keys.
//! - [`solve`]: `o2ohub solve`, the optimiser on a Li & Lim instance file.
//! - [`serve`]: `o2ohub serve` — hub plus API with graceful shutdown.
//! - [`vault`]: consumer PII sealed with per-consumer keys; erasure deletes the key.
//! - [`store`]: the [`store::EventStore`] trait, the embedded SQLite backend
//!   and the conformance suite every backend passes.
//! - [`domain`]: the aggregates (`Merchant`, `Rider`, `Order`, `Visit`,
//!   `Slot`, `Delivery`) as pure `decide`/`evolve` functions, and the domain
//!   value types that are not part of events.
//! - [`command`]: loads an aggregate from its stream, decides, appends with
//!   the expected version, retries conflicts, and keeps idempotency.
//! - [`runner`]: keeps read models (the `o2ohub-projections` crate) current
//!   from the store, with snapshots so a restart resumes.
//! - [`routing`]: the route optimiser (pickup and delivery with time windows),
//!   a pure library; `o2ohub solve` runs it on Li & Lim instances.
//! - [`dispatch`]: the real-time dispatcher: offers to riders every tick.
//! - [`hub`]: the store and the read models assembled and running.
//! - [`replay`]: `o2ohub replay`, a recorded day's deliveries under another
//!   dispatch policy.
//! - [`kafka`]: the relay publishing the log to Kafka, and the Kafka-fed
//!   projection workers (`o2ohub project --source kafka`).
//! - [`rebuild`]: `o2ohub rebuild`, read models folded from position 1.
//! - [`bench`]: the `o2ohub bench` measurements.
//! - [`cli`]: the command-line interface of the `o2ohub` binary.
//! - [`clock`]: business time — the wall clock, or accelerated for the demo.
//! - [`demo`]: `o2ohub demo`, a seeded city day played through the HTTP API.
//!
//! The event catalogue lives in the `o2ohub-events` crate; read models in
//! `o2ohub-projections`.

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod command;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod hub;
pub mod json_out;
pub mod kafka;
pub mod rebuild;
pub mod replay;
pub mod routing;
pub mod runner;
pub mod secrets;
pub mod serve;
pub mod solve;
pub mod store;
pub mod vault;
