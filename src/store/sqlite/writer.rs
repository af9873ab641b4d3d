//! The SQLite backend's writer thread: each group of commits (see
//! [`crate::store::group`]) is one SQLite transaction, made durable by one
//! sync of the WAL.

use chrono::Utc;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use super::schema;
use crate::store::group::{self, Commit, DurableState, Plan, Reply, Request};
use crate::store::live::Live;
use crate::store::{IdempotencyRecord, Position, StoreError};

/// Events written between the writer's own checkpoints. Under continuous
/// load a background checkpoint can never catch up with the last frame, so the
/// writer finishes the tail itself; the next commit then restarts the WAL.
const EVENTS_PER_CHECKPOINT: u64 = 16_384;
/// Stream versions cached before the cache is dropped and refilled from disk.
const MAX_CACHED_STREAMS: usize = 1_000_000;

/// The writer's state: the connection and what it knows without asking it.
pub(super) struct Writer {
    conn: Connection,
    live: Arc<Live>,
    /// Last version of recently written streams; authoritative because this
    /// thread is the only writer.
    versions: HashMap<String, u64>,
    /// The next global position to assign.
    next_position: Position,
    /// Events written since the writer last checkpointed.
    since_checkpoint: u64,
}

/// Durable state as the open transaction sees it, through the version cache.
struct Lookup<'a> {
    tx: &'a Transaction<'a>,
    versions: &'a HashMap<String, u64>,
}

impl DurableState for Lookup<'_> {
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        match self.versions.get(stream) {
            Some(v) => Ok(*v),
            None => Ok(schema::stream_version(self.tx, stream)?),
        }
    }

    fn claimed(&mut self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(schema::idempotency(self.tx, key)?)
    }
}

impl Writer {
    pub(super) fn new(conn: Connection, live: Arc<Live>) -> Result<Self, StoreError> {
        let head = schema::head_position(&conn)?;
        Ok(Writer {
            conn,
            live,
            versions: HashMap::new(),
            next_position: head + 1,
            since_checkpoint: 0,
        })
    }

    /// Runs until shutdown or until every sender is gone.
    pub(super) fn run(mut self, requests: Receiver<Request>) {
        while let Some((group, shutdown)) = group::next_group(&requests) {
            if !group.is_empty() {
                self.commit_group(group);
            }
            if let Some(done) = shutdown {
                // Fold the WAL into the main file so a copy of the .db alone is whole.
                let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                self.live.close();
                let _ = done.send(());
                return;
            }
        }
        self.live.close();
    }

    fn commit_group(&mut self, mut group: Vec<(Commit, Reply)>) {
        match self.write_group(&mut group) {
            Ok(plan) => {
                self.next_position += plan.event_count;
                self.since_checkpoint += plan.event_count;
                if self.versions.len() + plan.versions.len() > MAX_CACHED_STREAMS {
                    self.versions.clear();
                }
                self.versions.extend(plan.versions);
                group::publish_and_answer(&self.live, plan.accepted, group, plan.decisions);
                // After the answers: the callers of this group do not wait for it.
                if self.since_checkpoint >= EVENTS_PER_CHECKPOINT {
                    self.since_checkpoint = 0;
                    if let Err(e) =
                        self.conn
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                    }
                }
            }
            // Nothing of the group is stored; every member hears why.
            Err(e) => group::fail(group, &e),
        }
    }

    /// Decides and writes a whole group in one transaction.
    fn write_group(&mut self, group: &mut [(Commit, Reply)]) -> Result<Plan, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let plan = group::plan(
            group,
            self.next_position,
            Utc::now(),
            &mut Lookup {
                tx: &tx,
                versions: &self.versions,
            },
        )?;
        for accepted in &plan.accepted {
            for record in &accepted.records {
                schema::insert_event(&tx, record)?;
            }
            if let Some(claim) = &accepted.claim {
                let position = accepted
                    .records
                    .last()
                    .map(|r| r.position)
                    .unwrap_or(self.next_position - 1);
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO idempotency (key, fingerprint, outcome, position) VALUES (?1, ?2, ?3, ?4)",
                )?;
                stmt.execute(params![
                    claim.key,
                    claim.fingerprint,
                    claim.outcome,
                    position as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(plan)
    }
}
