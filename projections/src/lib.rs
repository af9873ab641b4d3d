//! o2ohub read models: pure folds over event envelopes.
//!
//! # Layout
//!
//! This crate holds the read models the hub queries (merchant geo index,
//! rider supply, availability, order and visit views, dispatch state,
//! analytics). Each is fed `o2ohub_events::Envelope`s in global-position order
//! by a runner in the hub, from the store's subscription or from Kafka, and
//! never performs IO itself.
//!
//! **Architecture Invariant:** depends on `o2ohub-events` only; no IO, no
//! clock, no randomness.
