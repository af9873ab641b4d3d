//! The delivered prefix of the relay: which log positions Kafka has
//! confirmed, told by librdkafka's delivery reports on the producer's
//! polling thread.
//!
//! Reports come in order within a partition but interleaved across
//! partitions, so a position can be confirmed before an earlier one. The
//! relay's checkpoint may only cover positions whose every predecessor is
//! confirmed too: [`DeliveredPrefix`] keeps that prefix plus a window of the
//! confirmations beyond it. Taking the reports on the polling thread itself
//! (a [`ProducerContext`]) rather than through one future per message keeps
//! a task wake-up and an allocation off every event.

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::Position;

/// The confirmed prefix and what is confirmed beyond it.
#[derive(Debug)]
struct Window {
    /// Every position up to this one is confirmed.
    prefix: Position,
    /// `beyond[i]`: whether `prefix + 1 + i` is confirmed.
    beyond: VecDeque<bool>,
    /// The first refused delivery, which ends the attempt.
    failure: Option<(Position, KafkaError)>,
}

/// Shared between the producer's polling thread and the relay.
#[derive(Debug)]
pub struct DeliveredPrefix {
    /// The window, touched once per report.
    window: Mutex<Window>,
    /// A copy of the prefix, read without the lock.
    prefix: AtomicU64,
    /// Confirmations since start, re-sends included.
    confirmed: AtomicU64,
}

impl DeliveredPrefix {
    /// Nothing beyond `checkpoint` confirmed yet.
    pub fn new(checkpoint: Position) -> Self {
        DeliveredPrefix {
            window: Mutex::new(Window {
                prefix: checkpoint,
                beyond: VecDeque::new(),
                failure: None,
            }),
            prefix: AtomicU64::new(checkpoint),
            confirmed: AtomicU64::new(0),
        }
    }

    /// Starts a new attempt from the current prefix: what was confirmed
    /// beyond it, and a refusal, belong to the attempt that ended (its
    /// producer is gone; the new one re-sends everything after the prefix).
    pub fn restart(&self) {
        let mut w = self.lock();
        w.beyond.clear();
        w.failure = None;
    }

    /// The last position confirmed together with every earlier one.
    pub fn prefix(&self) -> Position {
        self.prefix.load(Ordering::Acquire)
    }

    /// Confirmations received so far.
    pub fn confirmed(&self) -> u64 {
        self.confirmed.load(Ordering::Relaxed)
    }

    /// The first refused delivery, if any.
    pub fn failure(&self) -> Option<(Position, KafkaError)> {
        self.lock().failure.clone()
    }

    /// Records that `position` is on Kafka.
    pub fn confirm(&self, position: Position) {
        let mut w = self.lock();
        if position <= w.prefix {
            return; // a duplicate report; nothing to learn
        }
        let i = (position - w.prefix - 1) as usize;
        if w.beyond.len() <= i {
            w.beyond.resize(i + 1, false);
        }
        w.beyond[i] = true;
        let mut advanced = 0;
        while w.beyond.front() == Some(&true) {
            w.beyond.pop_front();
            advanced += 1;
        }
        if advanced > 0 {
            w.prefix += advanced;
            self.prefix.store(w.prefix, Ordering::Release);
        }
        self.confirmed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that Kafka refused `position`; the first refusal is kept.
    pub fn refuse(&self, position: Position, error: KafkaError) {
        let mut w = self.lock();
        if w.failure.is_none() {
            w.failure = Some((position, error));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The relay producer's context: each message carries its log position as
/// the delivery opaque, and its report lands in the [`DeliveredPrefix`].
pub struct ReportsTo(pub Arc<DeliveredPrefix>);

impl ClientContext for ReportsTo {}

impl ProducerContext for ReportsTo {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, position: usize) {
        match result {
            Ok(_) => self.0.confirm(position as Position),
            Err((error, message)) => {
                tracing::warn!(position, topic = message.topic(), error = %error, "kafka refused an event");
                self.0.refuse(position as Position, error.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_waits_for_every_earlier_position() {
        let d = DeliveredPrefix::new(10);
        d.confirm(12);
        d.confirm(14);
        assert_eq!(d.prefix(), 10, "11 is not confirmed yet");
        d.confirm(11);
        assert_eq!(d.prefix(), 12, "11 and 12 now; 13 is missing");
        d.confirm(13);
        assert_eq!(d.prefix(), 14);
        d.confirm(12);
        d.confirm(3);
        assert_eq!(d.prefix(), 14, "old and repeated reports change nothing");
        assert_eq!(d.confirmed(), 4);
    }

    #[test]
    fn in_order_reports_advance_one_by_one_and_the_first_refusal_is_kept() {
        let d = DeliveredPrefix::new(0);
        for p in 1..=1000 {
            d.confirm(p);
            assert_eq!(d.prefix(), p);
        }
        assert!(d.failure().is_none());
        d.refuse(1002, KafkaError::Canceled);
        d.refuse(1001, KafkaError::NoMessageReceived);
        let (position, error) = d.failure().unwrap();
        assert_eq!(position, 1002);
        assert_eq!(error, KafkaError::Canceled);
    }
}
