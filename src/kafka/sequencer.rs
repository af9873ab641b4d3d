//! What a Kafka-fed worker applies, in which order, and which offsets it may
//! commit — pure bookkeeping, no IO.
//!
//! Two orderings:
//!
//! - [`Ordering::Global`] (a worker that owns every partition — a full copy
//!   of the read models, as an API replica keeps): events are re-sequenced
//!   by their global position across topics and partitions and applied
//!   exactly in log order, so the read models equal a rebuild from the
//!   store. An event arriving early waits in a buffer for its predecessors;
//!   a position below the next one expected is a re-send and is dropped.
//! - [`Ordering::Stream`] (workers of one group splitting the partitions):
//!   events are applied as they arrive, which keeps each aggregate's order
//!   (one stream lives in one partition); a stream version already applied
//!   is a re-send and is dropped.
//!
//! An offset may be committed once its message was applied or dropped and
//! so was every earlier message of its partition: the commit point of a
//! partition is its first still-buffered offset, else one past the last seen.

use o2ohub_events::Envelope;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How a worker orders what it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Log order across every topic: for a worker that owns every partition.
    Global,
    /// Per-aggregate order: for workers that split partitions in one group.
    Stream,
}

/// A partition of a topic.
pub type TopicPartition = (String, i32);

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Topic and partition.
    pub partition: TopicPartition,
    /// Offset in the partition.
    pub offset: i64,
}

/// What a message turned out to be.
#[derive(Debug, Clone)]
pub enum Arrival {
    /// An event this build can apply.
    Event(Box<Envelope>),
    /// An event of the log this build cannot read (set aside as poison): it
    /// holds its global position, which must be passed over, not waited for.
    Unreadable {
        /// Its global position.
        position: u64,
        /// Its stream.
        stream: String,
        /// Its stream version.
        version: u64,
    },
    /// Not an event of the log at all (set aside as poison).
    Foreign,
}

/// The part of the sequencer's state saved with the read models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Global: the next position to apply. Stream: one past the highest applied.
    pub next_position: u64,
    /// The last version applied (or passed over) of every stream.
    pub streams: HashMap<String, u64>,
    /// Events applied.
    pub events: u64,
    /// Re-sends dropped.
    pub duplicates: u64,
}

/// Offsets seen and still buffered in one partition.
#[derive(Debug)]
struct PartitionProgress {
    /// Highest offset received.
    seen: i64,
    /// Offsets whose message waits in the buffer.
    buffered: BTreeSet<i64>,
}

/// A message waiting for its predecessors (global ordering).
#[derive(Debug)]
struct Waiting {
    /// The event, or `None` for an unreadable event passed over.
    envelope: Option<Box<Envelope>>,
    /// Its stream and version.
    stream: String,
    /// Its stream version.
    version: u64,
    /// Where it came from.
    source: Source,
}

/// Orders, dedupes and tracks commit points.
#[derive(Debug)]
pub struct Sequencer {
    /// The chosen ordering.
    ordering: Ordering,
    /// What has been applied.
    applied: Applied,
    /// Global ordering: messages that arrived ahead of their turn.
    waiting: BTreeMap<u64, Waiting>,
    /// Per partition: what may be committed.
    partitions: BTreeMap<TopicPartition, PartitionProgress>,
}

impl Sequencer {
    /// A sequencer resuming from saved state (or `Applied::default()`).
    pub fn new(ordering: Ordering, mut applied: Applied) -> Self {
        applied.next_position = applied.next_position.max(1);
        Sequencer {
            ordering,
            applied,
            waiting: BTreeMap::new(),
            partitions: BTreeMap::new(),
        }
    }

    /// What has been applied, to save with the read models.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Messages waiting for an earlier position.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The position the next applied event must have (global ordering), for
    /// reports about a stalled worker.
    pub fn next_position(&self) -> u64 {
        self.applied.next_position
    }

