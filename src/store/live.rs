//! The live edge of a store's log (shared by the single-writer backends): recently committed events kept in memory and the
//! head position that wakes subscribers. Subscriptions read history from disk
//! and the recent past from here, and never skip or repeat a position because
//! both are indexed by the same gap-free position.

use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

use crate::store::{
    EventStore, Position, RecordedEvent, StoreError, SubscribedEvent, Subscription,
};

/// Recent events kept in memory for subscribers at the live edge.
const RECENT_CAPACITY: usize = 65_536;

/// Recent events and the head position.
pub(crate) struct Live {
    /// The last `RECENT_CAPACITY` committed events, in position order, as
    /// the subscribers at the live edge share them.
    recent: RwLock<VecDeque<Arc<SubscribedEvent>>>,
    /// The last committed position; `None` once the store is shut down.
    head: watch::Sender<Option<Position>>,
}

impl Live {
    pub(crate) fn new(head: Position) -> Self {
        Live {
            recent: RwLock::new(VecDeque::new()),
            head: watch::Sender::new(Some(head)),
        }
    }

    /// Makes a durable group visible to readers and subscribers.
    pub(crate) fn publish(&self, events: Vec<RecordedEvent>) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        {
            let mut recent = self.recent.write().unwrap_or_else(|p| p.into_inner());
            recent.extend(events.into_iter().map(SubscribedEvent::new));
            let excess = recent.len().saturating_sub(RECENT_CAPACITY);
            recent.drain(..excess);
        }
        self.head.send_replace(Some(last));
    }

    /// Wakes subscribers with the news that no more events will come.
    pub(crate) fn close(&self) {
        self.head.send_replace(None);
    }

    /// The last committed position, or `None` after shutdown.
    pub(crate) fn head(&self) -> Option<Position> {
        *self.head.borrow()
    }

    /// Up to `limit` events from `from` if memory still holds `from`.
    pub(crate) fn read(&self, from: Position, limit: usize) -> Option<Vec<RecordedEvent>> {
        self.window(from, limit, |e| RecordedEvent::clone(e))
    }

    /// [`read`](Self::read), sharing the events rather than copying them.
    pub(crate) fn shared(&self, from: Position, limit: usize) -> Option<Vec<Arc<SubscribedEvent>>> {
        self.window(from, limit, Arc::clone)
    }

    /// `each` of up to `limit` events from `from`, if memory still holds `from`.
    fn window<T>(
        &self,
        from: Position,
        limit: usize,
        each: impl Fn(&Arc<SubscribedEvent>) -> T,
    ) -> Option<Vec<T>> {
        let recent = self.recent.read().unwrap_or_else(|p| p.into_inner());
        let first = recent.front()?.position;
        let skip = from.checked_sub(first)? as usize;
        Some(
            recent
                .range(skip.min(recent.len())..)
                .take(limit)
                .map(each)
                .collect(),
        )
    }

    /// The event at position `p`, if memory still holds it.
    pub(crate) fn get(&self, p: Position) -> Option<RecordedEvent> {
        let recent = self.recent.read().unwrap_or_else(|p| p.into_inner());
        let first = recent.front()?.position;
        let event = recent.get(p.checked_sub(first)? as usize)?;
        Some(RecordedEvent::clone(event))
    }

    /// A receiver of head-position changes.
    pub(crate) fn watch(&self) -> watch::Receiver<Option<Position>> {
        self.head.subscribe()
    }
}

/// Events per batch handed to a subscriber.
const BATCH: usize = 4096;

/// A subscription to a store's log that shares the events memory still holds
/// with the other subscribers, reads older ones through `read_all`, and
/// sleeps on the head position.
pub(crate) struct LiveSubscription<S> {
    /// The store read from.
    pub(crate) store: S,
    /// The store's live edge.
    pub(crate) live: Arc<Live>,
    /// The next position to hand out.
    pub(crate) next: Position,
    /// Wakes the subscription when the head moves (or the store closes).
    pub(crate) head: watch::Receiver<Option<Position>>,
}

#[async_trait]
impl<S: EventStore + Clone> Subscription for LiveSubscription<S> {
    async fn next_batch(&mut self) -> Result<Vec<Arc<SubscribedEvent>>, StoreError> {
        loop {
            let head = (*self.head.borrow_and_update()).ok_or(StoreError::Closed)?;
            if self.next <= head {
                let batch = match self.live.shared(self.next, BATCH) {
                    Some(shared) => shared,
                    None => SubscribedEvent::each(self.store.read_all(self.next, BATCH).await?),
                };
                if let Some(last) = batch.last() {
                    self.next = last.position + 1;
                    return Ok(batch);
                }
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Closed);
            }
        }
    }
}
