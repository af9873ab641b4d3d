//! The merchant search read model: "merchants of category C that serve point
//! P, open at time T, with a free seat in a slot starting in [from, to],
//! nearest first" — and each merchant's free slots. It owns the merchant
//! profiles (location, category, hours, services, service area, rating,
//! paused) and the seats held per (service, slot start), folded from the
//! merchant streams and the slot ledgers.
//!
//! # The index
//!
//! Each merchant's service area (a radius or a polygon) is covered by H3
//! cells; each (category, cell) holds the merchants whose area may touch
//! that cell, ordered by the distance from the cell's centre to the
//! merchant. A query looks up the one cell holding P and walks that list
//! nearest-first: a merchant `key` metres from the centre is at least
//! `key - |P, centre|` from P (triangle inequality), so once that bound
//! passes the K-th best distance found, no later merchant can enter the
//! top K and the walk stops. A query never looks beyond the merchants that
//! may serve P, and among those it pays for the nearest few, not for the
//! whole radius. Each entry also carries the merchant's location as an
//! `f32` unit vector: a chord on it is a lower bound of the distance from P
//! that costs no trigonometry and no read of the merchant, so in a dense
//! cell the many candidates that cannot beat the K-th best are passed over
//! on the entry alone. Of those left, the ones closed (or paused) in the
//! query's hour of the UTC week are passed over on a bitset per hour
//! (`open_hours`), again without reading the merchant; an hour in which a
//! merchant opens or closes sends it to its intervals. The rest are tested
//! exactly (haversine radius or point-in-polygon, opening hours, pause,
//! free seats), so covers only need to be supersets — first on the
//! merchant's 32-byte card (`card`), and on its profile only for what the
//! card cannot settle (a polygon, an hour it opens or closes in, a booking
//! window, seats held).
//!
//! # Resolution 7
//!
//! [`SEARCH_RESOLUTION`] is 7: cells of about 5.2 km², 1.4 km edge.
//!
//! - *Memory and folding* decide it. A merchant costs one entry (20 bytes:
//!   key, slot, location) per cell its area touches: a 6 km disk touches ~25 cells at resolution 7,
//!   ~125 at 8 and ~800 at 9. On the 100k-merchant benchmark city (radii
//!   1.5–8 km, a tenth polygons) that is 2.4M entries at 7 against 12.3M at
//!   8; the fold runs 3.5–5 times faster (90–130k against 26k registrations/s)
//!   and the index with its profiles took ~100 MB of RSS against ~210 MB with
//!   8-byte entries (~140 MB at 7 now). Resolution 9 would not fit 512 MB
//!   with the profiles.
//! - *Query*: the walk reads every merchant nearer to the cell's centre
//!   than the K-th result plus |P, centre| (≤ ~1.5 km here), so a coarser
//!   cell reads more candidates: p50 35 µs and p99 0.24 ms at 7 against 29 µs
//!   and 0.15 ms at 8 for "nearest 20 within 3 km" in that city, before the
//!   entries carried locations (p50 32 µs, p99 0.12 ms at 7 since) — far
//!   inside the 1 ms budget, so the cheaper fold wins. Resolution 6 (3.7 km
//!   edge) would read thousands of candidates per query in the dense centre.
//!
//! `o2ohub bench geo` measures the choice (figures in `docs/benchmarks.md`).
//!
//! # Ranking
//!
//! Distance from P to the merchant's location (haversine), then rating
//! (higher first), then load (fewer seats booked in the query's window, or
//! in the [`LOAD_HORIZON_HOURS`] after T when there is none), then merchant
//! id: a total order, so equal inputs give equal lists on every replica.

pub(crate) mod area;
mod bucket;
mod card;
mod ledger;
mod open_hours;
mod query;
mod snapshot;

pub use query::{SearchQuery, SlotWindow, MAX_QUERY_DISTANCE_M, MAX_RESULTS, MAX_WINDOW_DAYS};

use chrono::DateTime;
use h3o::{CellIndex, Resolution};
use o2ohub_events::schedule::{HourOpen, OpeningMask};
use o2ohub_events::{
    Category, Envelope, Event, MerchantEvent, MerchantId, MerchantProfile, Service, SlotEvent,
    SlotStart,
};
use std::cmp::Ordering;

