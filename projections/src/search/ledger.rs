//! Seats held per slot of one merchant, folded from the slot ledger streams
//! (`slot-<merchant>-<service>-<epoch seconds>`).

use o2ohub_events::MerchantId;
use std::collections::BTreeMap;

/// Seats held in each (slot start, service) of one merchant. Service ids are
/// interned, so a slot costs a map entry, not a string.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ledger {
    /// Service ids seen, in order of first sight; a key is an index here.
    services: Vec<Box<str>>,
    /// Seats held, by (slot start in epoch seconds, service key): ordered by
    /// time first, so "seats booked between A and B" is one range.
    held: BTreeMap<(i64, u32), u32>,
}

impl Ledger {
    /// The key of `service_id`, interning it on first sight.
    pub fn key(&mut self, service_id: &str) -> u32 {
        match self.services.iter().position(|s| &**s == service_id) {
            Some(i) => i as u32,
            None => {
                self.services.push(service_id.into());
                (self.services.len() - 1) as u32
            }
        }
    }

    /// A seat was taken.
    pub fn take(&mut self, key: u32, start: i64) {
        *self.held.entry((start, key)).or_insert(0) += 1;
    }

    /// A seat was given back. Saturates: a release without its take (a log
    /// read from the middle) must not wrap.
    pub fn release(&mut self, key: u32, start: i64) {
        if let Some(n) = self.held.get_mut(&(start, key)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&(start, key));
            }
        }
    }

    /// Seats held in one slot.
    pub fn held(&self, key: u32, start: i64) -> u32 {
        self.held.get(&(start, key)).copied().unwrap_or(0)
    }

    /// Whether no seat is held in any slot.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Seats held in all slots starting in [from, to] (epoch seconds).
    pub fn held_between(&self, from: i64, to: i64) -> u32 {
        if from > to {
            return 0;
        }
        self.held
            .range((from, 0)..=(to, u32::MAX))
            .map(|(_, n)| *n)
            .fold(0u32, u32::saturating_add)
    }

    /// Every held slot as (service id, start, seats), for snapshots.
    pub fn entries(&self) -> impl Iterator<Item = (&str, i64, u32)> + '_ {
        self.held
            .iter()
            .map(|(&(start, key), &n)| (&*self.services[key as usize], start, n))
    }
}

/// Reads a slot ledger stream name: `slot-<merchant>-<service>-<epoch>`.
/// The merchant id is a hyphenated UUID and the service id holds no `-`, so
/// the name is split from the right.
pub(crate) fn parse_slot_stream(stream: &str) -> Option<(MerchantId, &str, i64)> {
    let mut parts = stream.rsplitn(3, '-');
    let epoch = parts.next()?.parse::<i64>().ok()?;
    let service = parts.next()?;
    let merchant = MerchantId::parse(parts.next()?.strip_prefix("slot-")?).ok()?;
    if service.is_empty() {
        return None;
    }
    Some((merchant, service, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_streams_split_from_the_right() {
        let m = MerchantId(uuid::Uuid::from_u128(7));
        let stream = format!("slot-{m}-hair_cut-1795600800");
        let (id, service, epoch) = parse_slot_stream(&stream).unwrap();
        assert_eq!((id, service, epoch), (m, "hair_cut", 1_795_600_800));
        assert!(parse_slot_stream("slot-nope-x-1").is_none());
        assert!(parse_slot_stream(&format!("slot-{m}--1")).is_none());
        assert!(parse_slot_stream(&format!("visit-{m}-x-1")).is_none());
    }

    #[test]
    fn releases_saturate_and_ranges_sum() {
        let mut l = Ledger::default();
        let k = l.key("cut");
        l.release(k, 900);
        l.take(k, 900);
        l.take(k, 900);
        let wash = l.key("wash");
        l.take(wash, 1800);
        assert_eq!(l.held(k, 900), 2);
        assert_eq!(l.held_between(0, 1800), 3);
        assert_eq!(l.held_between(901, 1799), 0);
        l.release(k, 900);
        l.release(k, 900);
        l.release(k, 900);
        assert_eq!(l.held(k, 900), 0);
    }
}
