//! The synthetic city of `o2ohub demo`, drawn from one seed: districts (a
//! dense centre, a ring of neighbourhoods, sparse edges), merchants of every
//! category with opening hours, services, slot capacities and service areas,
//! riders with vehicles and shifts, consumers with homes. Pure: the same seed
//! and sizes give the same city, byte for byte.

use o2ohub_events::{
    Category, LatLng, MerchantProfile, Money, OpeningHours, OpeningInterval, Service, ServiceArea,
    VehicleType, Weekday,
};
use rand::{RngExt, SeedableRng};

/// The seeded generator every part of the demo draws from.
pub type Rng = rand::rngs::Xoshiro256PlusPlus;

/// Where the city is: central Shanghai, on UTC+8.
pub const CENTRE: LatLng = LatLng {
    lat: 31.2304,
    lng: 121.4737,
};
/// The city's offset from UTC, in minutes.
pub const UTC_OFFSET_MINUTES: i16 = 480;
/// The currency prices are in.
pub const CURRENCY: &str = "CNY";

/// How big a city to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CitySize {
    /// Merchants of all categories.
    pub merchants: usize,
    /// Riders.
    pub riders: usize,
    /// Consumers with a home.
    pub consumers: usize,
}

/// A neighbourhood: merchants and homes cluster around its centre.
#[derive(Debug, Clone, PartialEq)]
pub struct District {
    /// Its name, for the summary and the report.
    pub name: &'static str,
    /// Its centre.
    pub centre: LatLng,
    /// How far it spreads (one standard deviation), metres.
    pub spread_m: f64,
    /// Relative weight of merchants placed here.
    pub merchant_weight: f64,
    /// Relative weight of homes placed here.
    pub home_weight: f64,
}

/// Something a food merchant sells.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuItem {
    /// The item reference on order lines.
    pub sku: String,
    /// Price of one.
    pub price_minor: u64,
}

/// A merchant as the operator will register it.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantPlan {
    /// The profile sent to `POST /v1/merchants`.
    pub profile: MerchantProfile,
    /// The district it is in.
    pub district: usize,
    /// What it delivers (empty for merchants that only take bookings).
    pub menu: Vec<MenuItem>,
    /// Minutes it takes to prepare an order, at least and at most.
    pub prep_minutes: (u32, u32),
}

/// When a rider works, in local minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Start, local minutes.
    pub start: u32,
    /// End, local minutes (after `start`).
    pub end: u32,
}

/// A rider as the operator will register them, and how they work.
#[derive(Debug, Clone, PartialEq)]
pub struct RiderPlan {
    /// Display name.
    pub name: String,
    /// How they move.
    pub vehicle: VehicleType,
    /// Orders carried at once.
    pub capacity: u32,
    /// Where their shift starts.
    pub home: LatLng,
    /// When they work.
    pub shift: Shift,
    /// Share of offers they decline.
    pub decline_rate: f64,
}

/// A consumer: where they live and how they are reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerPlan {
    /// Their home (deliveries go here; bookings are searched from here).
    pub home: LatLng,
    /// The district they live in.
    pub district: usize,
    /// Name on the door.
    pub name: String,
    /// Phone, E.164.
    pub phone: String,
    /// Street address.
    pub address: String,
}

/// The whole city.
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// The seed it was drawn from.
    pub seed: u64,
    /// Its districts, the centre first.
    pub districts: Vec<District>,
    /// Its merchants.
    pub merchants: Vec<MerchantPlan>,
    /// Its riders.
    pub riders: Vec<RiderPlan>,
    /// Its consumers.
    pub consumers: Vec<ConsumerPlan>,
}

const DISTRICT_NAMES: [&str; 13] = [
    "Old Town",
    "Riverside",
    "Market Hill",
    "University",
    "Harbour",
    "Garden Quarter",
    "Railway",
    "North Fields",
    "East Park",
    "South Bank",
    "West End",
    "Airport Road",
    "Lakeside",
];

const STREETS: [&str; 8] = [
    "Nanjing Rd",
    "Huaihai Rd",
    "Fuxing Rd",
    "Yan'an Rd",
    "Sichuan Rd",
    "Henan Rd",
    "Beijing Rd",
    "Xizang Rd",
];