use crate::hashing::Map;
use crate::Projection;
use area::{Cells, Shape, SLACK_M};
use bucket::{Bucket, Entry, UnitVector};
use card::{Card, Reach};
use ledger::{parse_slot_stream, Ledger};
use open_hours::OpenByHour;

/// Starts loading `value`'s cache lines (a hint; does nothing where the
/// target has no prefetch instruction).
fn prefetch<T>(value: &T) {
    prefetch_bytes((value as *const T).cast(), std::mem::size_of::<T>());
}

/// Starts loading the cache lines of `len` bytes from `start`.
fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for offset in (0..len).step_by(64) {
            // SAFETY: a prefetch is a hint that never faults nor reads into
            // the program; callers pass the bytes of a live value anyway. The
            // target feature it needs (SSE) is part of every x86_64 target.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

/// Entries of a bucket the walk rules on before reading any of their
/// merchants (see [`MerchantSearch::walk`]).
const WALK_BLOCK: usize = 64;

/// The H3 resolution service areas are covered at (see the module doc).
pub const SEARCH_RESOLUTION: Resolution = Resolution::Seven;

/// Without a booking window, a merchant's load is the seats booked in slots
/// starting in this many hours after the query's time.
pub const LOAD_HORIZON_HOURS: i64 = 24;

/// Services longer than a week are never offered as slots: no opening hours
/// short of "always" could cover them, and checking would cost a week of
/// grid steps per slot.
pub const MAX_SERVICE_MINUTES: u32 = 7 * 24 * 60;

/// One merchant in a search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Great-circle distance from the query point to the store, in metres.
    pub distance_m: f64,
    /// Rating in tenths of a star; ranks equally distant merchants.
    pub rating_tenths: u8,
    /// Seats booked in the query's window (or the next day); ranks equally
    /// distant, equally rated merchants, the less busy first.
    pub load: u32,
}

impl SearchHit {
    /// The result order: nearer, then better rated, then less loaded, then
    /// by id.
    pub fn rank(&self, other: &SearchHit) -> Ordering {
        rank_before_id(
            (self.distance_m, self.rating_tenths, self.load),
            (other.distance_m, other.rating_tenths, other.load),
        )
        .then(self.merchant_id.cmp(&other.merchant_id))
    }
}

/// [`SearchHit::rank`] up to the id: nearer, then better rated, then less
/// loaded.
fn rank_before_id(a: (f64, u8, u32), b: (f64, u8, u32)) -> Ordering {
    a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
}

/// A qualifying merchant during a walk: a [`SearchHit`] that names its
/// merchant by position, so the id (in the merchant's own record, a cache
/// miss away) is read only for the final hits and for full ties.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance_m: f64,
    rating_tenths: u8,
    load: u32,
    /// Position in `MerchantSearch::merchants`.
    pos: u32,
}

/// A merchant as the search knows it.
#[derive(Debug, Clone, Copy)]
pub struct MerchantListing<'a> {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Its current profile.
    pub profile: &'a MerchantProfile,
    /// Whether it has stopped taking bookings and orders.
    pub paused: bool,
    /// False when its service area is degenerate (self-intersecting, empty,
    /// out of bounds) and so it serves no point: operators should fix it.
    pub serves_somewhere: bool,
}

/// Size of the index, for operators and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// (category, cell) buckets.
    pub buckets: usize,
    /// (category, cell, merchant) entries across all buckets.
    pub entries: usize,
    /// Entries of the largest bucket.
    pub largest_bucket: usize,
}

/// A registered merchant's profile, prepared for queries.
#[derive(Debug, Clone)]
struct Listed {
    /// The profile as last registered or updated.
    profile: MerchantProfile,
    /// The service area, ready for point tests.
    shape: Shape,
    /// The opening hours per hour of the week, read before the intervals.
    mask: OpeningMask,
    /// The ledger key of each of `profile.services`, in the same order.
    service_keys: Vec<u32>,
}

