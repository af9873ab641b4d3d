//! The envelope: an event with everything the log knows about it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Actor, Event};

/// An event as recorded: identity, place in its stream and in the global log,
/// timing, causality and actor, around the typed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Unique id of this event (UUIDv7: time-ordered); consumers dedupe on it.
    pub event_id: Uuid,
    /// The stream (aggregate instance) it belongs to, e.g. `order-<uuid>`.
    pub stream_id: String,
    /// 1-based position within its stream.
    pub stream_version: u64,
    /// 1-based position in the store's gap-free global log.
    pub global_position: u64,
    /// The schema version the payload was written at (before upcasting).
    pub schema_version: u32,
    /// When the command that caused it was decided (the hub's clock).
    pub occurred_at: DateTime<Utc>,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
    /// The request or process this event is part of.
    pub correlation_id: Uuid,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// Who caused it.
    pub actor: Actor,
    /// The event itself, upcast to the current schema.
    pub event: Event,
}

impl Envelope {
    /// The stable type name of the event.
    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }
}