/// A point `east_m` metres east and `north_m` metres north of `from`.
pub fn offset(from: LatLng, east_m: f64, north_m: f64) -> LatLng {
    let lat = from.lat + north_m / 111_320.0;
    let lng = from.lng + east_m / (111_320.0 * from.lat.to_radians().cos());
    LatLng {
        lat: lat.clamp(-90.0, 90.0),
        lng: lng.clamp(-180.0, 180.0),
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An index drawn with probability proportional to `weights`.
pub fn weighted(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

fn districts() -> Vec<District> {
    let mut out = vec![District {
        name: DISTRICT_NAMES[0],
        centre: CENTRE,
        spread_m: 900.0,
        merchant_weight: 6.0,
        home_weight: 3.0,
    }];
    // A ring of neighbourhoods 3 km out, and sparse edges 7 km out.
    for (ring, (radius, spread, mw, hw)) in
        [(3_000.0, 1_000.0, 1.5, 1.5), (7_000.0, 1_600.0, 0.4, 0.8)]
            .into_iter()
            .enumerate()
    {
        for k in 0..6 {
            let angle = (k as f64 + 0.5 * ring as f64) * std::f64::consts::TAU / 6.0;
            out.push(District {
                name: DISTRICT_NAMES[1 + ring * 6 + k],
                centre: offset(CENTRE, radius * angle.cos(), radius * angle.sin()),
                spread_m: spread,
                merchant_weight: mw,
                home_weight: hw,
            });
        }
    }
    out
}

fn point_in(rng: &mut Rng, d: &District) -> LatLng {
    offset(d.centre, normal(rng) * d.spread_m, normal(rng) * d.spread_m)
}

const EVERY_DAY: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Opening hours from (day, open, close) local minutes.
fn hours(spans: impl IntoIterator<Item = (Weekday, u16, u16)>) -> OpeningHours {
    OpeningHours {
        utc_offset_minutes: UTC_OFFSET_MINUTES,
        intervals: spans
            .into_iter()
            .map(|(day, open, close)| OpeningInterval { day, open, close })
            .collect(),
    }
}

fn money(minor: u64) -> Money {
    Money::parse(minor as i64, CURRENCY).expect("demo prices are valid")
}

fn service(id: &str, name: &str, minutes: u32, price: u64, capacity: u32) -> Service {
    Service {
        service_id: id.into(),
        name: name.into(),
        duration_minutes: minutes,
        price: money(price),
        slot_capacity: capacity,
    }
}

/// A hexagonal service area around `at`, as a polygon.
fn hexagon(at: LatLng, radius_m: f64) -> ServiceArea {
    let ring = (0..6)
        .map(|k| {
            let a = k as f64 * std::f64::consts::TAU / 6.0;
            offset(at, radius_m * a.cos(), radius_m * a.sin())
        })
        .collect();
    ServiceArea::Polygon { ring }
}

/// The category mix: mostly food, then the offline services.
const CATEGORY_WEIGHTS: [(Category, f64); 5] = [
    (Category::FoodDelivery, 0.45),
    (Category::Restaurant, 0.15),
    (Category::Salon, 0.15),
    (Category::Repair, 0.10),
    (Category::Cleaning, 0.15),
];

fn merchant(
    rng: &mut Rng,
    index: usize,
    category: Category,
    district: usize,
    at: LatLng,
) -> MerchantPlan {
    let rating_tenths = rng.random_range(30..=50);
    let seats = |rng: &mut Rng, lo: u32, hi: u32| rng.random_range(lo..=hi);
    let (name, opening_hours, services, service_area, menu, prep) = match category {
        Category::FoodDelivery => {
            let kinds = [
                "Noodle Bar",
                "Dumpling House",
                "Burger Lab",
                "Hotpot Express",
                "Bao Kitchen",
                "Curry Corner",
            ];
            let kind = kinds[rng.random_range(0..kinds.len())];
            let late = rng.random_bool(0.3);
            let close = if late { 24 * 60 } else { 22 * 60 };
            let menu = (0..rng.random_range(3..=6))
                .map(|k| MenuItem {
                    sku: format!("item-{k}"),
                    price_minor: rng.random_range(18..=68) * 100,
                })
                .collect();
            let radius = rng.random_range(4_000..=7_000);
            (
                format!("{kind} #{index}"),
                hours(EVERY_DAY.map(|d| (d, 10 * 60, close))),
                Vec::new(),
                ServiceArea::Radius { meters: radius },
                menu,
                (8, 20),
            )
        }
        Category::Restaurant => {
            let tables2 = seats(rng, 3, 8);
            let tables4 = seats(rng, 2, 5);
            (
                format!("Restaurant #{index}"),
                hours(
                    EVERY_DAY
                        .into_iter()
                        .flat_map(|d| [(d, 11 * 60, 14 * 60 + 30), (d, 17 * 60, 23 * 60)]),
                ),
                vec![
                    service("table_2", "Table for two", 90, 0, tables2),
                    service("table_4", "Table for four", 90, 0, tables4),
                ],
                ServiceArea::Radius { meters: 6_000 },
                Vec::new(),
                (0, 0),
            )
        }
        Category::Salon => {
            let chairs = seats(rng, 1, 4);
            (
                format!("Salon #{index}"),
                hours(EVERY_DAY.map(|d| {
                    let weekend = matches!(d, Weekday::Sat | Weekday::Sun);
                    (
                        d,
                        if weekend { 9 * 60 } else { 10 * 60 },
                        if weekend { 22 * 60 } else { 21 * 60 },
                    )
                })),
                vec![
                    service(
                        "haircut",
                        "Haircut",
                        30,
                        rng.random_range(60..=180) * 100,
                        chairs,
                    ),
                    service(
                        "colour",
                        "Colour",
                        90,
                        rng.random_range(200..=500) * 100,
                        chairs.div_ceil(2),
                    ),
                ],
                ServiceArea::Radius { meters: 3_000 },
                Vec::new(),
                (0, 0),
            )
        }
        Category::Repair => {
            let benches = seats(rng, 1, 3);
            (
                format!("Repair Shop #{index}"),
                hours(
                    EVERY_DAY
                        .into_iter()
                        .filter(|d| *d != Weekday::Sun)
                        .map(|d| (d, 9 * 60, 20 * 60)),
                ),
                vec![
                    service("phone_screen", "Phone screen", 45, 30_000, benches),
                    service("bike_tune", "Bike tune-up", 60, 12_000, benches),
                ],
                ServiceArea::Radius { meters: 5_000 },
                Vec::new(),
                (0, 0),
            )
        }
        Category::Cleaning => {
            let crews = seats(rng, 2, 5);
            (
                format!("Cleaning Co #{index}"),
                hours(EVERY_DAY.map(|d| (d, 8 * 60, 21 * 60))),
                vec![
                    service("home_2h", "Home cleaning, 2 hours", 120, 24_000, crews),
                    service(
                        "deep_4h",
                        "Deep cleaning, 4 hours",
                        240,
                        52_000,
                        crews.div_ceil(2),
                    ),
                ],
                // Cleaners come to the home: they cover their whole quarter.
                hexagon(at, 6_000.0),
                Vec::new(),
                (0, 0),
            )
        }
    };
    MerchantPlan {
        profile: MerchantProfile {
            name,
            category,
            location: at,
            opening_hours,
            services,
            service_area,
            rating_tenths,
        },
        district,
        menu,
        prep_minutes: prep,
    }
}

fn rider(rng: &mut Rng, index: usize, home: LatLng, centre_district: bool) -> RiderPlan {
    let vehicle = if centre_district && rng.random_bool(0.1) {
        VehicleType::Foot
    } else {
        [VehicleType::Scooter, VehicleType::Bicycle, VehicleType::Car]
            [weighted(rng, &[0.55, 0.35, 0.10])]
    };
    let capacity = match vehicle {
        VehicleType::Foot => 1,
        VehicleType::Bicycle => 2,
        VehicleType::Scooter => 3,
        VehicleType::Car => 4,
    };
    // The first riders cover the whole day so that any window has supply.
    let shifts = [
        Shift {
            start: 10 * 60 + 30,
            end: 23 * 60 + 30,
        },
        Shift {
            start: 10 * 60 + 30,
            end: 15 * 60,
        },
        Shift {
            start: 16 * 60 + 30,
            end: 23 * 60 + 30,
        },
        Shift {
            start: 11 * 60,
            end: 21 * 60,
        },
        Shift {
            start: 14 * 60,
            end: 23 * 60 + 30,
        },
    ];
    let shift = if index < 2 {
        shifts[0]
    } else {
        shifts[weighted(rng, &[0.15, 0.3, 0.3, 0.15, 0.1])]
    };
    RiderPlan {
        name: format!("Rider {index}"),
        vehicle,
        capacity,
        home,
        shift,
        decline_rate: rng.random_range(0.02..0.15),
    }
}

/// Draws the city of `seed` at `size`.
pub fn generate(seed: u64, size: CitySize) -> City {
    let mut rng = Rng::seed_from_u64(seed);
    let districts = districts();
    let merchant_weights: Vec<f64> = districts.iter().map(|d| d.merchant_weight).collect();
    let home_weights: Vec<f64> = districts.iter().map(|d| d.home_weight).collect();
    let category_weights: Vec<f64> = CATEGORY_WEIGHTS.iter().map(|(_, w)| *w).collect();
    let merchants = (0..size.merchants)
        .map(|i| {
            // Every category is present as soon as there are five merchants.
            let category = if i < CATEGORY_WEIGHTS.len() {
                CATEGORY_WEIGHTS[i].0
            } else {
                CATEGORY_WEIGHTS[weighted(&mut rng, &category_weights)].0
            };
            let district = weighted(&mut rng, &merchant_weights);
            let at = point_in(&mut rng, &districts[district]);
            merchant(&mut rng, i, category, district, at)
        })
        .collect();
    let riders = (0..size.riders)
        .map(|i| {
            let district = weighted(&mut rng, &merchant_weights);
            let home = point_in(&mut rng, &districts[district]);
            rider(&mut rng, i, home, district == 0)
        })
        .collect();
    let consumers = (0..size.consumers)
        .map(|i| {
            let district = weighted(&mut rng, &home_weights);
            let home = point_in(&mut rng, &districts[district]);
            ConsumerPlan {
                home,
                district,
                name: format!("Consumer {i}"),
                phone: format!("+86138{:08}", i),
                address: format!(
                    "{} {}, {}, flat {}",
                    rng.random_range(1..=999),
                    STREETS[rng.random_range(0..STREETS.len())],
                    districts[district].name,
                    rng.random_range(101..=2_808)
                ),
            }
        })
        .collect();
    City {
        seed,
        districts,
        merchants,
        riders,
        consumers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size() -> CitySize {
        CitySize {
            merchants: 40,
            riders: 20,
            consumers: 200,
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_city_and_another_seed_another() {
        assert_eq!(generate(7, size()), generate(7, size()));
        assert_ne!(generate(7, size()), generate(8, size()));
    }

    #[test]
    fn every_category_is_present_and_profiles_are_valid() {
        let city = generate(1, size());
        for c in Category::ALL {
            assert!(
                city.merchants.iter().any(|m| m.profile.category == c),
                "{c:?}"
            );
        }
        for m in &city.merchants {
            m.profile.opening_hours.validate().unwrap();
            m.profile.service_area.validate().unwrap();
            let food = m.profile.category == Category::FoodDelivery;
            assert_eq!(
                food,
                !m.menu.is_empty(),
                "food merchants and only they have a menu"
            );
            assert_eq!(food, m.profile.services.is_empty());
            for s in &m.profile.services {
                assert!(s.slot_capacity >= 1 && s.duration_minutes % 15 == 0);
            }
        }
    }

    #[test]
    fn the_centre_is_denser_than_the_edge() {
        let city = generate(
            3,
            CitySize {
                merchants: 400,
                riders: 1,
                consumers: 1,
            },
        );
        let near = city
            .merchants
            .iter()
            .filter(|m| m.profile.location.distance_m(&CENTRE) < 2_000.0)
            .count();
        let far = city
            .merchants
            .iter()
            .filter(|m| m.profile.location.distance_m(&CENTRE) > 6_000.0)
            .count();
        assert!(near > far, "{near} near the centre, {far} at the edge");
    }
}