/// Everything known about one merchant id.
#[derive(Debug, Clone)]
struct Merchant {
    /// Its id.
    id: MerchantId,
    /// `None` until a registration (or update) is seen: seats and pauses
    /// may be folded for a merchant whose profile is not known yet.
    listed: Option<Listed>,
    /// Paused merchants stay indexed; queries skip them.
    paused: bool,
    /// Seats held per slot.
    ledger: Ledger,
}

/// The merchant search read model (see the module doc).
#[derive(Debug, Clone)]
pub struct MerchantSearch {
    /// Every merchant id seen; index entries refer to positions here.
    merchants: Vec<Merchant>,
    /// Per position, what a query tests first (see `card`).
    cards: Vec<Card>,
    /// Position of each id in `merchants`.
    by_id: Map<MerchantId, u32>,
    /// Per category (in `Category::ALL` order): cell → merchants whose area
    /// may touch it.
    index: [Map<CellIndex, Bucket>; Category::ALL.len()],
    /// Geometry of the cells in use.
    cells: Cells,
    /// Per hour of the UTC week, which merchants are open (and not paused).
    open: OpenByHour,
    /// Merchants with a profile.
    listed: usize,
}

impl Default for MerchantSearch {
    fn default() -> Self {
        Self::new()
    }
}

/// Position of a category in the index (declaration order, as `Category::ALL`).
fn slot_of(category: Category) -> usize {
    category as usize
}

/// A service that can be booked at all.
fn bookable(service: &Service) -> bool {
    service.slot_capacity > 0 && (1..=MAX_SERVICE_MINUTES).contains(&service.duration_minutes)
}

impl MerchantSearch {
    /// An empty index at [`SEARCH_RESOLUTION`].
    pub fn new() -> Self {
        Self::with_resolution(SEARCH_RESOLUTION)
    }

    /// An empty index covering areas at another resolution (for measuring
    /// the choice; answers are the same at every resolution).
    pub fn with_resolution(resolution: Resolution) -> Self {
        MerchantSearch {
            merchants: Vec::new(),
            cards: Vec::new(),
            by_id: Map::default(),
            index: std::array::from_fn(|_| Map::default()),
            cells: Cells::new(resolution),
            open: OpenByHour::default(),
            listed: 0,
        }
    }

    /// The resolution areas are covered at.
    pub fn resolution(&self) -> Resolution {
        self.cells.resolution()
    }

    /// Merchants with a known profile.
    pub fn len(&self) -> usize {
        self.listed
    }

    /// Whether no merchant is known.
    pub fn is_empty(&self) -> bool {
        self.listed == 0
    }

