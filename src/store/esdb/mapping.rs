//! The pure half of the EventStoreDB backend: how the store's terms map to
//! the server's, with no connection. Stream names (one-to-one, inside an
//! optional namespace), expected versions and revisions, event metadata,
//! the dense position index over `$all`, and errors.
//!
//! Versions are 1-based in the store and revisions 0-based on the server:
//! version `v` is revision `v - 1`, and "no stream" is version 0.

use chrono::{DateTime, Utc};
use kurrentdb::{CurrentRevision, StreamState};
use o2ohub_events::{Actor, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{EventMetadata, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError};

/// Streams that hold idempotency claims start with this (after the namespace).
pub const CLAIM_STREAM_PREFIX: &str = "o2ohub-idempotency-";

/// Where a deployment's streams live on the server: an optional prefix that
/// lets several hubs (or test runs) share one cluster without seeing each
/// other's events. The empty namespace maps stream names unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace(String);

impl Namespace {
    /// A namespace; the prefix may not start with `$` (system streams).
    pub fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.starts_with('$') {
            return Err(StoreError::Invalid(
                "an EventStoreDB namespace may not start with `$` (system streams)".into(),
            ));
        }
        Ok(Namespace(prefix.to_owned()))
    }

    /// The server's name of one of the hub's streams.
    pub fn server_stream(&self, stream: &str) -> Result<String, StoreError> {
        if stream.is_empty() {
            return Err(StoreError::Invalid("a stream needs a name".into()));
        }
        if stream.starts_with('$') || stream.starts_with(CLAIM_STREAM_PREFIX) {
            return Err(StoreError::Invalid(format!(
                "stream `{stream}` has a name reserved for the server or for idempotency claims"
            )));
        }
        Ok(format!("{}{stream}", self.0))
    }

    /// The hub's name of a server stream, if it is one of this namespace's
    /// event streams.
    pub fn hub_stream<'a>(&self, server: &'a str) -> Option<&'a str> {
        server
            .strip_prefix(self.0.as_str())
            .filter(|s| !s.starts_with('$') && !s.starts_with(CLAIM_STREAM_PREFIX))
    }

    /// The stream holding the claim of an idempotency key (keys are hashed:
    /// they may be long or hold any character).
    pub fn claim_stream(&self, key: &str) -> String {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
        format!("{}{CLAIM_STREAM_PREFIX}{}", self.0, hex::encode(digest))
    }

    /// The server-side filter of `$all` (a .NET regular expression on the
    /// stream name): this namespace's event streams, never system streams
    /// (`$…`, which carry the system events) nor claim streams.
    pub fn all_filter_regex(&self) -> String {
        let mut escaped = String::new();
        for c in self.0.chars() {
            if "\\^$.|?*+()[]{}".contains(c) {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        format!("^{escaped}(?!{CLAIM_STREAM_PREFIX})[^$]")
    }
}

/// The server's expectation for a write the store expects at `expected`.
pub fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => StreamState::NoStream,
        ExpectedVersion::Exact(v) => StreamState::StreamRevision(v - 1),
    }
}

/// The store's version of a stream the server reports at `current`.
pub fn version_of(current: &CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(revision) => revision + 1,
    }
}

/// A client error in the store's terms; `stream` and `expected` name the
/// write it answered, for the version conflict.
pub fn store_error(e: kurrentdb::Error, stream: &str, expected: ExpectedVersion) -> StoreError {
    match e {
        kurrentdb::Error::WrongExpectedVersion { current, .. } => {
            StoreError::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual: version_of(&current),
            }
        }
        kurrentdb::Error::ResourceDeleted => StoreError::Backend(format!(
            "stream `{stream}` was deleted on the server; o2ohub streams are never deleted"
        )),
        kurrentdb::Error::AccessDenied => StoreError::Backend(
            "EventStoreDB denied access: check the user in O2OHUB_ESDB_URL".into(),
        ),
        other => StoreError::Backend(format!("EventStoreDB: {other}")),
    }
}

/// What travels in an event's custom metadata: everything of [`NewEvent`]
/// except id, type and payload, which the server has fields for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredMetadata {
    /// Schema version of the payload.
    pub schema_version: u32,
    /// When the command was decided, in microseconds since the epoch.
    pub occurred_at_us: i64,
    /// The request or process of the command.
    pub correlation_id: Uuid,
    /// What caused it.
    pub causation_id: Option<Uuid>,
    /// Who issued it (the role's stable name).
    pub role: String,
    /// Who issued it (the subject).
    pub subject: String,
}

