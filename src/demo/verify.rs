//! The day's closing checks, against the log itself: every read model the
//! hub served live is folded again from position 1 and must come out equal;
//! the events counted must be the events the store holds.
//!
//! Read models are compared as JSON values with arrays sorted, because some
//! hold hash sets whose serialised order is arbitrary; everything else about
//! them (every key, every number, every list's members) must match.

use anyhow::Result;
use o2ohub_projections::{Checkpointed, Projection};
use serde::Serialize;
use serde_json::Value;

use crate::hub::ReadModels;
use crate::runner::{self, Shared};
use crate::store::{EventStore, SubscribedEvent};

/// The outcome of rebuilding one read model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rebuilt {
    /// The read model.
    pub name: &'static str,
    /// The position both copies were compared at.
    pub position: u64,
    /// Whether the rebuilt copy equals the live one.
    pub equal: bool,
}

/// A JSON value with every array sorted (recursively), for set-like comparison.
pub fn canonical(v: Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(canonical).collect();
            items.sort_by_cached_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other,
    }
}

/// Folds the log into a fresh model up to the live model's position and compares.
async fn rebuild<P>(store: &dyn EventStore, live: &Shared<P>, fresh: P) -> Result<Rebuilt>
where
    P: Projection + Serialize,
{
    let name = fresh.name();
    // Copy the live model at one position; writes after it do not matter.
    let (position, live_value) = {
        let guard = live.read().unwrap_or_else(|p| p.into_inner());
        (guard.position, serde_json::to_value(&guard.model)?)
    };
    let mut model = Checkpointed::new(fresh);
    while model.position < position {
        let batch = SubscribedEvent::each(
            store
                .read_all(
                    model.position + 1,
                    (position - model.position).min(16_384) as usize,
                )
                .await?,
        );
        if batch.is_empty() {
            break;
        }
        runner::fold(&mut model, &batch);
    }
    let equal = model.position == position
        && canonical(serde_json::to_value(&model.model)?) == canonical(live_value);
    Ok(Rebuilt {
        name,
        position,
        equal,
    })
}

/// Rebuilds every read model the hub serves and compares it with the live one.
pub async fn rebuild_all(store: &dyn EventStore, live: &ReadModels) -> Result<Vec<Rebuilt>> {
    use o2ohub_projections::analytics::Analytics;
    use o2ohub_projections::search::MerchantSearch;
    use o2ohub_projections::supply::Supply;
    use o2ohub_projections::views::consumer::ConsumerActivity;
    use o2ohub_projections::views::rider::RiderBoards;
    use o2ohub_projections::views::store::StoreDays;
    Ok(vec![
        rebuild(store, &live.consumers, ConsumerActivity::default()).await?,
        rebuild(store, &live.stores, StoreDays::default()).await?,
        rebuild(store, &live.riders, RiderBoards::default()).await?,
        rebuild(store, &live.supply, Supply::default()).await?,
        rebuild(store, &live.analytics, Analytics::default()).await?,
        rebuild(store, &live.search, MerchantSearch::new()).await?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_values_ignore_array_order_only() {
        let a = json!({"x": [3, 1, 2], "y": {"z": [{"b": 1}, {"a": 2}]}});
        let b = json!({"y": {"z": [{"a": 2}, {"b": 1}]}, "x": [2, 3, 1]});
        assert_eq!(canonical(a.clone()), canonical(b));
        assert_ne!(
            canonical(a),
            canonical(json!({"x": [3, 1, 2, 2], "y": {"z": []}}))
        );
    }
}
