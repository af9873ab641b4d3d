//! The embedded store's file: SQLite in WAL mode. Opening (pragmas, schema,
//! the integrity check that refuses a damaged file) and the mapping between
//! rows and [`RecordedEvent`]s, with a CRC per record so a damaged record is
//! reported rather than returned.

use chrono::{DateTime, Utc};
use o2ohub_events::{Actor, Role};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;
use uuid::Uuid;

use crate::store::{EventMetadata, NewEvent, Position, RecordedEvent, StoreError};

/// `O2OH` in ASCII: marks a SQLite file as an o2ohub store.
const APPLICATION_ID: i64 = 0x4F32_4F48;
/// Page size of new store files.
const PAGE_SIZE: u32 = 2048;
/// Bumped when the table layout changes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB,
    actor_role     TEXT    NOT NULL,
    actor_subject  TEXT    NOT NULL,
    crc            INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream, version);
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    position    INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The column list every event query selects, in [`row_to_event`] order.
pub(super) const EVENT_COLUMNS: &str =
    "position, stream, version, event_id, event_type, schema_version, payload, \
     occurred_at, recorded_at, correlation_id, causation_id, actor_role, actor_subject, crc";

/// Opens the writer connection: creates the file and schema if absent, checks
/// an existing one, and sets durability pragmas.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let existed = path.exists()
        && std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
    let conn = Connection::open(path).map_err(|e| damaged(path, 0, &e.to_string()))?;
    if existed {
        check_identity(&conn, path)?;
    }
    // WAL + synchronous=FULL: a commit returns only after the WAL is fsync'd.
    // SQLite's WAL recovery discards a torn tail frame on the next open.
    if !existed {
        // Must precede the first write. Smaller pages mean fewer WAL bytes per
        // commit: appends to random streams each dirty one index page.
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| damaged(path, 0, &e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "{}: could not enable WAL (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA cache_size = -4096;
         PRAGMA temp_store = MEMORY;",
    )?;
    if existed {
        check_integrity(&conn, path)?;
    } else {
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
    }
    Ok(conn)
}

/// Runs in its own thread: copies committed WAL frames into the main file
/// (PASSIVE checkpoints, which never block the writer), so that the writer's
/// own periodic checkpoint only has a short tail left and the WAL can restart
/// from its beginning instead of growing. Stops when `running` turns false.
pub(super) fn checkpoint_loop(path: &Path, running: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let Ok(conn) = Connection::open(path) else {
        return;
    };
    let _ = conn.execute_batch("PRAGMA synchronous = FULL;");
    while running.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(5));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "background WAL checkpoint failed; will retry");
        }
    }
}

/// Opens a reader connection (queries only).
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -32768;")?;
    Ok(conn)
}

fn check_identity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| damaged(path, 0, &format!("not a readable SQLite file ({e})")))?;
    if app_id != APPLICATION_ID {
        return Err(damaged(path, 0, "this file is not an o2ohub event store"));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "{} has store schema {version}; this build reads schema {SCHEMA_VERSION}",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a damaged file: SQLite's structural check, then the tail record's
/// CRC and the gap-free numbering of positions.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let verdict: Result<String, rusqlite::Error> =
        conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
    match verdict {
        Ok(v) if v == "ok" => {}
        Ok(v) => return Err(damaged(path, last_good_position(conn), &v)),
        Err(e) => return Err(damaged(path, last_good_position(conn), &e.to_string())),
    }
    let (max, count): (Option<i64>, i64) =
        conn.query_row("SELECT max(position), count(*) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let max = max.unwrap_or(0);
    if max != count {
        return Err(damaged(
            path,
            last_good_position(conn),
            &format!("{count} events but the last position is {max}: the log has gaps"),
        ));
    }
    if max > 0 {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position = ?1");
        conn.query_row(&sql, [max], row_to_event)
            .map_err(|e| damaged(path, last_good_position(conn), &e.to_string()))?
            .map_err(|detail| damaged(path, last_good_position(conn), &detail))?;
    }
    Ok(())
}

/// Scans the log in order and returns the last position that reads back
/// intact (a best effort on a damaged file).
fn last_good_position(conn: &Connection) -> Position {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY position");
    let Ok(mut stmt) = conn.prepare(&sql) else {
        return 0;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return 0;
    };
    let mut last = 0;
    while let Ok(Some(row)) = rows.next() {
        match row_to_event(row) {
            Ok(Ok(e)) if e.position == last + 1 => last = e.position,
            _ => break,
        }
    }
    last
}

fn damaged(path: &Path, last_good_position: Position, detail: &str) -> StoreError {
    StoreError::Corrupt {
        file: path.to_path_buf(),
        last_good_position,
        detail: detail.to_owned(),
    }
}

/// Microseconds since the epoch: the stored form of instants.
pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The CRC of a record over every stored field.
pub(super) fn checksum(e: &RecordedEvent) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&e.position.to_le_bytes());
    h.update(e.stream.as_bytes());
    h.update(&e.version.to_le_bytes());
    h.update(e.event.event_id.as_bytes());
    h.update(e.event.event_type.as_bytes());
    h.update(&e.event.schema_version.to_le_bytes());
    h.update(e.event.payload.as_bytes());
    h.update(&micros(e.event.metadata.occurred_at).to_le_bytes());
    h.update(&micros(e.recorded_at).to_le_bytes());
    h.update(e.event.metadata.correlation_id.as_bytes());
    if let Some(c) = e.event.metadata.causation_id {
        h.update(c.as_bytes());
    }
    h.update(e.event.metadata.actor.role.as_str().as_bytes());
    h.update(e.event.metadata.actor.subject.as_bytes());
    h.finalize()
}

