//! Group commit, the part every single-writer backend shares: collecting the
//! commits that queued up while the previous group was being synced, deciding
//! each one (expected versions, idempotency claims) against the durable state
//! plus the earlier commits of the same group, and answering every caller once
//! the group is durable. Backends only say how to look up durable state and how
//! to make a decided group durable.

use chrono::{DateTime, SubsecRound, Utc};
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use tokio::sync::oneshot;

use super::live::Live;

pub(crate) use super::Commit;
use super::{
    Appended, CommitOutcome, IdempotencyClaim, IdempotencyRecord, Position, RecordedEvent,
    StoreError,
};

/// Most commits grouped together; bounds the latency one group adds.
pub(crate) const MAX_GROUP: usize = 1024;

/// Where a caller hears the outcome of its commit.
pub(crate) type Reply = oneshot::Sender<Result<CommitOutcome, StoreError>>;

/// A message to a writer thread.
pub(crate) enum Request {
    /// Commit this and answer on the channel.
    Commit(Commit, Reply),
    /// Finish, make everything durable and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Sends a commit to a writer thread and waits for its answer.
pub(crate) async fn submit(
    writer: &std::sync::mpsc::Sender<Request>,
    commit: Commit,
) -> Result<CommitOutcome, StoreError> {
    let (reply, outcome) = oneshot::channel();
    writer
        .send(Request::Commit(commit, reply))
        .map_err(|_| StoreError::Closed)?;
    outcome.await.map_err(|_| StoreError::Closed)?
}

/// Asks a writer thread to finish and waits until every answer is given.
pub(crate) async fn stop(writer: &std::sync::mpsc::Sender<Request>) {
    let (done, wait) = oneshot::channel();
    if writer.send(Request::Shutdown(done)).is_ok() {
        let _ = wait.await;
    }
}

/// Commits taken from the queue together, and a shutdown request that came
/// after them, if any.
pub(crate) type Group = (Vec<(Commit, Reply)>, Option<oneshot::Sender<()>>);

/// The next group from the queue: blocks for the first request, then takes
/// whatever else is already waiting. `None` when every sender is gone.
pub(crate) fn next_group(requests: &Receiver<Request>) -> Option<Group> {
    let mut next = Some(first_request(requests)?);
    let mut group = Vec::new();
    while let Some(request) = next.take() {
        match request {
            Request::Commit(c, reply) => group.push((c, reply)),
            Request::Shutdown(done) => return Some((group, Some(done))),
        }
        if group.len() < MAX_GROUP {
            next = requests.try_recv().ok();
        }
    }
    Some((group, None))
}

/// How long the writer polls for the next request before it sleeps. On a
/// virtual machine an idle vCPU is halted, and waking it costs tens of
/// microseconds — as much as a third of a sync — on every commit. Between
/// polls the writer yields its core: when the threads that make the next
/// requests (HTTP handlers, the clients of the group just answered) are
/// runnable they run at once instead of waiting for the poll to give up,
/// and when nothing else is runnable the yield returns at once and the vCPU
/// stays awake.
const SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// Waits for the next request: polls briefly, then blocks.
fn first_request(requests: &Receiver<Request>) -> Option<Request> {
    let started = std::time::Instant::now();
    loop {
        match requests.try_recv() {
            Ok(r) => return Some(r),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) if started.elapsed() < SPIN => {
                std::thread::yield_now()
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => return requests.recv().ok(),
        }
    }
}

/// What a backend knows durably, asked while a group is decided.
pub(crate) trait DurableState {
    /// The stream's last durable version (0 if none).
    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError>;
    /// The durable record of an idempotency key, if claimed.
    fn claimed(&mut self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
}

/// The fate of one commit of a group.
pub(crate) enum Decision {
    /// Written; one entry per stream write.
    Write(Vec<Appended>),
    /// Its key was claimed before: answer with the first outcome.
    Replay(IdempotencyRecord),
    /// Refused (version conflict, malformed).
    Refuse(StoreError),
}

/// A commit accepted into the group, ready to be made durable.
pub(crate) struct Accepted {
    /// Its events with positions and versions assigned, in order.
    pub records: Vec<RecordedEvent>,
    /// Its idempotency claim, stored with the events.
    pub claim: Option<IdempotencyClaim>,
}

/// A decided group.
pub(crate) struct Plan {
    /// One decision per commit, in queue order.
    pub decisions: Vec<Decision>,
    /// The accepted commits, in position order.
    pub accepted: Vec<Accepted>,
    /// Stream versions after the group.
    pub versions: HashMap<String, u64>,
    /// Idempotency records the group claims.
    pub claims: HashMap<String, IdempotencyRecord>,
    /// Events the group writes.
    pub event_count: u64,
}

/// Decides every commit of a group. Commits are checked against the durable
/// state as changed by the earlier commits of the same group; positions are
/// assigned from `next_position` without gaps (refused commits take none).
pub(crate) fn plan(
    commits: &mut [(Commit, Reply)],
    next_position: Position,
    now: DateTime<Utc>,
    durable: &mut impl DurableState,
) -> Result<Plan, StoreError> {
    let mut plan = Plan {
        decisions: Vec::with_capacity(commits.len()),
        accepted: Vec::new(),
        versions: HashMap::new(),
        claims: HashMap::new(),
        event_count: 0,
    };
    let now = now.trunc_subsecs(6);
    let mut position = next_position;
    for (commit, _) in commits.iter_mut() {
        if let Err(e) = validate(commit) {
            plan.decisions.push(Decision::Refuse(e));
            continue;
        }
        if let Some(claim) = &commit.idempotency {
            let prior = match plan.claims.get(&claim.key) {
                Some(r) => Some(r.clone()),
                None => durable.claimed(&claim.key)?,
            };
            if let Some(record) = prior {
                plan.decisions.push(Decision::Replay(record));
                continue;
            }
        }
        // Check every write before taking any, so a refused commit leaves no trace.
        // Versions this commit has taken so far (commits write few streams).
        let mut local: Vec<(&str, u64)> = Vec::with_capacity(commit.writes.len());
        let mut starts = Vec::with_capacity(commit.writes.len());
        let mut refused = None;
        for w in &commit.writes {
            let current = match local
                .iter()
                .rev()
                .find(|(s, _)| *s == w.stream)
                .map(|(_, v)| v)
                .or_else(|| plan.versions.get(&w.stream))
            {
                Some(v) => *v,
                None => durable.stream_version(&w.stream)?,
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
            local.push((&w.stream, current + w.events.len() as u64));
        }
        if let Some(e) = refused {
            plan.decisions.push(Decision::Refuse(e));
            continue;
        }
        let mut appended = Vec::with_capacity(commit.writes.len());
        let mut records = Vec::new();
        for (w, start) in commit.writes.iter_mut().zip(starts) {
            let mut version = start;
            let written = w.events.len();
            // The events move into the records: the group owns them now.
            for mut event in std::mem::take(&mut w.events) {
                version += 1;
                // Stores keep microseconds: normalise now, so what is served
                // from memory equals what is later read from disk.
                event.metadata.occurred_at = event.metadata.occurred_at.trunc_subsecs(6);
                records.push(RecordedEvent {
                    position,
                    stream: w.stream.clone(),
                    version,
                    recorded_at: now,
                    event,
                });
                position += 1;
            }
            plan.versions.insert(w.stream.clone(), version);
            appended.push(Appended {
                version,
                last_position: if written == 0 { 0 } else { position - 1 },
            });
        }
        if let Some(claim) = &commit.idempotency {
            plan.claims.insert(
                claim.key.clone(),
                IdempotencyRecord {
                    key: claim.key.clone(),
                    fingerprint: claim.fingerprint.clone(),
                    outcome: claim.outcome.clone(),
                },
            );
        }
        plan.accepted.push(Accepted {
            records,
            claim: commit.idempotency.take(),
        });
        plan.decisions.push(Decision::Write(appended));
    }
    plan.event_count = position - next_position;
    Ok(plan)
}

/// Publishes a durable group's events to the live edge, then answers its
/// callers, so a caller that reads after its answer finds its events. Done
/// on the writer's own thread: handing it to another thread costs a wake-up
/// on the critical path of every group, more than the work itself (see
/// `docs/benchmarks.md`, event store, session 15).
pub(crate) fn publish_and_answer(
    live: &Live,
    accepted: Vec<Accepted>,
    group: Vec<(Commit, Reply)>,
    decisions: Vec<Decision>,
) {
    live.publish(accepted.into_iter().flat_map(|a| a.records).collect());
    answer(group, decisions);
}

/// Answers every caller of a group that is now durable.
fn answer(group: Vec<(Commit, Reply)>, decisions: Vec<Decision>) {
    for ((_, reply), decision) in group.into_iter().zip(decisions) {
        let _ = reply.send(match decision {
            Decision::Write(a) => Ok(CommitOutcome::Committed(a)),
            Decision::Replay(r) => Ok(CommitOutcome::Replayed(r)),
            Decision::Refuse(e) => Err(e),
        });
    }
}

/// Answers every caller of a group that could not be made durable.
pub(crate) fn fail(group: Vec<(Commit, Reply)>, error: &StoreError) {
    let message = error.to_string();
    for (_, reply) in group {
        let _ = reply.send(Err(StoreError::Backend(message.clone())));
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