impl StoredMetadata {
    /// The metadata of an event to append.
    pub fn of(event: &NewEvent) -> Self {
        let m = &event.metadata;
        StoredMetadata {
            schema_version: event.schema_version,
            occurred_at_us: m.occurred_at.timestamp_micros(),
            correlation_id: m.correlation_id,
            causation_id: m.causation_id,
            role: m.actor.role.as_str().to_owned(),
            subject: m.actor.subject.clone(),
        }
    }
}

/// The fields of an event as the server returns it.
#[derive(Debug, Clone, Copy)]
pub struct ServerEvent<'a> {
    /// The hub's name of its stream.
    pub stream: &'a str,
    /// Its revision (0-based).
    pub revision: u64,
    /// Its id (the hub's event id).
    pub id: Uuid,
    /// Its type.
    pub event_type: &'a str,
    /// The JSON payload.
    pub data: &'a [u8],
    /// [`StoredMetadata`] as JSON.
    pub custom_metadata: &'a [u8],
    /// When the server stored it.
    pub created: DateTime<Utc>,
}

/// Rebuilds a recorded event from what the server returned.
pub fn recorded_event(position: Position, e: ServerEvent<'_>) -> Result<RecordedEvent, StoreError> {
    let ServerEvent {
        stream,
        revision,
        id,
        event_type,
        data,
        custom_metadata,
        created,
    } = e;
    let bad = |what: String| {
        StoreError::Backend(format!(
            "event {id} of `{stream}` (revision {revision}) was not written by o2ohub: {what}"
        ))
    };
    let m: StoredMetadata =
        serde_json::from_slice(custom_metadata).map_err(|e| bad(format!("metadata: {e}")))?;
    let payload =
        String::from_utf8(data.to_vec()).map_err(|_| bad("payload is not UTF-8".into()))?;
    let role = Role::parse(&m.role).ok_or_else(|| bad(format!("unknown role `{}`", m.role)))?;
    let occurred_at = DateTime::from_timestamp_micros(m.occurred_at_us)
        .ok_or_else(|| bad("occurred_at out of range".into()))?;
    Ok(RecordedEvent {
        position,
        stream: stream.to_owned(),
        version: revision + 1,
        // The store's contract is microseconds, like the embedded log.
        recorded_at: DateTime::from_timestamp_micros(created.timestamp_micros()).unwrap_or(created),
        event: NewEvent {
            event_id: id,
            event_type: event_type.to_owned(),
            schema_version: m.schema_version,
            payload,
            metadata: EventMetadata {
                occurred_at,
                correlation_id: m.correlation_id,
                causation_id: m.causation_id,
                actor: Actor {
                    role,
                    subject: m.subject,
                },
            },
        },
    })
}

/// A place in `$all`: the server's (commit, prepare) position pair.
pub type AllPosition = (u64, u64);

/// The bridge from `$all` to the store's dense positions. `$all` positions
/// are byte offsets in the server's transaction log: totally ordered, never
/// reordered, but not dense (they jump by each record's size, and other
/// streams' events sit between ours). The store's position `n` is the `n`th
/// event of this namespace in `$all` order — fixed forever, because `$all`
/// only grows at its end — and this index holds the `$all` position of
/// each, so either can be found from the other.
#[derive(Debug, Default)]
pub struct PositionIndex {
    /// `$all` position of store position `i + 1`, ascending.
    all: Vec<AllPosition>,
}

impl PositionIndex {
    /// Appends the next event seen in `$all`; returns its store position.
    /// An event not after the last one is a replay (after a reconnect) and
    /// keeps the position it had.
    pub fn push(&mut self, at: AllPosition) -> Position {
        match self.all.last() {
            Some(last) if at <= *last => self.position_of(at).unwrap_or(0),
            _ => {
                self.all.push(at);
                self.all.len() as Position
            }
        }
    }

    /// The store position of the event at `at` in `$all`, once indexed.
    pub fn position_of(&self, at: AllPosition) -> Option<Position> {
        self.all.binary_search(&at).ok().map(|i| i as Position + 1)
    }

    /// The `$all` position of store position `p`.
    pub fn all_position(&self, p: Position) -> Option<AllPosition> {
        (p as usize)
            .checked_sub(1)
            .and_then(|i| self.all.get(i))
            .copied()
    }