/// Inserts one record.
pub(super) fn insert_event(conn: &Connection, e: &RecordedEvent) -> Result<(), rusqlite::Error> {
    let m = &e.event.metadata;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, payload, \
         occurred_at, recorded_at, correlation_id, causation_id, actor_role, actor_subject, crc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    stmt.execute(params![
        e.position as i64,
        e.stream,
        e.version as i64,
        e.event.event_id.as_bytes().as_slice(),
        e.event.event_type,
        e.event.schema_version,
        e.event.payload,
        micros(m.occurred_at),
        micros(e.recorded_at),
        m.correlation_id.as_bytes().as_slice(),
        m.causation_id.as_ref().map(|c| c.as_bytes().to_vec()),
        m.actor.role.as_str(),
        m.actor.subject,
        checksum(e),
    ])?;
    Ok(())
}

/// Reads a row selected with [`EVENT_COLUMNS`]; the inner `Err` is a record
/// whose CRC or fields do not check out.
pub(super) fn row_to_event(row: &Row<'_>) -> rusqlite::Result<Result<RecordedEvent, String>> {
    let position: i64 = row.get(0)?;
    let uuid = |idx: usize| -> rusqlite::Result<Option<Uuid>> {
        let bytes: Option<Vec<u8>> = row.get(idx)?;
        Ok(bytes.and_then(|b| Uuid::from_slice(&b).ok()))
    };
    let role: String = row.get(11)?;
    let (Some(event_id), Some(correlation_id), Some(role)) =
        (uuid(3)?, uuid(9)?, Role::parse(&role))
    else {
        return Ok(Err(format!(
            "record at position {position} has malformed ids or role"
        )));
    };
    let event = RecordedEvent {
        position: position as u64,
        stream: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        recorded_at: from_micros(row.get(8)?),
        event: NewEvent {
            event_id,
            event_type: row.get(4)?,
            schema_version: row.get(5)?,
            payload: row.get(6)?,
            metadata: EventMetadata {
                occurred_at: from_micros(row.get(7)?),
                correlation_id,
                causation_id: uuid(10)?,
                actor: Actor {
                    role,
                    subject: row.get(12)?,
                },
            },
        },
    };
    let stored_crc: u32 = row.get(13)?;
    if checksum(&event) != stored_crc {
        return Ok(Err(format!(
            "record at position {position} fails its checksum"
        )));
    }
    Ok(Ok(event))
}

/// The current version of a stream (0 if it has no events).
pub(super) fn stream_version(conn: &Connection, stream: &str) -> Result<u64, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("SELECT max(version) FROM events WHERE stream = ?1")?;
    let v: Option<i64> = stmt.query_row([stream], |r| r.get(0))?;
    Ok(v.unwrap_or(0) as u64)
}

/// The last committed position.
pub(super) fn head_position(conn: &Connection) -> Result<Position, rusqlite::Error> {
    let v: Option<i64> = conn.query_row("SELECT max(position) FROM events", [], |r| r.get(0))?;
    Ok(v.unwrap_or(0) as u64)
}

/// The idempotency record of a key.
pub(super) fn idempotency(
    conn: &Connection,
    key: &str,
) -> Result<Option<crate::store::IdempotencyRecord>, rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached("SELECT fingerprint, outcome FROM idempotency WHERE key = ?1")?;
    stmt.query_row([key], |r| {
        Ok(crate::store::IdempotencyRecord {
            key: key.to_owned(),
            fingerprint: r.get(0)?,
            outcome: r.get(1)?,
        })
    })
    .optional()
}
