//! The topics of the hub and the admin step that creates them.
//!
//! One topic per aggregate type, keyed by stream id so one aggregate's
//! events stay in order in one partition:
//!
//! | topic              | streams                       | partitions        |
//! |--------------------|-------------------------------|-------------------|
//! | `<p>merchants`     | `merchant-…`                  | max(1, N / 4)     |
//! | `<p>riders`        | `rider-…`                     | N                 |
//! | `<p>orders`        | `order-…`                     | N                 |
//! | `<p>visits`        | `visit-…` and `slot-…`        | N                 |
//! | `<p>deliveries`    | `delivery-…`                  | N                 |
//! | `<p>dead-letter`   | poison messages, unroutable   | 1                 |
//!
//! `N` is `O2OHUB_KAFKA_PARTITIONS` (default 6): enough for six workers of
//! one group to split the busy topics, few enough that a full-copy consumer
//! (an API replica) is not slowed by hundreds of idle partitions. Merchants
//! change rarely (registrations, profile edits), so their topic gets fewer.
//!
//! Slot ledgers (`slot-…` streams, the seat count of one slot) go to the
//! visits topic: a slot's events are only ever committed together with the
//! visit that takes or frees a seat, and everything that reads them
//! (availability, store days) also reads visits — a topic of their own would
//! split one fact across two topics with no ordering between them.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeSet;
use std::time::Duration;

use super::KafkaConfig;
use o2ohub_events::AggregateKind;

/// Topic suffixes of the event topics, in a fixed order.
pub const EVENT_TOPICS: [&str; 5] = ["merchants", "riders", "orders", "visits", "deliveries"];

/// Suffix of the dead-letter topic.
pub const DEAD_LETTER: &str = "dead-letter";

/// The full topic name of a stream's events, or `None` for a stream that
/// belongs to no aggregate (it goes to the dead-letter topic).
pub fn topic_of_stream(config: &KafkaConfig, stream: &str) -> Option<String> {
    AggregateKind::of_stream(stream).map(|k| format!("{}{}", config.topic_prefix, k.topic()))
}

/// The full topic names of one configuration, computed once, for code that
/// routes every event (the relay, the bench's raw producer).
#[derive(Debug, Clone)]
pub struct TopicNames {
    /// `(suffix, full name)` of each event topic.
    events: Vec<(&'static str, String)>,
    /// Where events of streams of no aggregate go.
    dead_letter: String,
}

impl TopicNames {
    /// The names under `config`'s prefix.
    pub fn new(config: &KafkaConfig) -> Self {
        TopicNames {
            events: EVENT_TOPICS
                .iter()
                .map(|t| (*t, format!("{}{t}", config.topic_prefix)))
                .collect(),
            dead_letter: dead_letter_topic(config),
        }
    }

    /// The topic of a stream's events: [`topic_of_stream`], with the
    /// dead-letter topic for a stream that belongs to no aggregate.
    pub fn of_stream(&self, stream: &str) -> &str {
        self.name(self.index_of_stream(stream))
    }

    /// [`TopicNames::of_stream`] as a small number, for [`TopicNames::name`].
    pub fn index_of_stream(&self, stream: &str) -> usize {
        AggregateKind::of_stream(stream)
            .and_then(|k| {
                let suffix = k.topic();
                self.events.iter().position(|(s, _)| *s == suffix)
            })
            .unwrap_or(self.events.len())
    }

    /// The topic numbered `index` by [`TopicNames::index_of_stream`].
    pub fn name(&self, index: usize) -> &str {
        self.events
            .get(index)
            .map_or(&self.dead_letter, |(_, name)| name)
    }
}

/// Every event topic's full name.
pub fn event_topics(config: &KafkaConfig) -> Vec<String> {
    EVENT_TOPICS
        .iter()
        .map(|t| format!("{}{t}", config.topic_prefix))
        .collect()
}

/// The dead-letter topic's full name.
pub fn dead_letter_topic(config: &KafkaConfig) -> String {
    format!("{}{DEAD_LETTER}", config.topic_prefix)
}

/// The partition count the hub gives a topic suffix.
pub fn partitions_of(config: &KafkaConfig, suffix: &str) -> i32 {
    match suffix {
        "merchants" => (config.partitions / 4).max(1),
        DEAD_LETTER => 1,
        _ => config.partitions,
    }
}

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The admin client could not be built or reached no broker.
    #[error("cannot create the Kafka topics on {brokers}: {source}. Check O2OHUB_KAFKA_BROKERS and the security settings (O2OHUB_KAFKA_SECURITY_PROTOCOL, …)")]
    Admin {
        /// The brokers.
        brokers: String,
        /// What librdkafka said.
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused one topic.
    #[error("the broker refused to create topic {topic}: {code}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's error.
        code: RDKafkaErrorCode,
    },
}

/// The topic sets this process has ensured, by [`ensured_key`].
static ENSURED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());

/// What identifies one topic set: the cluster, the prefix, the counts.
fn ensured_key(config: &KafkaConfig) -> String {
    format!(
        "{}|{}|{}|{}",
        config.brokers, config.topic_prefix, config.partitions, config.replication
    )
}

/// Creates every topic the hub uses that does not exist yet; returns the
/// names it created. Safe to run at every start and from several processes.
///
/// A process asks the cluster once per topic set: later calls for the same
/// brokers, prefix and counts return at once (a fresh admin client's
/// round trip costs 0.1–0.2 s, most of a relay's start). After a failure
/// that may mean the topics are gone, [`forget_topics`] makes the next call
/// ask again.
pub async fn ensure_topics(config: &KafkaConfig) -> Result<Vec<String>, TopicsError> {
    let key = ensured_key(config);
    if lock_ensured().contains(&key) {
        return Ok(Vec::new());
    }
    let created = create_topics(config).await?;
    lock_ensured().insert(key);
    Ok(created)
}

/// Makes the next [`ensure_topics`] for `config`'s topic set ask the cluster.
pub fn forget_topics(config: &KafkaConfig) {
    lock_ensured().remove(&ensured_key(config));
}

fn lock_ensured() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    ENSURED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks the cluster to create every topic of the set.
async fn create_topics(config: &KafkaConfig) -> Result<Vec<String>, TopicsError> {
    let admin_error = |source| TopicsError::Admin {
        brokers: config.brokers.clone(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> =
        config.client_config().create().map_err(admin_error)?;
    let wanted: Vec<(String, i32)> = EVENT_TOPICS
        .iter()
        .chain(std::iter::once(&DEAD_LETTER))
        .map(|s| {
            (
                format!("{}{s}", config.topic_prefix),
                partitions_of(config, s),
            )
        })
        .collect();
    let new: Vec<NewTopic> = wanted
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(
                name,
                *partitions,
                TopicReplication::Fixed(config.replication),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(admin_error)?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicsError::Refused { topic, code }),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_route_to_their_aggregate_topic() {
        let c = KafkaConfig::new("b:9092");
        let id = "0190b3a0-0000-7000-8000-000000000001";
        assert_eq!(
            topic_of_stream(&c, &format!("order-{id}")).as_deref(),
            Some("o2o.orders")
        );
        assert_eq!(
            topic_of_stream(&c, &format!("slot-{id}-standard-2026")).as_deref(),
            Some("o2o.visits")
        );
        assert_eq!(topic_of_stream(&c, "nonsense"), None);
        assert_eq!(partitions_of(&c, "merchants"), 1);
        assert_eq!(partitions_of(&c, "orders"), 6);
    }
}