    /// The last indexed position (0 when empty).
    pub fn head(&self) -> Position {
        self.all.len() as Position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_versions_map_to_revisions() {
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        assert_eq!(
            stream_state(ExpectedVersion::NoStream),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(0)),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(1)),
            StreamState::StreamRevision(0)
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(42)),
            StreamState::StreamRevision(41)
        );
        assert_eq!(version_of(&CurrentRevision::NoStream), 0);
        assert_eq!(version_of(&CurrentRevision::Current(0)), 1);
        assert_eq!(version_of(&CurrentRevision::Current(9)), 10);
    }

    #[test]
    fn a_conflict_reports_the_actual_version_and_other_errors_are_backend() {
        let e = store_error(
            kurrentdb::Error::WrongExpectedVersion {
                expected: StreamState::NoStream,
                current: CurrentRevision::Current(1),
            },
            "visit-1",
            ExpectedVersion::NoStream,
        );
        assert!(matches!(
            e,
            StoreError::WrongExpectedVersion { ref stream, actual: 2, expected: ExpectedVersion::NoStream } if stream == "visit-1"
        ));
        assert!(matches!(
            store_error(kurrentdb::Error::AccessDenied, "s", ExpectedVersion::Any),
            StoreError::Backend(m) if m.contains("O2OHUB_ESDB_URL")
        ));
        assert!(matches!(
            store_error(
                kurrentdb::Error::ConnectionClosed,
                "s",
                ExpectedVersion::Any
            ),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn positions_are_dense_over_sparse_all_positions() {
        let mut index = PositionIndex::default();
        assert_eq!(index.head(), 0);
        assert_eq!(index.push((100, 100)), 1);
        // Two events of one append share the commit position.
        assert_eq!(index.push((250, 180)), 2);
        assert_eq!(index.push((250, 250)), 3);
        assert_eq!(index.push((9_000, 9_000)), 4);
        // A replay after a reconnect keeps its position and adds nothing.
        assert_eq!(index.push((250, 180)), 2);
        assert_eq!(index.head(), 4);
        assert_eq!(index.position_of((250, 250)), Some(3));
        assert_eq!(index.position_of((251, 251)), None);
        assert_eq!(index.all_position(1), Some((100, 100)));
        assert_eq!(index.all_position(4), Some((9_000, 9_000)));
        assert_eq!(index.all_position(0), None);
        assert_eq!(index.all_position(5), None);
    }

    #[test]
    fn streams_map_one_to_one_inside_a_namespace() {
        let plain = Namespace::default();
        assert_eq!(plain.server_stream("visit-1").unwrap(), "visit-1");
        assert_eq!(plain.hub_stream("visit-1"), Some("visit-1"));
        let ns = Namespace::new("city.sh/").unwrap();
        assert_eq!(ns.server_stream("visit-1").unwrap(), "city.sh/visit-1");
        assert_eq!(ns.hub_stream("city.sh/visit-1"), Some("visit-1"));
        assert_eq!(ns.hub_stream("visit-1"), None);
        assert_eq!(ns.hub_stream("$stats"), None);
        assert!(ns.hub_stream(&ns.claim_stream("k")).is_none());
        assert!(matches!(
            plain.server_stream(""),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            plain.server_stream("$all"),
            Err(StoreError::Invalid(_))
        ));
        assert!(Namespace::new("$x").is_err());
        assert_eq!(
            ns.all_filter_regex(),
            r"^city\.sh/(?!o2ohub-idempotency-)[^$]"
        );
        assert_eq!(plain.all_filter_regex(), r"^(?!o2ohub-idempotency-)[^$]");
        assert_ne!(ns.claim_stream("a"), ns.claim_stream("b"));
    }

    #[test]
    fn metadata_round_trips_through_the_server_fields() {
        let event = NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "VisitBooked".into(),
            schema_version: 3,
            payload: r#"{"b":1,"a":2}"#.into(),
            metadata: EventMetadata {
                occurred_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
                correlation_id: Uuid::now_v7(),
                causation_id: Some(Uuid::now_v7()),
                actor: Actor {
                    role: Role::Staff,
                    subject: "staff-1".into(),
                },
            },
        };
        let meta = serde_json::to_vec(&StoredMetadata::of(&event)).unwrap();
        let created = DateTime::from_timestamp_micros(1_764_000_001_000_000).unwrap();
        let server = ServerEvent {
            stream: "visit-1",
            revision: 4,
            id: event.event_id,
            event_type: &event.event_type,
            data: event.payload.as_bytes(),
            custom_metadata: &meta,
            created,
        };
        let back = recorded_event(7, server).unwrap();
        assert_eq!(back.event, event);
        assert_eq!(
            (back.position, back.version, back.recorded_at),
            (7, 5, created)
        );
        assert!(matches!(
            recorded_event(7, ServerEvent { custom_metadata: b"not json", ..server }),
            Err(StoreError::Backend(m)) if m.contains("not written by o2ohub")
        ));
    }
}
