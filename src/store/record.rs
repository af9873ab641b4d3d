//! The store's view of an event: type name, schema version and JSON payload
//! with metadata, as written (`NewEvent`), as read back (`RecordedEvent`),
//! and as subscriptions hand it out (`SubscribedEvent`: shared by every
//! subscriber and decoded at most once).

use chrono::{DateTime, Utc};
use o2ohub_events::{Actor, DecodeError, Envelope, Event};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

use super::Position;

/// Metadata every event of one command shares.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMetadata {
    /// When the command was decided.
    pub occurred_at: DateTime<Utc>,
    /// The request or process the command belongs to.
    pub correlation_id: Uuid,
    /// What caused the command, if it was caused by an event.
    pub causation_id: Option<Uuid>,
    /// Who issued the command.
    pub actor: Actor,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id (UUIDv7).
    pub event_id: Uuid,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u32,
    /// JSON payload.
    pub payload: String,
    /// Shared metadata.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// Encodes a typed event with a fresh id.
    pub fn from_event(event: &Event, metadata: &EventMetadata) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.encode(),
            metadata: metadata.clone(),
        }
    }
}

/// An event read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global position (1-based, gap-free).
    pub position: Position,
    /// The stream.
    pub stream: String,
    /// Version within the stream (1-based).
    pub version: u64,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
    /// The event as it was appended.
    pub event: NewEvent,
}

impl RecordedEvent {
    /// Decodes into a typed envelope, upcasting old schema versions.
    pub fn decode(&self) -> Result<Envelope, DecodeError> {
        let e = &self.event;
        let event = Event::decode(&e.event_type, e.schema_version, &e.payload)?;
        Ok(self.envelope(event, self.stream.clone(), e.metadata.actor.clone()))
    }

    /// [`decode`](Self::decode), moving the stream id and the actor into the
    /// envelope instead of copying them: for a reader that is done with the
    /// recorded event (a rebuild decodes a million of them).
    pub fn into_envelope(mut self) -> Result<Envelope, DecodeError> {
        let e = &mut self.event;
        let event = Event::decode(&e.event_type, e.schema_version, &e.payload)?;
        // An empty subject does not allocate.
        let actor = std::mem::replace(&mut e.metadata.actor, Actor::system(""));
        let stream = std::mem::take(&mut self.stream);
        Ok(self.envelope(event, stream, actor))
    }

    /// The envelope of this event around its decoded payload.
    fn envelope(&self, event: Event, stream_id: String, actor: Actor) -> Envelope {
        let e = &self.event;
        Envelope {
            event_id: e.event_id,
            stream_id,
            stream_version: self.version,
            global_position: self.position,
            schema_version: e.schema_version,
            occurred_at: e.metadata.occurred_at,
            recorded_at: self.recorded_at,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            actor,
            event,
        }
    }
}

/// An event a subscription hands out. The hub's read models, the relay and
/// open offer streams each follow the log, and at the live edge they share
/// one copy of each event: the envelope is decoded by the first subscriber
/// that asks and kept for the others (decoding was most of a fold's cost,
/// paid once per read model before).
#[derive(Debug)]
pub struct SubscribedEvent {
    recorded: RecordedEvent,
    decoded: OnceLock<Result<Envelope, DecodeError>>,
}

impl SubscribedEvent {
    /// A recorded event, not yet decoded.
    pub fn new(recorded: RecordedEvent) -> Arc<Self> {
        Arc::new(SubscribedEvent {
            recorded,
            decoded: OnceLock::new(),
        })
    }

    /// Each of `events`, not yet decoded.
    pub fn each(events: Vec<RecordedEvent>) -> Vec<Arc<Self>> {
        events.into_iter().map(SubscribedEvent::new).collect()
    }

    /// The typed envelope ([`RecordedEvent::decode`]), decoded on first use.
    pub fn envelope(&self) -> Result<&Envelope, &DecodeError> {
        self.decoded.get_or_init(|| self.recorded.decode()).as_ref()
    }
}

impl Deref for SubscribedEvent {
    type Target = RecordedEvent;

    fn deref(&self) -> &RecordedEvent {
        &self.recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use o2ohub_events::{MerchantEvent, MerchantId, MerchantPaused, Role};

    #[test]
    fn into_envelope_equals_decode() {
        let merchant = MerchantId(Uuid::from_u128(7));
        let event: Event = MerchantEvent::Paused(MerchantPaused {
            reason: "stock-take".into(),
        })
        .into();
        let recorded = RecordedEvent {
            position: 42,
            stream: merchant.stream(),
            version: 3,
            recorded_at: DateTime::from_timestamp_micros(1_764_000_000_000_000).unwrap(),
            event: NewEvent::from_event(
                &event,
                &EventMetadata {
                    occurred_at: DateTime::from_timestamp_micros(1_763_999_999_000_000).unwrap(),
                    correlation_id: Uuid::from_u128(1),
                    causation_id: Some(Uuid::from_u128(2)),
                    actor: Actor {
                        role: Role::Staff,
                        subject: "staff-9".into(),
                    },
                },
            ),
        };
        let decoded = recorded.decode().unwrap();
        assert_eq!(decoded.actor.subject, "staff-9");
        assert_eq!(decoded.stream_id, merchant.stream());
        assert_eq!(recorded.into_envelope().unwrap(), decoded);
    }
}