    /// Whether this partition already delivered this offset (a broker may
    /// hand out a batch again; only a seek or a new assignment re-reads on
    /// purpose, and those reset the partition's bookkeeping).
    pub fn is_repeat(&self, source: &Source) -> bool {
        self.partitions
            .get(&source.partition)
            .is_some_and(|p| source.offset <= p.seen)
    }

    /// Takes one message; returns the events now ready, in the order to apply them.
    pub fn offer(&mut self, source: Source, arrival: Arrival) -> Vec<Envelope> {
        let progress =
            self.partitions
                .entry(source.partition.clone())
                .or_insert(PartitionProgress {
                    seen: -1,
                    buffered: BTreeSet::new(),
                });
        progress.seen = progress.seen.max(source.offset);
        let (position, stream, version, envelope) = match arrival {
            Arrival::Foreign => return Vec::new(),
            Arrival::Event(e) => (
                e.global_position,
                e.stream_id.clone(),
                e.stream_version,
                Some(e),
            ),
            Arrival::Unreadable {
                position,
                stream,
                version,
            } => (position, stream, version, None),
        };
        let done_in_stream = self.applied.streams.get(&stream).copied().unwrap_or(0);
        match self.ordering {
            Ordering::Stream => {
                if version <= done_in_stream {
                    self.applied.duplicates += 1;
                    return Vec::new();
                }
                self.mark(&stream, version, position);
                match envelope {
                    Some(e) => {
                        self.applied.events += 1;
                        vec![*e]
                    }
                    None => Vec::new(),
                }
            }
            Ordering::Global => {
                if position < self.applied.next_position || self.waiting.contains_key(&position) {
                    self.applied.duplicates += 1;
                    return Vec::new();
                }
                progress.buffered.insert(source.offset);
                self.waiting.insert(
                    position,
                    Waiting {
                        envelope,
                        stream,
                        version,
                        source,
                    },
                );
                self.drain()
            }
        }
    }

    /// Global ordering: applies the contiguous run at the head of the buffer.
    fn drain(&mut self) -> Vec<Envelope> {
        let mut ready = Vec::new();
        while let Some(w) = self.waiting.remove(&self.applied.next_position) {
            if let Some(p) = self.partitions.get_mut(&w.source.partition) {
                p.buffered.remove(&w.source.offset);
            }
            let position = self.applied.next_position;
            self.mark(&w.stream, w.version, position);
            if let Some(e) = w.envelope {
                self.applied.events += 1;
                ready.push(*e);
            }
        }
        ready
    }

    fn mark(&mut self, stream: &str, version: u64, position: u64) {
        let v = self.applied.streams.entry(stream.to_owned()).or_insert(0);
        *v = (*v).max(version);
        self.applied.next_position = self.applied.next_position.max(position + 1);
    }

    /// The offset to commit for every partition seen (the next message to
    /// read after a restart).
    pub fn commit_points(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .map(|(tp, p)| {
                (
                    tp.clone(),
                    p.buffered.first().copied().unwrap_or(p.seen + 1),
                )
            })
            .collect()
    }