    /// A merchant's profile and state.
    pub fn merchant(&self, id: MerchantId) -> Option<MerchantListing<'_>> {
        Self::listing(&self.merchants[*self.by_id.get(&id)? as usize])
    }

    fn listing(m: &Merchant) -> Option<MerchantListing<'_>> {
        let listed = m.listed.as_ref()?;
        Some(MerchantListing {
            merchant_id: m.id,
            profile: &listed.profile,
            paused: m.paused,
            serves_somewhere: !matches!(listed.shape, Shape::Nothing),
        })
    }

    /// Size of the index.
    pub fn stats(&self) -> IndexStats {
        let buckets = self.index.iter().flat_map(|m| m.values());
        IndexStats {
            buckets: self.index.iter().map(|m| m.len()).sum(),
            entries: buckets.clone().map(Bucket::len).sum(),
            largest_bucket: buckets.map(Bucket::len).max().unwrap_or(0),
        }
    }

    /// The top `k` merchants for `query`, best first (see the module doc).
    pub fn search(&self, query: &SearchQuery) -> Vec<SearchHit> {
        self.walk(query).hits.iter().map(|c| self.hit(c)).collect()
    }

    /// The hit a candidate makes, with its merchant's id.
    fn hit(&self, c: &Candidate) -> SearchHit {
        SearchHit {
            merchant_id: self.merchants[c.pos as usize].id,
            distance_m: c.distance_m,
            rating_tenths: c.rating_tenths,
            load: c.load,
        }
    }

    /// [`MerchantSearch::search`] with each hit's listing, read from the
    /// walk's own positions (an answer showing names and places needs no
    /// second lookup by id).
    pub fn search_listed(&self, query: &SearchQuery) -> Vec<(SearchHit, MerchantListing<'_>)> {
        let hits = self.walk(query).hits;
        // Each hit's name is a heap string of its own, which the answer reads
        // next: a cache miss apiece, overlapped by starting every fetch first.
        for c in &hits {
            if let Some(listed) = &self.merchants[c.pos as usize].listed {
                let name = &listed.profile.name;
                prefetch_bytes(name.as_ptr(), name.len());
            }
        }
        hits.iter()
            .filter_map(|c| Some((self.hit(c), Self::listing(&self.merchants[c.pos as usize])?)))
            .collect()
    }

    /// The index walk of a query (see the module doc).
    fn walk(&self, query: &SearchQuery) -> Top {
        let mut top = Top::new(query);
        let point = query.point();
        let Some(cell) = self.cells.cell_of(&point) else {
            return top;
        };
        let (Some(bucket), Some(geom)) = (
            self.index[slot_of(query.category())].get(&cell),
            self.cells.get(cell),
        ) else {
            return top;
        };
        // A merchant `key` from the centre is at least `key - slack` from P.
        let slack = point.distance_m(&geom.center) + SLACK_M;
        let from = UnitVector::of(query.unit());
        let hour = query.at_week().hour();
        let mut block = Vec::with_capacity(WALK_BLOCK);
        for entries in bucket.pending().chunks(WALK_BLOCK) {
            self.consider(entries, &from, hour, query, &mut top, &mut block);
        }
        for entries in bucket.sorted().chunks(WALK_BLOCK) {
            if f64::from(entries[0].key_dm) / 10.0 - slack > top.bound() {
                break;
            }
            self.consider(entries, &from, hour, query, &mut top, &mut block);
        }
        top
    }

    /// How one merchant fares on `query`, K aside: its hit if it is of the
    /// category, serves the point, is open, not paused, within the distance
    /// limit and (with a window) has a free seat. For "does this merchant
    /// serve me" checks, and to compare the index with other engines.
    pub fn matches(&self, merchant: MerchantId, query: &SearchQuery) -> Option<SearchHit> {
        let pos = *self.by_id.get(&merchant)?;
        let bound = query.max_distance_m().unwrap_or(f64::INFINITY);
        let c = self.evaluate(pos, query, bound, false)?;
        Some(self.hit(&c))
    }

    /// The same answer as [`MerchantSearch::search`], by testing every
    /// merchant of the city: the reference the index is checked against.
    #[doc(hidden)]
    pub fn search_by_scan(&self, query: &SearchQuery) -> Vec<SearchHit> {
        let bound = query.max_distance_m().unwrap_or(f64::INFINITY);
        let mut hits: Vec<SearchHit> = (0..self.merchants.len() as u32)
            .filter_map(|pos| self.evaluate(pos, query, bound, false))
            .map(|c| self.hit(&c))
            .collect();
        hits.sort_by(SearchHit::rank);
        hits.truncate(query.k());
        hits
    }

    /// Slots of `service_id` starting in `window` that still have a free
    /// seat, with how many: slots on the 15-minute grid whose whole duration
    /// lies in the merchant's opening hours. Empty for an unknown or paused
    /// merchant or an unknown service.
    pub fn free_slots(
        &self,
        merchant: MerchantId,
        service_id: &str,
        window: &SlotWindow,
    ) -> Vec<(SlotStart, u32)> {
        let Some(m) = self
            .by_id
            .get(&merchant)
            .map(|&i| &self.merchants[i as usize])
        else {
            return Vec::new();
        };
        let Some(listed) = m.listed.as_ref().filter(|_| !m.paused) else {
            return Vec::new();
        };
        let Some((service, &key)) = listed
            .profile
            .services
            .iter()
            .zip(&listed.service_keys)
            .find(|(s, _)| s.service_id == service_id)
        else {
            return Vec::new();
        };
        if !bookable(service) {
            return Vec::new();
        }
        let hours = &listed.profile.opening_hours;
        window
            .starts()
            .filter_map(|start| {
                let free = service
                    .slot_capacity
                    .saturating_sub(m.ledger.held(key, start.epoch_seconds()));
                (free > 0 && hours.covers(start.at(), service.duration_minutes))
                    .then_some((start, free))
            })
            .collect()
    }

    /// Offers the qualifying merchants of `entries` to `top`, nearest
    /// first; `hour` is the query's hour of the UTC week, `block` a buffer.
    ///
    /// Candidates too far to enter the top K, or closed (or paused) in the
    /// hour, are ruled out on the entry and the hour's bitset alone. The
    /// rest are read in order of their distance floor, so the first few
    /// read set a tight bound and most of the others are never read: each
    /// read is a cache miss on the merchant's card (and, for what the card
    /// cannot settle, on its profile).
    fn consider(
        &self,
        entries: &[Entry],
        from: &UnitVector,
        hour: usize,
        query: &SearchQuery,
        top: &mut Top,
        block: &mut Vec<(f64, u32, HourOpen)>,
    ) {
        block.clear();
        let bound = top.bound();
        for entry in entries {
            let floor = entry.at.distance_floor_m(from);
            if floor > bound {
                continue;
            }
            match self.open.at(hour, entry.merchant) {
                HourOpen::Closed => {}
                open => block.push((floor, entry.merchant, open)),
            }
        }
        block.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // Ask for the candidates' cards at once, so their cache misses
        // overlap instead of coming one after another as they are read.
        for &(_, merchant, _) in block.iter() {
            prefetch(&self.cards[merchant as usize]);
        }
        for &(floor, merchant, open) in block.iter() {
            if floor > top.bound() {
                break; // and so is every later one
            }
            let known_open = open == HourOpen::Throughout;
            if let Some(c) = self.evaluate(merchant, query, top.bound(), known_open) {
                top.offer(c, &self.merchants);
            }
        }
    }

    /// The candidate the merchant at `pos` makes for `query`, if it
    /// qualifies and is not farther than `bound`. Shared by the index walk
    /// and the scan, so both apply exactly the same rules; `known_open`
    /// skips the hours when the walk's bitset already says open throughout
    /// the query's hour. The merchant's card settles most candidates; its
    /// profile is read only for what the card cannot decide.
    fn evaluate(
        &self,
        pos: u32,
        query: &SearchQuery,
        bound: f64,
        known_open: bool,
    ) -> Option<Candidate> {
        let card = &self.cards[pos as usize];
        if card.reach == Reach::Nowhere
            || card.is(Card::PAUSED)
            || card.category != query.category()
        {
            return None;
        }
        let distance_m = query.unit().distance_m(&card.unit);
        if distance_m > bound
            || (card.reach == Reach::Radius && distance_m > f64::from(card.radius_m))
        {
            return None;
        }
        let polygon = card.reach == Reach::Polygon;
        let booked = card.is(Card::BOOKED);
        let mut load = 0;
        if !known_open || polygon || booked || query.window().is_some() {
            let m = &self.merchants[pos as usize];
            let listed = m.listed.as_ref()?;
            if !known_open {
                let hours = &listed.profile.opening_hours;
                let local = query.at_week().shifted(hours.utc_offset_minutes);
                if !listed.mask.is_open_in(local, hours) {
                    return None;
                }
            }
            if polygon && !listed.shape.contains(&query.point(), distance_m) {
                return None;
            }
            if let Some(window) = query.window() {
                if !has_free_seat(m, listed, window) {
                    return None;
                }
            }
            if booked {
                let (from, to) = match query.window() {
                    Some(w) => w.epoch_bounds(),
                    None => {
                        let at = query.at().timestamp();
                        (at, at + LOAD_HORIZON_HOURS * 3600 - 1)
                    }
                };
                load = m.ledger.held_between(from, to);
            }
        }
        Some(Candidate {
            distance_m,
            rating_tenths: card.rating_tenths,
            load,
            pos,
        })
    }

    /// The position of `id`, adding it on first sight.
    fn position(&mut self, id: MerchantId) -> u32 {
        let next = self.merchants.len() as u32;
        let (merchants, cards) = (&mut self.merchants, &mut self.cards);
        *self.by_id.entry(id).or_insert_with(|| {
            merchants.push(Merchant {
                id,
                listed: None,
                paused: false,
                ledger: Ledger::default(),
            });
            cards.push(Card::unlisted());
            next
        })
    }

    /// Registers or replaces a profile, re-indexing only when the location,
    /// area or category moved.
    fn upsert(&mut self, id: MerchantId, profile: &MerchantProfile) {
        let pos = self.position(id);
        let m = &mut self.merchants[pos as usize];
        let service_keys = profile
            .services
            .iter()
            .map(|s| m.ledger.key(&s.service_id))
            .collect();
        let old = m.listed.take();
        let moved = old.as_ref().is_none_or(|o| {
            o.profile.location != profile.location
                || o.profile.service_area != profile.service_area
                || o.profile.category != profile.category
        });
        let shape = match old {
            Some(old) if !moved => old.shape,
            Some(old) => {
                self.unindex(pos, &old);
                Shape::new(&profile.location, &profile.service_area)
            }
            None => {
                self.listed += 1;
                Shape::new(&profile.location, &profile.service_area)
            }
        };
        if moved {
            self.index(pos, profile, &shape);
        }
        self.merchants[pos as usize].listed = Some(Listed {
            profile: profile.clone(),
            shape,
            mask: OpeningMask::of(&profile.opening_hours),
            service_keys,
        });
        self.refresh(pos);
    }

    /// Brings the merchant's card and the hour bitsets in line with its
    /// profile, pause and seats.
    fn refresh(&mut self, pos: u32) {
        let m = &self.merchants[pos as usize];
        let card = &mut self.cards[pos as usize];
        *card = match &m.listed {
            None => Card::unlisted(),
            Some(listed) => {
                let (reach, radius_m) = match listed.shape {
                    Shape::Radius { meters } => (Reach::Radius, meters as f32),
                    Shape::Polygon(_) => (Reach::Polygon, 0.0),
                    Shape::Nothing => (Reach::Nowhere, 0.0),
                };
                Card {
                    unit: listed.profile.location.unit(),
                    radius_m,
                    reach,
                    category: listed.profile.category,
                    rating_tenths: listed.profile.rating_tenths,
                    flags: 0,
                }
            }
        };
        card.set(Card::PAUSED, m.paused);
        card.set(Card::BOOKED, !m.ledger.is_empty());
        let utc = m
            .listed
            .as_ref()
            .filter(|_| !m.paused)
            .map(|l| l.mask.in_utc(l.profile.opening_hours.utc_offset_minutes));
        self.open.set(pos, utc.as_ref());
    }

    /// Pauses or resumes the merchant at `pos`.
    fn set_paused(&mut self, pos: u32, paused: bool) {
        self.merchants[pos as usize].paused = paused;
        self.refresh(pos);
    }

    fn index(&mut self, pos: u32, profile: &MerchantProfile, shape: &Shape) {
        let buckets = &mut self.index[slot_of(profile.category)];
        let at = UnitVector::of(&profile.location.unit());
        for cell in self.cells.cover(&profile.location, shape) {
            let centre = self.cells.geom(cell).center;
            // Rounded down, so key / 10 stays a lower bound of the distance.
            let key_dm = (centre.distance_m(&profile.location) * 10.0).floor();
            buckets.entry(cell).or_default().insert(Entry {
                key_dm: key_dm.min(f64::from(u32::MAX)) as u32,
                merchant: pos,
                at,
            });
        }
    }

    fn unindex(&mut self, pos: u32, old: &Listed) {
        // Covers are a pure function of (location, area, resolution): the
        // old cells are recomputed rather than stored per merchant.
        let buckets = &mut self.index[slot_of(old.profile.category)];
        for cell in self.cells.cover(&old.profile.location, &old.shape) {
            if let Some(bucket) = buckets.get_mut(&cell) {
                bucket.remove(pos);
                if bucket.is_empty() {
                    buckets.remove(&cell);
                }
            }
        }
    }

    fn apply_merchant(&mut self, stream: &str, event: &MerchantEvent) {
        if let MerchantEvent::Registered(r) = event {
            return self.upsert(r.merchant_id, &r.profile);
        }
        let Some(id) = stream
            .strip_prefix("merchant-")
            .and_then(|s| MerchantId::parse(s).ok())
        else {
            return;
        };
        match event {
            MerchantEvent::Updated(u) => self.upsert(id, &u.profile),
            MerchantEvent::Paused(_) => {
                let pos = self.position(id);
                self.set_paused(pos, true);
            }
            MerchantEvent::Resumed(_) => {
                let pos = self.position(id);
                self.set_paused(pos, false);
            }
            MerchantEvent::Registered(_) | MerchantEvent::StaffAdded(_) => {}
        }
    }

    fn apply_slot(&mut self, stream: &str, event: &SlotEvent) {
        let Some((merchant, service, start)) = parse_slot_stream(stream) else {
            return;
        };
        // Only grid-aligned starts name a slot; anything else is not ours.
        if DateTime::from_timestamp(start, 0)
            .and_then(|at| SlotStart::parse(at).ok())
            .is_none()
        {
            return;
        }
        let pos = self.position(merchant);
        let ledger = &mut self.merchants[pos as usize].ledger;
        let key = ledger.key(service);
        match event {
            SlotEvent::SeatTaken(_) => ledger.take(key, start),
            SlotEvent::SeatReleased(_) => ledger.release(key, start),
        }
        let booked = !ledger.is_empty();
        self.cards[pos as usize].set(Card::BOOKED, booked);
    }
}

