//! Upcasting: old payload versions are rewritten, one version step at a time,
//! into the current shape before they are deserialised. Stored events are never
//! rewritten; only their reading changes.
//!
//! To change a payload incompatibly: bump the version in its family, and add
//! the step from the old version here, with a test that an old payload reads
//! as the current type.

use serde_json::{json, Value};

/// Applies every step from `from` up to `to` for `event_type`.
pub(crate) fn to_current(event_type: &str, from: u32, to: u32, mut payload: Value) -> Value {
    for version in from..to {
        payload = step(event_type, version, payload);
    }
    payload
}

/// One step: the payload of `event_type` at `version` → `version + 1`.
fn step(event_type: &str, version: u32, mut payload: Value) -> Value {
    match (event_type, version) {
        // v1 of MerchantRegistered carried a flat `lat`/`lng` and no rating;
        // v2 nests the point as `location` and adds `rating_tenths` (unrated = 0).
        ("MerchantRegistered", 1) => {
            if let Some(obj) = payload.as_object_mut() {
                let lat = obj.remove("lat").unwrap_or(Value::Null);
                let lng = obj.remove("lng").unwrap_or(Value::Null);
                if let Some(profile) = obj.get_mut("profile").and_then(Value::as_object_mut) {
                    profile.insert("location".into(), json!({ "lat": lat, "lng": lng }));
                    profile.entry("rating_tenths").or_insert(json!(0));
                }
            }
            payload
        }
        _ => payload,
    }
}
