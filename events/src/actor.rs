//! Who caused an event: the role of the token that issued the command (or the
//! hub itself) and its subject.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The role an actor acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A consumer using the app.
    Consumer,
    /// Store staff, scoped to one merchant.
    Staff,
    /// A rider.
    Rider,
    /// An operator of the platform.
    Admin,
    /// The payment provider's signed callback.
    PaymentProvider,
    /// The hub itself (dispatcher, timers).
    System,
}

impl Role {
    /// The stable lower-case name used in tokens and event metadata.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Consumer => "consumer",
            Role::Staff => "staff",
            Role::Rider => "rider",
            Role::Admin => "admin",
            Role::PaymentProvider => "payment_provider",
            Role::System => "system",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Consumer,
            Role::Staff,
            Role::Rider,
            Role::Admin,
            Role::PaymentProvider,
            Role::System,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor behind a command and the events it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The role the actor acted in.
    pub role: Role,
    /// The token subject (a consumer, staff, rider or admin id; "dispatcher" for the system).
    pub subject: String,
}

impl Actor {
    /// The hub acting on its own (timers, dispatcher).
    pub fn system(subject: &str) -> Self {
        Actor {
            role: Role::System,
            subject: subject.to_owned(),
        }
    }
}
