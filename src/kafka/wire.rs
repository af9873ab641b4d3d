//! The shape of an event on Kafka: the record key (the stream id), the
//! headers (event id, type, schema version, global position, stream version,
//! correlation id) and the value (the JSON envelope, payload embedded as
//! JSON). Encoding and the checked decoding a consumer does, which tells a
//! poison message from an event.

use chrono::{DateTime, Utc};
use o2ohub_events::{Actor, DecodeError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::json_out::{put_json_str, put_time, put_uuid};
use crate::store::{EventMetadata, NewEvent, RecordedEvent};

/// Header names, as consumers see them.
pub mod header {
    /// The event's UUID (consumers dedupe on it).
    pub const EVENT_ID: &str = "event-id";
    /// The stable type name, e.g. `OrderPlaced`.
    pub const EVENT_TYPE: &str = "event-type";
    /// The payload's schema version.
    pub const SCHEMA_VERSION: &str = "schema-version";
    /// The position in the store's global log.
    pub const GLOBAL_POSITION: &str = "global-position";
    /// The version within the stream.
    pub const STREAM_VERSION: &str = "stream-version";
    /// The request or process the event belongs to.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// On the dead-letter topic: why the message was set aside.
    pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
    /// On the dead-letter topic: `topic/partition/offset` it came from.
    pub const DEAD_LETTER_SOURCE: &str = "dead-letter-source";
}

/// The JSON value of a record, as consumers read it. [`encode`] writes the
/// same bytes by hand (a test holds them to serde's); serde reads them back.
#[derive(Serialize, Deserialize)]
struct WireEnvelope<'a> {
    /// Unique id of the event.
    event_id: Uuid,
    /// Stream (aggregate instance), also the record key.
    #[serde(borrow)]
    stream_id: std::borrow::Cow<'a, str>,
    /// Version within the stream.
    stream_version: u64,
    /// Position in the store's global log.
    global_position: u64,
    /// Stable type name.
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    /// Schema version of `payload`.
    schema_version: u32,
    /// When the command was decided.
    occurred_at: DateTime<Utc>,
    /// When the store committed the event.
    recorded_at: DateTime<Utc>,
    /// The request or process it belongs to.
    correlation_id: Uuid,
    /// What caused it.
    causation_id: Option<Uuid>,
    /// Who caused it.
    actor: std::borrow::Cow<'a, Actor>,
    /// The payload, as stored.
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// One event ready to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRecord {
    /// The record key: the stream id.
    pub key: String,
    /// What the headers carry, formatted when the record is produced.
    pub headers: Headers,
    /// The JSON envelope.
    pub value: Vec<u8>,
}

/// The values of a record's headers, kept typed: librdkafka copies header
/// values at send, so they are formatted there into stack buffers instead of
/// six strings per event.
#[derive(Debug, Clone, PartialEq)]
pub struct Headers {
    /// [`header::EVENT_ID`].
    pub event_id: Uuid,
    /// [`header::EVENT_TYPE`].
    pub event_type: String,
    /// [`header::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// [`header::GLOBAL_POSITION`].
    pub global_position: u64,
    /// [`header::STREAM_VERSION`].
    pub stream_version: u64,
    /// [`header::CORRELATION_ID`].
    pub correlation_id: Uuid,
}

impl WireRecord {
    /// The headers as librdkafka takes them (it copies the values).
    pub fn kafka_headers(&self) -> rdkafka::message::OwnedHeaders {
        use rdkafka::message::Header;
        let h = &self.headers;
        let mut uuid = uuid::Uuid::encode_buffer();
        let mut number = itoa::Buffer::new();
        rdkafka::message::OwnedHeaders::new_with_capacity(6)
            .insert(Header {
                key: header::EVENT_ID,
                value: Some(h.event_id.hyphenated().encode_lower(&mut uuid).as_bytes()),
            })
            .insert(Header {
                key: header::EVENT_TYPE,
                value: Some(h.event_type.as_bytes()),
            })
            .insert(Header {
                key: header::SCHEMA_VERSION,
                value: Some(number.format(h.schema_version).as_bytes()),
            })
            .insert(Header {
                key: header::GLOBAL_POSITION,
                value: Some(number.format(h.global_position).as_bytes()),
            })
            .insert(Header {
                key: header::STREAM_VERSION,
                value: Some(number.format(h.stream_version).as_bytes()),
            })
            .insert(Header {
                key: header::CORRELATION_ID,
                value: Some(
                    h.correlation_id
                        .hyphenated()
                        .encode_lower(&mut uuid)
                        .as_bytes(),
                ),
            })
    }
}

