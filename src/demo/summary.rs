//! The summary `o2ohub demo` prints: what the day looked like (from the
//! log's figures), how fast the hub wrote it, what went wrong on the wire,
//! the closing checks, and where the data lives.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

use super::figures::Figures;
use super::verify::Rebuilt;

/// The whole outcome of a demo day.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The seed the city and the day were drawn from.
    pub seed: u64,
    /// Merchants, riders, consumers.
    pub city: (usize, usize, usize),
    /// Requests the day planned (visits and deliveries).
    pub demands: usize,
    /// Requests no merchant serving the consumer could take.
    pub no_merchant: u64,
    /// Visits wanted that found no free slot inside the day.
    pub no_slot: u64,
    /// The day's business window, local time, as text.
    pub window: String,
    /// Wall-clock seconds the day took to play.
    pub wall_seconds: f64,
    /// Business seconds per wall second.
    pub speed: f64,
    /// The districts' names and centres (for the report's maps).
    pub districts: Vec<(&'static str, o2ohub_events::LatLng)>,
    /// Counted from the log.
    pub figures: Figures,
    /// The store's head position at the end.
    pub store_events: u64,
    /// Requests the driver sent.
    pub requests: u64,
    /// Of which failed unexpectedly.
    pub failed: u64,
    /// Failures by kind, most frequent first.
    pub failures: Vec<(String, u64)>,
    /// Read models rebuilt from the log against the live ones.
    pub rebuilt: Vec<Rebuilt>,
    /// The data directory.
    pub data_dir: PathBuf,
}

impl Summary {
    /// Events written per wall-clock second of the day.
    pub fn events_per_second(&self) -> f64 {
        self.store_events as f64 / self.wall_seconds.max(1e-9)
    }

    /// The invariants the day must keep; each with whether it held.
    pub fn checks(&self) -> Vec<(String, bool)> {
        let f = &self.figures;
        let mut checks = vec![
            (
                format!(
                    "every booking ended redeemed, cancelled or no-show ({} unsettled)",
                    f.visits.unsettled
                ),
                f.visits.unsettled == 0,
            ),
            (
                format!(
                    "every delivered order was picked up first ({} not)",
                    f.orders.delivered_without_pickup
                ),
                f.orders.delivered_without_pickup == 0,
            ),
            (
                format!(
                    "events counted from the log ({}) = events in the store ({})",
                    f.events, self.store_events
                ),
                f.events == self.store_events,
            ),
        ];
        for r in &self.rebuilt {
            checks.push((
                format!(
                    "{} rebuilt from the log equals the live read model (at {})",
                    r.name, r.position
                ),
                r.equal,
            ));
        }
        checks
    }

    /// Whether every check held.
    pub fn all_checks_hold(&self) -> bool {
        self.checks().iter().all(|(_, ok)| *ok)
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn minutes(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.1} min"))
}

impl fmt::Display for Summary {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f = &self.figures;
        let (v, o, r) = (&f.visits, &f.orders, &f.riders);
        writeln!(
            out,
            "o2ohub demo · seed {} · {} merchants, {} riders, {} consumers · {}",
            self.seed, self.city.0, self.city.1, self.city.2, self.window
        )?;
        writeln!(
            out,
            "  played {} requests of demand in {:.1} s wall (×{:.0}); {} found no merchant, {} no free slot",
            self.demands, self.wall_seconds, self.speed, self.no_merchant, self.no_slot
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "  visits      {} booked · {} redeemed ({} completed) · {} cancelled · {} no-shows",
            v.booked, v.redeemed, v.completed, v.cancelled, v.no_shows
        )?;
        writeln!(
            out,
            "  orders      {} placed · {} paid · {} accepted · {} cancelled ({} refunded) · {} ready",
            o.placed, o.paid, o.accepted, o.cancelled, o.refunded, o.ready
        )?;
        writeln!(
            out,
            "  offers      {} made · {} accepted · {} declined · {} expired · {} released at shift end",
            o.offers, o.offers_accepted, o.offers_declined, o.offers_expired, o.released
        )?;
        writeln!(
            out,
            "  deliveries  {} picked up · {} delivered · {} failed · {} still open",
            o.picked_up, o.delivered, o.failed, o.open
        )?;
        writeln!(
            out,
            "              on time {} · mean {} · p90 {} (placement to hand-over)",
            pct(f.on_time_rate()),
            minutes(f.mean_delivery_minutes()),
            minutes(f.p90_delivery_minutes())
        )?;
        if o.delivered > 0 {
            let p = f.phases;
            writeln!(
                out,
                "              mean phases: {:.1} min to ready · {:.1} to a rider · {:.1} to pickup · {:.1} to the door",
                p[0], p[1], p[2], p[3]
            )?;
        }
        writeln!(
            out,
            "  riders      {} worked · {:.1} h on shift · utilisation {} · {:.1} km ridden",
            r.worked,
            r.shift_hours,
            pct(r.utilisation()),
            r.distance_km
        )?;
        writeln!(
            out,
            "  hub         {} events written · {:.0} events/s · {} requests, {} failed",
            self.store_events,
            self.events_per_second(),
            self.requests,
            self.failed
        )?;
        for (kind, n) in self.failures.iter().take(5) {
            writeln!(out, "              {n:>5} × {kind}")?;
        }
        if o.ready > 0 && o.offers == 0 {
            writeln!(
                out,
                "              (no offers were made: this hub has no dispatcher running)"
            )?;
        }
        writeln!(out)?;
        for (check, ok) in self.checks() {
            writeln!(out, "  {} {check}", if ok { "✓" } else { "✗" })?;
        }
        writeln!(out)?;
        write!(out, "  data        {}", self.data_dir.display())
    }
}
