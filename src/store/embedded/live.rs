//! The live edge of the log: recently committed events kept in memory and the
//! head position that wakes subscribers. Subscriptions read history from disk
//! and the recent past from here, and never skip or repeat a position because
//! both are indexed by the same gap-free position.

use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

use super::EmbeddedStore;
use crate::store::{EventStore, Position, RecordedEvent, StoreError, Subscription};

/// Recent events kept in memory for subscribers at the live edge.
const RECENT_CAPACITY: usize = 65_536;

/// Recent events and the head position.
pub(super) struct Live {
    /// The last `RECENT_CAPACITY` committed events, in position order.
    recent: RwLock<VecDeque<RecordedEvent>>,
    /// The last committed position; `None` once the store is shut down.
    head: watch::Sender<Option<Position>>,
}

impl Live {
    pub(super) fn new(head: Position) -> Self {
        Live {
            recent: RwLock::new(VecDeque::new()),
            head: watch::Sender::new(Some(head)),
        }
    }

    /// Makes a durable group visible to readers and subscribers.
    pub(super) fn publish(&self, events: Vec<RecordedEvent>) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        {
            let mut recent = self.recent.write().unwrap_or_else(|p| p.into_inner());
            recent.extend(events);
            let excess = recent.len().saturating_sub(RECENT_CAPACITY);
            recent.drain(..excess);
        }
        self.head.send_replace(Some(last));
    }

    /// Wakes subscribers with the news that no more events will come.
    pub(super) fn close(&self) {
        self.head.send_replace(None);
    }

    /// The last committed position, or `None` after shutdown.
    pub(super) fn head(&self) -> Option<Position> {
        *self.head.borrow()
    }

    /// Up to `limit` events from `from` if memory still holds `from`.
    pub(super) fn read(&self, from: Position, limit: usize) -> Option<Vec<RecordedEvent>> {
        let recent = self.recent.read().unwrap_or_else(|p| p.into_inner());
        let first = recent.front()?.position;
        if from < first {
            return None;
        }
        let skip = (from - first) as usize;
        Some(recent.iter().skip(skip).take(limit).cloned().collect())
    }

    pub(super) fn watch(&self) -> watch::Receiver<Option<Position>> {
        self.head.subscribe()
    }
}

/// Events per batch handed to a subscriber.
const BATCH: usize = 4096;

/// A subscription to the embedded store's log.
pub(super) struct LiveSubscription {
    pub(super) store: EmbeddedStore,
    pub(super) next: Position,
    pub(super) head: watch::Receiver<Option<Position>>,
}

#[async_trait]
impl Subscription for LiveSubscription {
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            let head = (*self.head.borrow_and_update()).ok_or(StoreError::Closed)?;
            if self.next <= head {
                let batch = self.store.read_all(self.next, BATCH).await?;
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

/// Shared handle to the live edge.
pub(super) type SharedLive = Arc<Live>;
