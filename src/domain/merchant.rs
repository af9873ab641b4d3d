//! The `Merchant` aggregate: registration, profile updates, pause/resume and
//! the staff who may act for the store.

use chrono::{DateTime, Utc};
use o2ohub_events::schedule::SLOT_GRID_MINUTES;
use o2ohub_events::{
    Event, MerchantEvent, MerchantId, MerchantPaused, MerchantProfile, MerchantRegistered,
    MerchantResumed, MerchantUpdated, Service, StaffAdded, StaffId,
};

use super::{Aggregate, DomainError};

/// What is known of a registered merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantState {
    /// Its id.
    pub id: MerchantId,
    /// Its current profile.
    pub profile: MerchantProfile,
    /// Staff who may act for it.
    pub staff: Vec<StaffId>,
}

impl MerchantState {
    /// The service with this id.
    pub fn service(&self, service_id: &str) -> Option<&Service> {
        self.profile
            .services
            .iter()
            .find(|s| s.service_id == service_id)
    }
}

/// A merchant's life: unregistered, active or paused.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Merchant {
    /// No such merchant yet.
    #[default]
    Unregistered,
    /// Taking bookings and orders.
    Active(MerchantState),
    /// Temporarily not taking bookings or orders.
    Paused(MerchantState),
}

/// Commands an operator gives about a merchant.
#[derive(Debug, Clone)]
pub enum MerchantCommand {
    /// Register a new merchant.
    Register {
        /// The id to register under.
        merchant_id: MerchantId,
        /// Its profile.
        profile: MerchantProfile,
    },
    /// Replace the profile.
    Update {
        /// The new profile.
        profile: MerchantProfile,
    },
    /// Stop taking bookings and orders.
    Pause {
        /// Why.
        reason: String,
    },
    /// Take bookings and orders again.
    Resume,
    /// Let a staff member act for the store.
    AddStaff {
        /// The staff member.
        staff_id: StaffId,
    },
}

/// Checks a profile beyond what its value types already guarantee.
pub fn validate_profile(p: &MerchantProfile) -> Result<(), DomainError> {
    if p.name.trim().is_empty() || p.name.len() > 200 {
        return Err(DomainError::invalid(
            "name",
            "a name has 1 to 200 characters",
        ));
    }
    if p.rating_tenths > 50 {
        return Err(DomainError::invalid(
            "rating_tenths",
            "a rating is 0 to 50 tenths of a star",
        ));
    }
    p.opening_hours.validate()?;
    p.service_area.validate()?;
    for (i, s) in p.services.iter().enumerate() {
        let field = |f: &str| format!("services[{i}].{f}");
        if s.service_id.is_empty()
            || s.service_id.len() > 64
            || !s
                .service_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(DomainError::invalid(
                &field("service_id"),
                "a service id is 1 to 64 letters, digits or _",
            ));
        }
        if p.services[..i].iter().any(|o| o.service_id == s.service_id) {
            return Err(DomainError::invalid(
                &field("service_id"),
                "service ids are unique within a merchant",
            ));
        }
        if s.duration_minutes == 0
            || !s.duration_minutes.is_multiple_of(SLOT_GRID_MINUTES)
            || s.duration_minutes > 24 * 60
        {
            return Err(DomainError::invalid(
                &field("duration_minutes"),
                "a duration is a positive multiple of 15 minutes, at most a day",
            ));
        }
        if s.slot_capacity == 0 || s.slot_capacity > 10_000 {
            return Err(DomainError::invalid(
                &field("slot_capacity"),
                "a slot holds 1 to 10000 consumers",
            ));
        }
    }
    Ok(())
}

/// Decides a merchant command.
pub fn decide(
    state: &Merchant,
    command: &MerchantCommand,
    _now: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, DomainError> {
    use Merchant::*;
    use MerchantCommand as C;
    let illegal = |c| DomainError::illegal(Merchant::NAME, state.state_name(), c);
    match (state, command) {
        (
            Unregistered,
            C::Register {
                merchant_id,
                profile,
            },
        ) => {
            validate_profile(profile)?;
            Ok(vec![MerchantEvent::Registered(MerchantRegistered {
                merchant_id: *merchant_id,
                profile: profile.clone(),
            })])
        }
        (_, C::Register { .. }) => Err(DomainError::AlreadyExists {
            aggregate: Merchant::NAME,
        }),
        (Unregistered, _) => Err(DomainError::NotFound {
            aggregate: Merchant::NAME,
        }),
        (Active(_) | Paused(_), C::Update { profile }) => {
            validate_profile(profile)?;
            Ok(vec![MerchantEvent::Updated(MerchantUpdated {
                profile: profile.clone(),
            })])
        }
        (Active(_), C::Pause { reason }) => Ok(vec![MerchantEvent::Paused(MerchantPaused {
            reason: reason.clone(),
        })]),
        (Paused(_), C::Pause { .. }) => Err(illegal("pause")),
        (Paused(_), C::Resume) => Ok(vec![MerchantEvent::Resumed(MerchantResumed {})]),
        (Active(_), C::Resume) => Err(illegal("resume")),
        (Active(m) | Paused(m), C::AddStaff { staff_id }) => {
            if m.staff.contains(staff_id) {
                Ok(vec![])
            } else {
                Ok(vec![MerchantEvent::StaffAdded(StaffAdded {
                    staff_id: *staff_id,
                })])
            }
        }
    }
}

/// Folds a merchant event.
pub fn evolve(state: Merchant, event: &MerchantEvent) -> Merchant {
    use Merchant::*;
    match (state, event) {
        (Unregistered, MerchantEvent::Registered(r)) => Active(MerchantState {
            id: r.merchant_id,
            profile: r.profile.clone(),
            staff: vec![],
        }),
        (Active(mut m), MerchantEvent::Updated(u)) => {
            m.profile = u.profile.clone();
            Active(m)
        }
        (Paused(mut m), MerchantEvent::Updated(u)) => {
            m.profile = u.profile.clone();
            Paused(m)
        }
        (Active(m), MerchantEvent::Paused(_)) => Paused(m),
        (Paused(m), MerchantEvent::Resumed(_)) => Active(m),
        (Active(mut m), MerchantEvent::StaffAdded(s)) => {
            m.staff.push(s.staff_id);
            Active(m)
        }
        (Paused(mut m), MerchantEvent::StaffAdded(s)) => {
            m.staff.push(s.staff_id);
            Paused(m)
        }
        // Events are facts already checked by `decide`; one that does not fit
        // the state leaves it unchanged rather than inventing a transition.
        (state, _) => state,
    }
}

impl Aggregate for Merchant {
    type Event = MerchantEvent;
    type Command = MerchantCommand;
    const NAME: &'static str = "merchant";
    const SHARED: bool = true;

    fn decide(
        &self,
        command: &MerchantCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<MerchantEvent>, DomainError> {
        decide(self, command, now)
    }

    fn evolve(self, event: &MerchantEvent) -> Self {
        evolve(self, event)
    }

    fn select(event: Event) -> Option<MerchantEvent> {
        match event {
            Event::Merchant(e) => Some(e),
            _ => None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Merchant::Unregistered => "unregistered",
            Merchant::Active(_) => "active",
            Merchant::Paused(_) => "paused",
        }
    }
}

impl Merchant {
    /// The merchant's state if registered.
    pub fn registered(&self) -> Option<&MerchantState> {
        match self {
            Merchant::Unregistered => None,
            Merchant::Active(m) | Merchant::Paused(m) => Some(m),
        }
    }
}