/// Bytes of an envelope beyond its strings and payload (field names,
/// ids, numbers, two instants), so the value is written without regrowing.
const ENVELOPE_OVERHEAD: usize = 400;

/// Encodes a stored event as a record, moving its stream id (the key) and
/// type name (a header) into it.
pub fn encode(recorded: &RecordedEvent) -> WireRecord {
    let event = &recorded.event;
    WireRecord {
        key: recorded.stream.clone(),
        headers: Headers {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            global_position: recorded.position,
            stream_version: recorded.version,
            correlation_id: event.metadata.correlation_id,
        },
        value: envelope(recorded),
    }
}

/// The JSON envelope of a stored event: byte for byte what serde_json makes
/// of a [`WireEnvelope`] (a test holds them equal), written field by field
/// without serde's machinery — the relay writes one per event.
fn envelope(recorded: &RecordedEvent) -> Vec<u8> {
    let e = &recorded.event;
    // A stored payload is JSON (written by `Event::encode`); anything else is
    // carried as a JSON string so the record stays JSON and consumers see it
    // as an undecodable payload rather than losing it.
    let quoted;
    let payload = if serde_json::from_str::<serde::de::IgnoredAny>(&e.payload).is_ok() {
        e.payload.as_str()
    } else {
        quoted = serde_json::to_string(&e.payload).unwrap_or_else(|_| "null".into());
        quoted.as_str()
    };
    let m = &e.metadata;
    let mut value = Vec::with_capacity(
        ENVELOPE_OVERHEAD
            + payload.len()
            + recorded.stream.len()
            + e.event_type.len()
            + m.actor.subject.len(),
    );
    let mut number = itoa::Buffer::new();
    value.extend_from_slice(b"{\"event_id\":");
    put_uuid(&mut value, &e.event_id);
    value.extend_from_slice(b",\"stream_id\":");
    put_json_str(&mut value, &recorded.stream);
    value.extend_from_slice(b",\"stream_version\":");
    value.extend_from_slice(number.format(recorded.version).as_bytes());
    value.extend_from_slice(b",\"global_position\":");
    value.extend_from_slice(number.format(recorded.position).as_bytes());
    value.extend_from_slice(b",\"event_type\":");
    put_json_str(&mut value, &e.event_type);
    value.extend_from_slice(b",\"schema_version\":");
    value.extend_from_slice(number.format(e.schema_version).as_bytes());
    value.extend_from_slice(b",\"occurred_at\":");
    put_time(&mut value, &m.occurred_at);
    value.extend_from_slice(b",\"recorded_at\":");
    put_time(&mut value, &recorded.recorded_at);
    value.extend_from_slice(b",\"correlation_id\":");
    put_uuid(&mut value, &m.correlation_id);
    value.extend_from_slice(b",\"causation_id\":");
    match &m.causation_id {
        Some(id) => put_uuid(&mut value, id),
        None => value.extend_from_slice(b"null"),
    }
    value.extend_from_slice(b",\"actor\":{\"role\":\"");
    value.extend_from_slice(m.actor.role.as_str().as_bytes());
    value.extend_from_slice(b"\",\"subject\":");
    put_json_str(&mut value, &m.actor.subject);
    value.extend_from_slice(b"},\"payload\":");
    value.extend_from_slice(payload.as_bytes());
    value.push(b'}');
    value
}

