//! Kafka settings from the environment: `O2OHUB_KAFKA_BROKERS` turns Kafka
//! on; the topic prefix, partition counts and replication factor have their
//! own variables; every other `O2OHUB_KAFKA_<SETTING>` is handed to
//! librdkafka as `setting.with.dots` (security protocol, SASL, TLS files…),
//! so any production cluster's client settings can be given without a code
//! change.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;

/// Prefix of every variable this module reads.
const ENV_PREFIX: &str = "O2OHUB_KAFKA_";

/// Variables read by the hub itself (never passed to librdkafka).
const OWN: [&str; 4] = ["BROKERS", "TOPIC_PREFIX", "PARTITIONS", "REPLICATION"];

/// Why the Kafka settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable of ours has a value we cannot read.
    #[error("{variable}={value:?} is invalid: {expected}")]
    Invalid {
        /// The environment variable.
        variable: String,
        /// Its value.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
}

/// How the hub talks to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: where the cluster is.
    pub brokers: String,
    /// Prepended to every topic name (`o2o.` gives `o2o.orders`), so several
    /// hubs or environments can share one cluster.
    pub topic_prefix: String,
    /// Partitions of the high-volume topics (orders, visits, deliveries,
    /// riders) when the hub creates them; merchants get a quarter (≥ 1).
    pub partitions: i32,
    /// Replication factor of created topics; -1 takes the broker's default.
    pub replication: i32,
    /// Extra librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`…),
    /// applied to every client the hub creates.
    pub client: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Settings for `brokers` with every default.
    pub fn new(brokers: &str) -> Self {
        KafkaConfig {
            brokers: brokers.to_owned(),
            topic_prefix: "o2o.".to_owned(),
            partitions: 6,
            replication: -1,
            client: BTreeMap::new(),
        }
    }

    /// Reads the process environment; `None` when `O2OHUB_KAFKA_BROKERS` is
    /// unset or empty (the hub then runs on its store alone).
    pub fn from_env() -> Result<Option<KafkaConfig>, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs (the environment, in tests).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Option<KafkaConfig>, ConfigError> {
        let ours: BTreeMap<String, String> = vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ENV_PREFIX)?.to_owned(), v)))
            .collect();
        let Some(brokers) = ours.get("BROKERS").filter(|b| !b.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = KafkaConfig::new(brokers.trim());
        if let Some(prefix) = ours.get("TOPIC_PREFIX") {
            if !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "TOPIC_PREFIX",
                    prefix,
                    "letters, digits, '.', '_' and '-' only (Kafka topic characters)",
                ));
            }
            config.topic_prefix = prefix.clone();
        }
        if let Some(p) = ours.get("PARTITIONS") {
            config.partitions = p
                .parse()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| invalid("PARTITIONS", p, "a partition count from 1 to 10000"))?;
        }
        if let Some(r) = ours.get("REPLICATION") {
            config.replication = r
                .parse()
                .ok()
                .filter(|n| *n == -1 || (1..=100).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "REPLICATION",
                        r,
                        "a replication factor from 1 to 100, or -1 for the broker's default",
                    )
                })?;
        }
        config.client = ours
            .into_iter()
            .filter(|(k, _)| !OWN.contains(&k.as_str()) && !k.is_empty())
            .map(|(k, v)| (k.to_ascii_lowercase().replace('_', "."), v))
            .collect();
        Ok(Some(config))
    }

    /// A librdkafka configuration with the brokers and the pass-through
    /// settings; callers add what their client needs on top.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }
}

fn invalid(variable: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        variable: format!("{ENV_PREFIX}{variable}"),
        value: value.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_is_off_without_brokers() {
        assert_eq!(
            KafkaConfig::from_vars(vars(&[("PATH", "/bin")])).unwrap(),
            None
        );
        assert_eq!(
            KafkaConfig::from_vars(vars(&[("O2OHUB_KAFKA_BROKERS", "  ")])).unwrap(),
            None
        );
    }

    #[test]
    fn librdkafka_settings_pass_through_with_dots() {
        let c = KafkaConfig::from_vars(vars(&[
            ("O2OHUB_KAFKA_BROKERS", "b1:9093,b2:9093"),
            ("O2OHUB_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("O2OHUB_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("O2OHUB_KAFKA_SSL_CA_LOCATION", "/etc/kafka/ca.pem"),
            ("O2OHUB_KAFKA_TOPIC_PREFIX", "prod.o2o."),
            ("O2OHUB_KAFKA_PARTITIONS", "24"),
            ("O2OHUB_KAFKA_REPLICATION", "3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.brokers, "b1:9093,b2:9093");
        assert_eq!(c.topic_prefix, "prod.o2o.");
        assert_eq!((c.partitions, c.replication), (24, 3));
        assert_eq!(
            c.client.into_iter().collect::<Vec<_>>(),
            vec![
                ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("ssl.ca.location".to_owned(), "/etc/kafka/ca.pem".to_owned()),
            ]
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("O2OHUB_KAFKA_PARTITIONS", "0"),
            ("O2OHUB_KAFKA_PARTITIONS", "many"),
            ("O2OHUB_KAFKA_REPLICATION", "0"),
            ("O2OHUB_KAFKA_TOPIC_PREFIX", "o2o/"),
        ] {
            let e = KafkaConfig::from_vars(vars(&[("O2OHUB_KAFKA_BROKERS", "b:9092"), (k, v)]))
                .unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}