/// Whether some bookable service of `m` has a free seat in a slot starting
/// in `window` that its opening hours cover.
fn has_free_seat(m: &Merchant, listed: &Listed, window: &SlotWindow) -> bool {
    let hours = &listed.profile.opening_hours;
    for start in window.starts() {
        // Every bookable service lasts at least a minute, so a slot needs the
        // store open at its start: one test rules out the closed hours.
        if !hours.is_open_at(start.at()) {
            continue;
        }
        let epoch = start.epoch_seconds();
        for (service, &key) in listed.profile.services.iter().zip(&listed.service_keys) {
            if bookable(service)
                && m.ledger.held(key, epoch) < service.slot_capacity
                && hours.covers(start.at(), service.duration_minutes)
            {
                return true;
            }
        }
    }
    false
}

/// The best candidates so far, kept sorted; K is at most 100, so a sorted
/// vector beats a heap.
struct Top {
    k: usize,
    max_distance_m: f64,
    hits: Vec<Candidate>,
}

impl Top {
    fn new(query: &SearchQuery) -> Self {
        Top {
            k: query.k(),
            max_distance_m: query.max_distance_m().unwrap_or(f64::INFINITY),
            hits: Vec::with_capacity(query.k() + 1),
        }
    }

    /// Farthest distance a new hit may have and still enter (ties included:
    /// an equally distant merchant may outrank on rating).
    fn bound(&self) -> f64 {
        match self.hits.get(self.k - 1) {
            Some(last) => last.distance_m.min(self.max_distance_m),
            None => self.max_distance_m,
        }
    }

    /// Takes `c` in if it ranks among the best `k` ([`SearchHit::rank`];
    /// ids, read from `merchants`, break full ties).
    fn offer(&mut self, c: Candidate, merchants: &[Merchant]) {
        let rank = |a: &Candidate, b: &Candidate| {
            rank_before_id(
                (a.distance_m, a.rating_tenths, a.load),
                (b.distance_m, b.rating_tenths, b.load),
            )
            .then_with(|| {
                merchants[a.pos as usize]
                    .id
                    .cmp(&merchants[b.pos as usize].id)
            })
        };
        if self.hits.len() == self.k
            && self
                .hits
                .last()
                .is_some_and(|last| rank(&c, last) != Ordering::Less)
        {
            return;
        }
        let at = self.hits.partition_point(|h| rank(h, &c) == Ordering::Less);
        self.hits.insert(at, c);
        self.hits.truncate(self.k);
    }
}

impl Projection for MerchantSearch {
    fn name(&self) -> &'static str {
        "merchant_search"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&mut self, envelope: &Envelope) {
        match &envelope.event {
            Event::Merchant(e) => self.apply_merchant(&envelope.stream_id, e),
            Event::Slot(e) => self.apply_slot(&envelope.stream_id, e),
            _ => {}
        }
    }
}
