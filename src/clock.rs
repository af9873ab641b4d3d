//! The hub's notion of "now": business time for commands, slots, offers and
//! their expiry.
//!
//! A served hub runs on the wall clock. `o2ohub demo` plays a city day in
//! accelerated time through the real API, so the process installs an
//! accelerated clock once, before the hub starts: business time then starts at
//! a chosen instant and runs `speed` times faster than the wall clock. It is
//! process-wide on purpose — every handler, the dispatcher and the demo's
//! driver must agree on one time — and it can be installed only once, so a
//! running hub never sees time jump.
//!
//! The store's `recorded_at` stays wall-clock time: it says when the hub
//! wrote an event, not when the business thing happened (`occurred_at`).

use chrono::{DateTime, Utc};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Business time running `speed` times faster than the wall clock from a
/// chosen start.
#[derive(Debug, Clone, Copy)]
pub struct Accelerated {
    /// Business time at `started`.
    pub origin: DateTime<Utc>,
    /// The wall-clock instant that maps to `origin`.
    pub started: Instant,
    /// Business seconds per wall-clock second.
    pub speed: f64,
}

impl Accelerated {
    /// Business time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(self.started.elapsed())
    }

    /// Business time after `wall` of wall-clock time.
    pub fn at(&self, wall: Duration) -> DateTime<Utc> {
        let micros = (wall.as_secs_f64() * self.speed * 1e6) as i64;
        self.origin + chrono::Duration::microseconds(micros)
    }

    /// Wall-clock time until business time `when` (zero if it has passed).
    pub fn until(&self, when: DateTime<Utc>) -> Duration {
        let ahead = (when - self.now()).num_microseconds().unwrap_or(i64::MAX);
        if ahead <= 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(ahead as f64 / 1e6 / self.speed)
        }
    }
}

static CLOCK: OnceLock<Accelerated> = OnceLock::new();

/// Business time now: the wall clock, or the accelerated clock if one was
/// installed.
pub fn now() -> DateTime<Utc> {
    match CLOCK.get() {
        Some(c) => c.now(),
        None => Utc::now(),
    }
}

/// The business-time speed-up (1 on the wall clock).
pub fn speed() -> f64 {
    CLOCK.get().map_or(1.0, |c| c.speed)
}

/// Wall-clock time until business time `when`.
pub fn until(when: DateTime<Utc>) -> Duration {
    match CLOCK.get() {
        Some(c) => c.until(when),
        None => (when - Utc::now()).to_std().unwrap_or(Duration::ZERO),
    }
}

/// Installs an accelerated clock for this process. Fails if a clock was
/// already installed (time never jumps under a running hub).
pub fn accelerate(origin: DateTime<Utc>, speed: f64) -> Result<Accelerated, Accelerated> {
    let clock = Accelerated {
        origin,
        started: Instant::now(),
        speed,
    };
    CLOCK.set(clock).map(|()| clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerated_time_runs_speed_times_faster() {
        let origin = DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = Accelerated {
            origin,
            started: Instant::now(),
            speed: 60.0,
        };
        assert_eq!(
            c.at(Duration::from_secs(2)),
            origin + chrono::Duration::minutes(2)
        );
        let later = c.now() + chrono::Duration::minutes(60);
        let wall = c.until(later);
        assert!(wall <= Duration::from_secs(60) && wall > Duration::from_secs(59));
        assert_eq!(c.until(origin), Duration::ZERO);
    }
}
