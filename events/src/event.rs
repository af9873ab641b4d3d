//! `Event`: the union of every aggregate's family, with the type-name and
//! version dispatch the store and the read side use.

use crate::catalogue::{decode_in, DecodeError, EventFamily};
use crate::{DeliveryEvent, MerchantEvent, OrderEvent, RiderEvent, SlotEvent, VisitEvent};

/// The kind of aggregate a stream belongs to; decides the Kafka topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    /// `merchant-<id>` streams.
    Merchant,
    /// `rider-<id>` streams.
    Rider,
    /// `order-<id>` streams.
    Order,
    /// `visit-<id>` streams.
    Visit,
    /// `slot-…` streams (capacity ledgers; published with visits).
    Slot,
    /// `delivery-<id>` streams.
    Delivery,
}

impl AggregateKind {
    /// The aggregate kind of a stream, from its prefix.
    pub fn of_stream(stream: &str) -> Option<AggregateKind> {
        let prefix = stream.split('-').next()?;
        Some(match prefix {
            "merchant" => AggregateKind::Merchant,
            "rider" => AggregateKind::Rider,
            "order" => AggregateKind::Order,
            "visit" => AggregateKind::Visit,
            "slot" => AggregateKind::Slot,
            "delivery" => AggregateKind::Delivery,
            _ => return None,
        })
    }

    /// The topic name without prefix: `merchants`, `riders`, `orders`,
    /// `visits` (visits and slots) or `deliveries`.
    pub fn topic(&self) -> &'static str {
        match self {
            AggregateKind::Merchant => "merchants",
            AggregateKind::Rider => "riders",
            AggregateKind::Order => "orders",
            AggregateKind::Visit | AggregateKind::Slot => "visits",
            AggregateKind::Delivery => "deliveries",
        }
    }
}

/// Any event of the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A merchant's event.
    Merchant(MerchantEvent),
    /// A rider's event.
    Rider(RiderEvent),
    /// An order's event.
    Order(OrderEvent),
    /// A visit's event.
    Visit(VisitEvent),
    /// A slot ledger's event.
    Slot(SlotEvent),
    /// A delivery's event.
    Delivery(DeliveryEvent),
}

macro_rules! each_family {
    ($self:expr, $e:ident => $body:expr) => {
        match $self {
            Event::Merchant($e) => $body,
            Event::Rider($e) => $body,
            Event::Order($e) => $body,
            Event::Visit($e) => $body,
            Event::Slot($e) => $body,
            Event::Delivery($e) => $body,
        }
    };
}

impl Event {
    /// The stable type name, e.g. `VisitBooked`.
    pub fn event_type(&self) -> &'static str {
        each_family!(self, e => e.event_type())
    }

    /// The current schema version of this event's type.
    pub fn schema_version(&self) -> u32 {
        each_family!(self, e => e.schema_version())
    }

    /// The JSON payload.
    pub fn encode(&self) -> String {
        each_family!(self, e => e.encode())
    }

    /// The aggregate kind this event belongs to.
    pub fn aggregate(&self) -> AggregateKind {
        match self {
            Event::Merchant(_) => AggregateKind::Merchant,
            Event::Rider(_) => AggregateKind::Rider,
            Event::Order(_) => AggregateKind::Order,
            Event::Visit(_) => AggregateKind::Visit,
            Event::Slot(_) => AggregateKind::Slot,
            Event::Delivery(_) => AggregateKind::Delivery,
        }
    }

    /// Reads a stored payload of any known type and version (upcasting older
    /// versions; refusing newer ones).
    pub fn decode(event_type: &str, version: u32, payload: &str) -> Result<Event, DecodeError> {
        if let Some(r) = decode_in::<MerchantEvent>(event_type, version, payload) {
            return r.map(Event::Merchant);
        }
        if let Some(r) = decode_in::<RiderEvent>(event_type, version, payload) {
            return r.map(Event::Rider);
        }
        if let Some(r) = decode_in::<OrderEvent>(event_type, version, payload) {
            return r.map(Event::Order);
        }
        if let Some(r) = decode_in::<VisitEvent>(event_type, version, payload) {
            return r.map(Event::Visit);
        }
        if let Some(r) = decode_in::<SlotEvent>(event_type, version, payload) {
            return r.map(Event::Slot);
        }
        if let Some(r) = decode_in::<DeliveryEvent>(event_type, version, payload) {
            return r.map(Event::Delivery);
        }
        Err(DecodeError::UnknownType(event_type.to_owned()))
    }

    /// Every (type name, current version) in the catalogue.
    pub fn all_types() -> impl Iterator<Item = (&'static str, u32)> {
        MerchantEvent::TYPES
            .iter()
            .chain(RiderEvent::TYPES)
            .chain(OrderEvent::TYPES)
            .chain(VisitEvent::TYPES)
            .chain(SlotEvent::TYPES)
            .chain(DeliveryEvent::TYPES)
            .copied()
    }
}

macro_rules! from_family {
    ($($family:ident => $variant:ident),*) => {
        $(impl From<$family> for Event {
            fn from(e: $family) -> Event {
                Event::$variant(e)
            }
        })*
    };
}
from_family!(MerchantEvent => Merchant, RiderEvent => Rider, OrderEvent => Order,
    VisitEvent => Visit, SlotEvent => Slot, DeliveryEvent => Delivery);