    /// Forgets partitions no longer assigned (their buffered messages will be
    /// read again by whoever owns them; ours are dropped from the buffer).
    pub fn retain_partitions(&mut self, assigned: &BTreeSet<TopicPartition>) {
        self.partitions.retain(|tp, _| assigned.contains(tp));
        self.waiting
            .retain(|_, w| assigned.contains(&w.source.partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use o2ohub_events::{Actor, Event, RiderEvent, RiderId, RiderRegistered, VehicleType};
    use uuid::Uuid;

    fn event(position: u64, stream: &str, version: u64) -> Arrival {
        Arrival::Event(Box::new(Envelope {
            event_id: Uuid::now_v7(),
            stream_id: stream.into(),
            stream_version: version,
            global_position: position,
            schema_version: 1,
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
            correlation_id: Uuid::nil(),
            causation_id: None,
            actor: Actor::system("test"),
            event: Event::Rider(RiderEvent::Registered(RiderRegistered {
                rider_id: RiderId(Uuid::nil()),
                name: "r".into(),
                vehicle: VehicleType::Foot,
                capacity: 1,
            })),
        }))
    }

    fn at(topic: &str, partition: i32, offset: i64) -> Source {
        Source {
            partition: (topic.into(), partition),
            offset,
        }
    }

    fn positions(v: &[Envelope]) -> Vec<u64> {
        v.iter().map(|e| e.global_position).collect()
    }

    #[test]
    fn global_ordering_waits_for_predecessors_and_drops_resends() {
        let mut s = Sequencer::new(Ordering::Global, Applied::default());
        // Position 2 (orders) arrives before 1 (merchants).
        assert!(s
            .offer(at("orders", 0, 0), event(2, "order-a", 1))
            .is_empty());
        assert_eq!(s.waiting(), 1);
        assert_eq!(
            s.commit_points(),
            vec![(("orders".into(), 0), 0)],
            "a buffered message is not committed"
        );
        let ready = s.offer(at("merchants", 0, 0), event(1, "merchant-m", 1));
        assert_eq!(positions(&ready), vec![1, 2]);
        // A re-send of both after a relay restart is dropped.
        assert!(s
            .offer(at("merchants", 0, 1), event(1, "merchant-m", 1))
            .is_empty());
        assert!(s
            .offer(at("orders", 0, 1), event(2, "order-a", 1))
            .is_empty());
        assert_eq!(s.applied().duplicates, 2);
        assert_eq!(s.applied().events, 2);
        assert_eq!(
            s.commit_points(),
            vec![(("merchants".into(), 0), 2), (("orders".into(), 0), 2)]
        );
    }

    #[test]
    fn unreadable_events_are_passed_over_and_foreign_ones_ignored() {
        let mut s = Sequencer::new(Ordering::Global, Applied::default());
        assert!(s.offer(at("t", 0, 0), Arrival::Foreign).is_empty());
        assert!(s.offer(at("t", 0, 1), event(2, "order-a", 2)).is_empty());
        let ready = s.offer(
            at("t", 0, 2),
            Arrival::Unreadable {
                position: 1,
                stream: "order-a".into(),
                version: 1,
            },
        );
        assert_eq!(positions(&ready), vec![2]);
        assert_eq!(s.next_position(), 3);
        assert_eq!(s.commit_points(), vec![(("t".into(), 0), 3)]);
    }

    #[test]
    fn stream_ordering_applies_on_arrival_and_dedupes_by_version() {
        let mut s = Sequencer::new(Ordering::Stream, Applied::default());
        assert_eq!(
            positions(&s.offer(at("o", 1, 5), event(9, "order-a", 1))),
            vec![9]
        );
        assert_eq!(
            positions(&s.offer(at("o", 1, 6), event(12, "order-a", 2))),
            vec![12]
        );
        assert!(s.offer(at("o", 1, 7), event(9, "order-a", 1)).is_empty());
        assert_eq!(
            positions(&s.offer(at("o", 2, 0), event(3, "order-b", 1))),
            vec![3]
        );
        assert_eq!(s.applied().streams["order-a"], 2);
        assert!(s.is_repeat(&at("o", 1, 6)));
        assert!(!s.is_repeat(&at("o", 1, 8)));
        assert!(
            !s.is_repeat(&at("o", 3, 0)),
            "a new partition starts at any offset"
        );
        assert_eq!(s.applied().duplicates, 1);
    }

    #[test]
    fn resuming_from_saved_state_drops_what_was_applied() {
        let mut s = Sequencer::new(Ordering::Global, Applied::default());
        s.offer(at("t", 0, 0), event(1, "order-a", 1));
        let saved = s.applied().clone();
        let mut resumed = Sequencer::new(Ordering::Global, saved);
        assert!(resumed
            .offer(at("t", 0, 0), event(1, "order-a", 1))
            .is_empty());
        assert_eq!(
            positions(&resumed.offer(at("t", 0, 1), event(2, "order-a", 2))),
            vec![2]
        );
    }
}
