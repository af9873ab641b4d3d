//! Identifiers of aggregates and people. Each is a UUID newtype so an order id
//! can never be passed where a visit id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form.
            pub fn parse(text: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(text).map(Self)
            }

            /// The event stream of this aggregate, e.g. `order-<uuid>`.
            pub fn stream(&self) -> String {
                format!(concat!($prefix, "-{}"), self.0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A merchant (store) registered by an operator.
    MerchantId,
    "merchant"
);
id_type!(
    /// A rider who delivers orders.
    RiderId,
    "rider"
);
id_type!(
    /// A delivery order placed by a consumer.
    OrderId,
    "order"
);
id_type!(
    /// A booked visit to a store (a service slot).
    VisitId,
    "visit"
);
id_type!(
    /// The dispatch of one order to riders.
    DeliveryId,
    "delivery"
);
id_type!(
    /// A consumer using the app; the subject of consumer tokens.
    ConsumerId,
    "consumer"
);
id_type!(
    /// A member of store staff; the subject of staff tokens.
    StaffId,
    "staff"
);
id_type!(
    /// One offer of a delivery to one rider.
    OfferId,
    "offer"
);
