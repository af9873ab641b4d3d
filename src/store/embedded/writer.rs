//! The single writer thread and its group commit: appends queue up while the
//! previous transaction is being fsync'd, then all of them are checked and
//! written in one transaction and acknowledged by one sync.

use chrono::Utc;
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use tokio::sync::oneshot;

use super::live::Live;
use super::schema;
use crate::store::{
    Appended, Commit, CommitOutcome, IdempotencyRecord, Position, RecordedEvent, StoreError,
};

/// Most commits grouped into one transaction; bounds the latency one group adds.
const MAX_GROUP: usize = 1024;
/// Events written between the writer's own checkpoints. Under continuous
/// load a background checkpoint can never catch up with the last frame, so the
/// writer finishes the tail itself; the next commit then restarts the WAL.
const EVENTS_PER_CHECKPOINT: usize = 16_384;
/// Stream versions cached before the cache is dropped and refilled from disk.
const MAX_CACHED_STREAMS: usize = 1_000_000;

/// A message to the writer.
pub(super) enum Request {
    /// Commit this and answer on the channel.
    Commit(Commit, oneshot::Sender<Result<CommitOutcome, StoreError>>),
    /// Checkpoint the WAL into the main file and stop.
    Shutdown(oneshot::Sender<()>),
}

/// The outcome decided for one commit of a group, before the group is durable.
enum Decision {
    Write(Vec<Appended>),
    Replay(IdempotencyRecord),
    Refuse(StoreError),
}

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
    since_checkpoint: usize,
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
        let mut group: Vec<(Commit, oneshot::Sender<Result<CommitOutcome, StoreError>>)> =
            Vec::new();
        while let Ok(first) = requests.recv() {
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(req) = next.take() {
                match req {
                    Request::Commit(c, reply) => group.push((c, reply)),
                    Request::Shutdown(done) => {
                        shutdown = Some(done);
                        break;
                    }
                }
                if group.len() < MAX_GROUP {
                    next = requests.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(&mut group);
            }
            if let Some(done) = shutdown {
                // Fold the WAL into the main file so a backup of the .db alone is whole.
                let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                self.live.close();
                let _ = done.send(());
                return;
            }
        }
        self.live.close();
    }

    fn commit_group(
        &mut self,
        group: &mut Vec<(Commit, oneshot::Sender<Result<CommitOutcome, StoreError>>)>,
    ) {
        let outcome = self.write_group(&mut group[..]);
        match outcome {
            Ok((decisions, recorded, overlay)) => {
                self.next_position += recorded.len() as u64;
                self.since_checkpoint += recorded.len();
                if self.versions.len() + overlay.len() > MAX_CACHED_STREAMS {
                    self.versions.clear();
                }
                self.versions.extend(overlay);
                self.live.publish(recorded);
                for ((_, reply), decision) in group.drain(..).zip(decisions) {
                    let _ = reply.send(match decision {
                        Decision::Write(a) => Ok(CommitOutcome::Committed(a)),
                        Decision::Replay(r) => Ok(CommitOutcome::Replayed(r)),
                        Decision::Refuse(e) => Err(e),
                    });
                }
                // After the replies: the clients of this group do not wait for it.
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
            Err(e) => {
                // Nothing of the group is stored; every member hears why.
                let message = e.to_string();
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
    }

    /// Decides and writes a whole group in one transaction. Returns each
    /// commit's decision, the records written and the new stream versions.
    #[allow(clippy::type_complexity)]
    fn write_group(
        &mut self,
        group: &mut [(Commit, oneshot::Sender<Result<CommitOutcome, StoreError>>)],
    ) -> Result<(Vec<Decision>, Vec<RecordedEvent>, HashMap<String, u64>), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let mut overlay: HashMap<String, u64> = HashMap::new();
        let mut claimed: HashMap<String, IdempotencyRecord> = HashMap::new();
        let mut recorded: Vec<RecordedEvent> = Vec::new();
        let mut decisions = Vec::with_capacity(group.len());
        let mut position = self.next_position;

        for (commit, _) in group.iter_mut() {
            if let Err(e) = validate(commit) {
                decisions.push(Decision::Refuse(e));
                continue;
            }
            if let Some(claim) = &commit.idempotency {
                let prior = match claimed.get(&claim.key) {
                    Some(r) => Some(r.clone()),
                    None => schema::idempotency(&tx, &claim.key)?,
                };
                if let Some(record) = prior {
                    decisions.push(Decision::Replay(record));
                    continue;
                }
            }
            // Check every write before writing any, against versions as they
            // stand after the earlier commits of this group.
            let mut local: HashMap<&str, u64> = HashMap::new();
            let mut starts = Vec::with_capacity(commit.writes.len());
            let mut refused = None;
            for w in &commit.writes {
                let current = match local
                    .get(w.stream.as_str())
                    .or_else(|| overlay.get(&w.stream))
                {
                    Some(v) => *v,
                    None => match self.versions.get(&w.stream) {
                        Some(v) => *v,
                        None => schema::stream_version(&tx, &w.stream)?,
                    },
                };
                if !w.expected.admits(current) {
                    refused = Some(StoreError::WrongExpectedVersion {
                        stream: w.stream.clone(),
                        expected: w.expected,
                        actual: current,
                    });
                    break;
                }
                starts.push(current);
                local.insert(&w.stream, current + w.events.len() as u64);
            }
            if let Some(e) = refused {
                decisions.push(Decision::Refuse(e));
                continue;
            }
            let mut appended = Vec::with_capacity(commit.writes.len());
            for (w, start) in commit.writes.iter_mut().zip(starts) {
                let mut version = start;
                let written = w.events.len();
                // The events move into the records: the group owns them now.
                for e in std::mem::take(&mut w.events) {
                    version += 1;
                    let record = RecordedEvent {
                        position,
                        stream: w.stream.clone(),
                        version,
                        recorded_at: now,
                        event: e,
                    };
                    schema::insert_event(&tx, &record)?;
                    recorded.push(record);
                    position += 1;
                }
                overlay.insert(w.stream.clone(), version);
                appended.push(Appended {
                    version,
                    last_position: if written == 0 { 0 } else { position - 1 },
                });
            }
            if let Some(claim) = &commit.idempotency {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO idempotency (key, fingerprint, outcome, position) VALUES (?1, ?2, ?3, ?4)",
                )?;
                stmt.execute(params![
                    claim.key,
                    claim.fingerprint,
                    claim.outcome,
                    (position - 1) as i64
                ])?;
                claimed.insert(
                    claim.key.clone(),
                    IdempotencyRecord {
                        key: claim.key.clone(),
                        fingerprint: claim.fingerprint.clone(),
                        outcome: claim.outcome.clone(),
                    },
                );
            }
            decisions.push(Decision::Write(appended));
        }
        tx.commit()?;
        Ok((decisions, recorded, overlay))
    }
}

fn validate(commit: &Commit) -> Result<(), StoreError> {
    if commit.writes.is_empty() && commit.idempotency.is_none() {
        return Err(StoreError::Invalid(
            "a commit needs at least one write or an idempotency claim".into(),
        ));
    }
    for w in &commit.writes {
        if w.stream.is_empty() || w.stream.len() > 512 {
            return Err(StoreError::Invalid(
                "stream names are 1 to 512 bytes".into(),
            ));
        }
    }
    Ok(())
}
