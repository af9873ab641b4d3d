//! Finding merchants (any signed-in caller): "who of category C serves this
//! point, open at T, with a free slot, nearest first" from the merchant
//! search read model, and a merchant's free slots.

use chrono::{DateTime, Utc};
use o2ohub_events::{Category, LatLng, MerchantId, ValueError};
use o2ohub_projections::search::{SearchQuery, SlotWindow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::{Filter, Rejection, Reply};

use super::auth::{principal, Principal};
use super::problem::Problem;
use super::{with_state, State};
use crate::json_out::{put_json_str, put_uuid};

/// Query of `GET /v1/merchants/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// food_delivery, salon, repair, cleaning or restaurant.
    pub category: String,
    /// Where, latitude.
    pub lat: f64,
    /// Where, longitude.
    pub lng: f64,
    /// Open at (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// How many (1..=100, default 20).
    pub k: Option<usize>,
    /// Only within this distance, metres.
    pub max_distance_m: Option<f64>,
    /// With a free slot starting at or after this.
    pub from: Option<DateTime<Utc>>,
    /// … and at or before this.
    pub to: Option<DateTime<Utc>>,
}

/// One merchant found, as answered (borrowed from the read model while
/// its lock is held).
#[cfg_attr(test, derive(Serialize))]
struct Found<'a> {
    merchant_id: MerchantId,
    name: &'a str,
    location: LatLng,
    distance_m: f64,
    rating_tenths: u8,
    load: u32,
}

/// The answer of `GET /v1/merchants/search`,
/// `{"merchants":[{"merchant_id", "name", "location": {"lat", "lng"},
/// "distance_m", "rating_tenths", "load"}, ...]}`, written by hand: a
/// search answers twenty merchants and serde's escaping of every key and
/// id was a tenth of the server's time under load. Byte for byte what
/// serde_json writes for the same fields (a property test holds it).
fn searched_json(found: &[Found<'_>]) -> Vec<u8> {
    fn number(out: &mut Vec<u8>, n: impl Serialize) {
        // Writing a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &n);
    }
    let mut out = Vec::with_capacity(16 + found.len() * 200);
    out.extend_from_slice(b"{\"merchants\":[");
    for (i, f) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"merchant_id\":");
        put_uuid(&mut out, &f.merchant_id.0);
        out.extend_from_slice(b",\"name\":");
        put_json_str(&mut out, f.name);
        out.extend_from_slice(b",\"location\":{\"lat\":");
        number(&mut out, f.location.lat);
        out.extend_from_slice(b",\"lng\":");
        number(&mut out, f.location.lng);
        out.extend_from_slice(b"},\"distance_m\":");
        number(&mut out, f.distance_m);
        out.extend_from_slice(b",\"rating_tenths\":");
        number(&mut out, f.rating_tenths);
        out.extend_from_slice(b",\"load\":");
        number(&mut out, f.load);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Query of `GET /v1/merchants/{id}/slots`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotParams {
    /// The service.
    pub service_id: String,
    /// Slots starting at or after this.
    pub from: DateTime<Utc>,
    /// … and at or before this (at most 7 days after `from`).
    pub to: DateTime<Utc>,
}

fn window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Option<SlotWindow>, Problem> {
    match (from, to) {
        (None, None) => Ok(None),
        (Some(f), Some(t)) => Ok(Some(SlotWindow::new(f, t)?)),
        (None, Some(_)) => Err(ValueError::new("from", "give both from and to, or neither").into()),
        (Some(_), None) => Err(ValueError::new("to", "give both from and to, or neither").into()),
    }
}

fn search_query(p: SearchParams) -> Result<SearchQuery, Problem> {
    let category = Category::parse(&p.category).ok_or_else(|| {
        Problem::from(ValueError::new(
            "category",
            "one of food_delivery, salon, repair, cleaning, restaurant",
        ))
    })?;
    let point = LatLng::parse(p.lat, p.lng)?;
    let query = SearchQuery::new(
        category,
        point,
        p.at.unwrap_or_else(Utc::now),
        p.k.unwrap_or(20),
        p.max_distance_m,
        window(p.from, p.to)?,
    )?;
    Ok(query)
}

/// Discovery routes.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let search = warp::path!("v1" / "merchants" / "search")
        .and(warp::get())
        .and(principal())
        .and(warp::query::<SearchParams>())
        .and(with_state())
        .and_then(|_p: Principal, params: SearchParams, s: State| async move {
            let query = search_query(params).map_err(warp::reject::custom)?;
            let model = s.hub.read.search.read().unwrap_or_else(|e| e.into_inner());
            let merchants: Vec<_> = model
                .model
                .search_listed(&query)
                .into_iter()
                .map(|(hit, listing)| Found {
                    merchant_id: hit.merchant_id,
                    name: listing.profile.name.as_str(),
                    location: listing.profile.location,
                    distance_m: hit.distance_m.round(),
                    rating_tenths: hit.rating_tenths,
                    load: hit.load,
                })
                .collect();
            let body = searched_json(&merchants);
            Ok::<_, Rejection>(warp::reply::with_header(
                body,
                warp::http::header::CONTENT_TYPE,
                "application/json",
            ))
        });
    let slots = warp::path!("v1" / "merchants" / MerchantId / "slots")
        .and(warp::get())
        .and(principal())
        .and(warp::query::<SlotParams>())
        .and(with_state())
        .and_then(
            |id: MerchantId, _p: Principal, q: SlotParams, s: State| async move {
                let window = SlotWindow::new(q.from, q.to)
                    .map_err(|e| warp::reject::custom(Problem::from(e)))?;
                let model = s.hub.read.search.read().unwrap_or_else(|e| e.into_inner());
                let listing = model
                    .model
                    .merchant(id)
                    .ok_or_else(|| warp::reject::custom(Problem::not_found("no such merchant")))?;
                if !listing
                    .profile
                    .services
                    .iter()
                    .any(|sv| sv.service_id == q.service_id)
                {
                    return Err(warp::reject::custom(Problem::from(ValueError::new(
                        "service_id",
                        "the merchant offers no such service",
                    ))));
                }
                let free: Vec<_> = model
                    .model
                    .free_slots(id, &q.service_id, &window)
                    .into_iter()
                    .map(|(start, seats)| json!({"slot_start": start, "free_seats": seats}))
                    .collect();
                Ok::<_, Rejection>(warp::reply::json(
                    &json!({ "merchant_id": id, "service_id": q.service_id, "slots": free }),
                ))
            },
        );
    search.or(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The answer as serde_json writes it: the reference of `searched_json`.
    #[derive(Serialize)]
    struct Searched<'a> {
        merchants: &'a [Found<'a>],
    }

    proptest! {
        #[test]
        fn the_answer_is_what_serde_writes(
            hits in proptest::collection::vec(
                (any::<u128>(), any::<String>(), -90.0f64..=90.0, -180.0f64..=180.0,
                 prop_oneof![Just(0.0), 0.0f64..1e7, Just(1e21)], any::<u8>(), any::<u32>()),
                0..25,
            ),
        ) {
            let found: Vec<Found<'_>> = hits
                .iter()
                .map(|(id, name, lat, lng, distance, rating, load)| Found {
                    merchant_id: MerchantId(uuid::Uuid::from_u128(*id)),
                    name,
                    location: LatLng { lat: *lat, lng: *lng },
                    distance_m: distance.round(),
                    rating_tenths: *rating,
                    load: *load,
                })
                .collect();
            let ours = searched_json(&found);
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&Searched { merchants: &found }).unwrap()
            );
        }
    }
}