/// Why a message is poison: it is set aside, never applied.
#[derive(Debug, thiserror::Error)]
pub enum Poison {
    /// The value is not a JSON envelope.
    #[error("not an event envelope: {0}")]
    NotAnEnvelope(String),
    /// An envelope whose event this build cannot read (unknown type, future
    /// schema version, invalid payload). It holds a place in the log.
    #[error("event at global position {position} cannot be read: {error}")]
    Undecodable {
        /// Its global position.
        position: u64,
        /// Its stream and version, so the place can be marked as taken.
        stream: String,
        /// Its stream version.
        version: u64,
        /// Why.
        error: DecodeError,
    },
}

/// Reads a record's value back into the stored event it was made from;
/// the envelope is decoded (and upcast) so only readable events come back.
pub fn decode(value: Option<&[u8]>) -> Result<(RecordedEvent, o2ohub_events::Envelope), Poison> {
    let value = value.ok_or_else(|| Poison::NotAnEnvelope("empty value".into()))?;
    let wire: WireEnvelope =
        serde_json::from_slice(value).map_err(|e| Poison::NotAnEnvelope(e.to_string()))?;
    let recorded = RecordedEvent {
        position: wire.global_position,
        stream: wire.stream_id.into_owned(),
        version: wire.stream_version,
        recorded_at: wire.recorded_at,
        event: NewEvent {
            event_id: wire.event_id,
            event_type: wire.event_type.into_owned(),
            schema_version: wire.schema_version,
            payload: wire.payload.get().to_owned(),
            metadata: EventMetadata {
                occurred_at: wire.occurred_at,
                correlation_id: wire.correlation_id,
                causation_id: wire.causation_id,
                actor: wire.actor.into_owned(),
            },
        },
    };
    if recorded.position == 0 || recorded.version == 0 {
        return Err(Poison::NotAnEnvelope(
            "global_position and stream_version start at 1".into(),
        ));
    }
    match recorded.decode() {
        Ok(envelope) => Ok((recorded, envelope)),
        Err(error) => Err(Poison::Undecodable {
            position: recorded.position,
            stream: recorded.stream,
            version: recorded.version,
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    /// What serde_json makes of the envelope of `r` (payload valid JSON).
    fn serde_envelope(r: &RecordedEvent) -> Vec<u8> {
        let e = &r.event;
        serde_json::to_vec(&WireEnvelope {
            event_id: e.event_id,
            stream_id: r.stream.as_str().into(),
            stream_version: r.version,
            global_position: r.position,
            event_type: e.event_type.as_str().into(),
            schema_version: e.schema_version,
            occurred_at: e.metadata.occurred_at,
            recorded_at: r.recorded_at,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            actor: std::borrow::Cow::Borrowed(&e.metadata.actor),
            payload: serde_json::from_str(&e.payload).unwrap(),
        })
        .unwrap()
    }

    proptest! {
        #[test]
        fn the_envelope_is_what_serde_writes(
            stream in "\\PC{0,12}|[a-z]{1,8}-[0-9a-f]{8}",
            subject in "\\PC{0,8}|[\"\\\\\\x00-\\x1f\\x7f]{1,4}",
            event_type in "[A-Za-z]{1,20}",
            ids in any::<(u128, u128, Option<u128>)>(),
            numbers in any::<(u64, u64, u32)>(),
            seconds in any::<(i32, u32)>(),
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            role in 0usize..6,
            payload in prop_oneof![
                Just("{}"),
                Just(r#"{"name":"Ana \"Li\"","ids":[1,2.5,null,true],"at":"2026-12-01T08:00:00Z"}"#),
                Just("[]"),
                Just("\"text\""),
            ],
        ) {
            let roles = [Role::Consumer, Role::Staff, Role::Rider, Role::Admin, Role::PaymentProvider, Role::System];
            // Times across four-digit years (seconds from an i32 scaled up), any nanosecond.
            let occurred = DateTime::from_timestamp(i64::from(seconds.0) * 120, nanos).unwrap();
            let recorded_at = DateTime::from_timestamp(i64::from(seconds.1), 0).unwrap();
            let r = RecordedEvent {
                position: numbers.0,
                stream,
                version: numbers.1,
                recorded_at,
                event: NewEvent {
                    event_id: Uuid::from_u128(ids.0),
                    event_type,
                    schema_version: numbers.2,
                    payload: payload.into(),
                    metadata: EventMetadata {
                        occurred_at: occurred,
                        correlation_id: Uuid::from_u128(ids.1),
                        causation_id: ids.2.map(Uuid::from_u128),
                        actor: Actor { role: roles[role], subject },
                    },
                },
            };
            prop_assert_eq!(
                String::from_utf8(envelope(&r)).unwrap(),
                String::from_utf8(serde_envelope(&r)).unwrap()
            );
        }
    }

    use o2ohub_events::{Event, RiderEvent, RiderId, RiderRegistered, Role, VehicleType};

    fn recorded(event_type: &str, schema_version: u32, payload: &str) -> RecordedEvent {
        RecordedEvent {
            position: 42,
            stream: "rider-x".into(),
            version: 3,
            recorded_at: Utc::now(),
            event: NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event_type.into(),
                schema_version,
                payload: payload.into(),
                metadata: EventMetadata {
                    occurred_at: Utc::now(),
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    actor: Actor::system("test"),
                },
            },
        }
    }

    #[test]
    fn an_event_round_trips_with_its_headers() {
        let event: Event = RiderEvent::Registered(RiderRegistered {
            rider_id: RiderId(Uuid::now_v7()),
            name: "Ana".into(),
            vehicle: VehicleType::Bicycle,
            capacity: 2,
        })
        .into();
        let r = recorded(event.event_type(), event.schema_version(), &event.encode());
        let wire = encode(&r);
        assert_eq!(wire.key, "rider-x");
        let pairs = pairs(&wire.headers);
        assert!(pairs.contains(&(header::GLOBAL_POSITION, "42".to_owned())));
        assert!(pairs.contains(&(header::EVENT_ID, r.event.event_id.to_string())));
        // What librdkafka is given is what consumers read.
        use rdkafka::message::Headers as _;
        let sent: Vec<(String, String)> = wire
            .kafka_headers()
            .iter()
            .map(|h| {
                let value = std::str::from_utf8(h.value.unwrap()).unwrap();
                (h.key.to_owned(), value.to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(sent, expected);
        let (back, envelope) = decode(Some(&wire.value)).unwrap();
        assert_eq!(back, r);
        assert_eq!(envelope.event, event);
    }

    /// The headers as a consumer reads them, formatted independently.
    fn pairs(h: &Headers) -> Vec<(&'static str, String)> {
        vec![
            (header::EVENT_ID, h.event_id.to_string()),
            (header::EVENT_TYPE, h.event_type.clone()),
            (header::SCHEMA_VERSION, h.schema_version.to_string()),
            (header::GLOBAL_POSITION, h.global_position.to_string()),
            (header::STREAM_VERSION, h.stream_version.to_string()),
            (header::CORRELATION_ID, h.correlation_id.to_string()),
        ]
    }

    #[test]
    fn poison_is_told_apart() {
        assert!(matches!(
            decode(Some(b"not json")),
            Err(Poison::NotAnEnvelope(_))
        ));
        assert!(matches!(decode(None), Err(Poison::NotAnEnvelope(_))));
        let unknown = encode(&recorded("NoSuchEvent", 1, "{}"));
        assert!(matches!(
            decode(Some(&unknown.value)),
            Err(Poison::Undecodable {
                position: 42,
                error: DecodeError::UnknownType(_),
                ..
            })
        ));
        let future = encode(&recorded("RiderRegistered", 99, "{}"));
        assert!(matches!(
            decode(Some(&future.value)),
            Err(Poison::Undecodable {
                error: DecodeError::FutureVersion { .. },
                ..
            })
        ));
        // A payload that is not JSON still makes a JSON record.
        let garbled = encode(&recorded("RiderRegistered", 1, "{oops"));
        assert!(matches!(
            decode(Some(&garbled.value)),
            Err(Poison::Undecodable { .. })
        ));
    }
}
