//! Events on Kafka: the relay that publishes the store's log, and the
//! workers that feed read models from it as consumer groups.
//!
//! - [`config`]: `O2OHUB_KAFKA_*` settings (brokers, topic prefix,
//!   partitions, librdkafka pass-through).
//! - [`topics`]: topic names, partition counts, and the admin step that
//!   creates them.
//! - [`wire`]: an event as a Kafka record (key, headers, JSON envelope) and
//!   the checked decoding that tells poison from events.
//! - [`relay`]: the log → Kafka publisher with its delivery-confirmed
//!   checkpoint.
//! - [`delivered`]: the relay's delivered prefix, fed by the producer's
//!   delivery reports.
//! - [`sequencer`]: ordering, re-send dropping and commit points of a
//!   consumer (pure).
//! - [`models`]: the read models a worker keeps, and their snapshot.
//! - [`worker`]: the consumer-group worker loop.
//! - [`project`]: `o2ohub project --source kafka`, the process around it.
//!
//! **Architecture Invariant:** Kafka is the bus, not the lock — the event
//! store stays authoritative; everything on Kafka can be re-published from
//! it, and consumers tolerate re-sends.

pub mod config;
pub mod delivered;
pub mod models;
pub mod project;
pub mod relay;
pub mod sequencer;
pub mod topics;
pub mod wire;
pub mod worker;

pub use config::KafkaConfig;
