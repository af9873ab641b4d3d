//! Online backup of the embedded log: a consistent, durable prefix of the log
//! copied while a hub keeps writing to it, with no lock and no help from the
//! writer (so the commit path is untouched).
//!
//! Why it is consistent: segments are append-only and every record is one
//! whole commit with its own CRC, written at the end of the data. The copy
//! walks the segments in order and keeps records while each decodes intact
//! and starts exactly at the next position; the first record that is not
//! there yet, is still being written (a torn view fails its CRC) or leaves a
//! gap ends the copy. What remains is positions `1..=head`, exactly as the
//! source holds them — never half a commit, never a hole.
//!
//! Why it is committed: after reading a segment the backup `fdatasync`s the
//! source file, so every byte it read is durable on the source disk too; a
//! record whose writer had not yet synced becomes durable now and would be
//! recovered by the source after any crash. So the copy never holds an event
//! that the source could lose.
//!
//! The copy is a data directory: `log/` (each segment re-padded with zeros to
//! its size, as the store creates them), `vault/` (the consumers' wrapped
//! PII keys, copied after the log so every key an event of the prefix needs
//! is there) and `BACKUP.json`. Read-model snapshots are left out (the
//! restored hub folds them again from its log) and so are `secrets/` (keep
//! keys apart from the data they protect). It is staged beside the target
//! and renamed into place, so a half-made backup is never mistaken for one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::format::{self, Invalid, HEADER};
use super::segment::{sync_dir, MAGIC, SEGMENT_HEADER};
use super::LOG_DIR;
use crate::store::{Position, StoreError};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The last position copied: the copy holds positions `1..=head`.
    pub head: Position,
    /// Segment files written.
    pub segments: usize,
    /// Commit records copied.
    pub records: usize,
    /// Bytes of records copied.
    pub record_bytes: u64,
    /// Vault key files copied.
    pub vault_keys: usize,
}

/// A segment of the source as found by the backup.
struct SourceSegment {
    path: PathBuf,
    first_position: Position,
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> StoreError {
    let (path, what) = (path.to_path_buf(), what.to_owned());
    move |e| StoreError::Backend(format!("backup: cannot {what} {}: {e}", path.display()))
}

/// The source's segments in position order.
fn source_segments(log: &Path) -> Result<Vec<SourceSegment>, StoreError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(log).map_err(io(log, "list"))? {
        let path = entry.map_err(io(log, "list"))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|stem| stem.parse::<Position>().ok());
        if let Some(first_position) = first {
            found.push(SourceSegment {
                path,
                first_position,
            });
        }
    }
    found.sort_by_key(|s| s.first_position);
    Ok(found)
}

/// The intact records at the start of one segment's bytes that continue the
/// log at `next`: their byte length and the next position after them, and
/// whether the segment's data ended cleanly (so the next segment may follow).
fn intact_prefix(bytes: &[u8], mut next: Position) -> (usize, Position, usize, bool) {
    let mut offset = SEGMENT_HEADER as usize;
    let mut records = 0;
    loop {
        let rest = &bytes[offset..];
        // A full segment ends with fewer bytes than a header: zeros.
        if rest.len() < HEADER && rest.iter().all(|b| *b == 0) {
            return (offset, next, records, true);
        }
        match format::decode(rest) {
            Ok((record, size)) if record.first_position == next => {
                next += record.events.len() as u64;
                offset += size;
                records += 1;
            }
            Err(Invalid::End) => return (offset, next, records, true),
            // Being written, torn in our view, or not the next position.
            Ok(_) | Err(Invalid::Damaged(_)) => return (offset, next, records, false),
        }
    }
}

/// Writes `prefix` then zeros up to `size` bytes, synced.
fn write_padded(path: &Path, prefix: &[u8], size: u64) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path, "create"))?;
    file.write_all(prefix).map_err(io(path, "write"))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size.saturating_sub(prefix.len() as u64);
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n]).map_err(io(path, "write"))?;
        left -= n as u64;
    }
    file.sync_all().map_err(io(path, "sync"))
}

/// Copies the log's consistent, durable prefix from `source_log` into `target_log`.
fn copy_log(
    source_log: &Path,
    target_log: &Path,
    report: &mut BackupReport,
) -> Result<(), StoreError> {
    let mut next: Position = 1;
    for segment in source_segments(source_log)? {
        let path = &segment.path;
        let mut file = File::open(path).map_err(io(path, "open"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(path, "read"))?;
        // Durable before it counts: what the log wrote through the page
        // cache (where direct writes are refused) may not be on the source
        // disk yet, and this makes it reach it.
        file.sync_data().map_err(io(path, "sync"))?;
        if bytes.len() < SEGMENT_HEADER as usize || bytes[..8] != MAGIC[..] {
            // A segment still being created (not the spare renamed into place).
            break;
        }
        let size = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
        if size != bytes.len() as u64 {
            // Still being zero-filled: it holds no record yet.
            break;
        }
        let (end, after, records, clean) = intact_prefix(&bytes, next);
        if records > 0 {
            let target = super::segment::segment_path(target_log, next);
            write_padded(&target, &bytes[..end], size)?;
            report.segments += 1;
            report.records += records;
            report.record_bytes += (end - SEGMENT_HEADER as usize) as u64;
            next = after;
        }
        if !clean || records == 0 {
            break;
        }
    }
    report.head = next - 1;
    sync_dir(target_log).map_err(io(target_log, "sync"))
}

/// Copies the `*.key` files of `from` (flat) into `to`; returns how many.
/// (A key being created is a `.tmp` until renamed: not yet a key.)
fn copy_keys(from: &Path, to: &Path) -> Result<usize, StoreError> {
    std::fs::create_dir_all(to).map_err(io(to, "create"))?;
    let mut copied = 0;
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(from, "list")(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(from, "list"))?;
        let is_key = entry.path().extension().is_some_and(|x| x == "key");
        if !is_key || !entry.file_type().map_err(io(from, "list"))?.is_file() {
            continue;
        }
        let target = to.join(entry.file_name());
        match std::fs::copy(entry.path(), &target) {
            Ok(_) => copied += 1,
            // Erased while we copied: crypto-shredding wins.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&target, "copy into")(e)),
        }
        File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io(&target, "sync"))?;
    }
    sync_dir(to).map_err(io(to, "sync"))?;
    Ok(copied)
}

/// Backs up the store of `data_dir` into the new directory `to`, which
/// becomes a data directory a hub can start on. Safe while a hub is serving
/// from `data_dir`; `to` must not exist.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    let source_log = data_dir.join(LOG_DIR);
    if !source_log.is_dir() {
        return Err(StoreError::Invalid(format!(
            "{} holds no event log (no {LOG_DIR}/ directory)",
            data_dir.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Invalid(format!(
            "{} already exists; a backup goes into a new directory",
            to.display()
        )));
    }
    let name = to
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StoreError::Invalid(format!("{} is not a directory name", to.display())))?;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent, "create"))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        let target_log = staging.join(LOG_DIR);
        std::fs::create_dir_all(&target_log).map_err(io(&target_log, "create"))?;
        let mut report = BackupReport {
            head: 0,
            segments: 0,
            records: 0,
            record_bytes: 0,
            vault_keys: 0,
        };
        copy_log(&source_log, &target_log, &mut report)?;
        report.vault_keys = copy_keys(&data_dir.join("vault"), &staging.join("vault"))?;
        let manifest = staging.join("BACKUP.json");
        let body = serde_json::json!({
            "head_position": report.head,
            "records": report.records,
            "segments": report.segments,
            "vault_keys": report.vault_keys,
            "source": data_dir.display().to_string(),
            "taken_at": chrono::Utc::now().to_rfc3339(),
        });
        std::fs::write(&manifest, format!("{body:#}\n")).map_err(io(&manifest, "write"))?;
        File::open(&manifest)
            .and_then(|f| f.sync_all())
            .map_err(io(&manifest, "sync"))?;
        sync_dir(&staging).map_err(io(&staging, "sync"))?;
        std::fs::rename(&staging, to).map_err(io(to, "move the staged backup to"))?;
        sync_dir(&parent).map_err(io(&parent, "sync"))?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventMetadata, NewEvent, RecordedEvent};
    use chrono::Utc;
    use o2ohub_events::{Actor, Role};
    use uuid::Uuid;

    fn record(out: &mut Vec<u8>, first: Position, events: u64) {
        let recorded: Vec<RecordedEvent> = (0..events)
            .map(|i| RecordedEvent {
                position: first + i,
                stream: "s".into(),
                version: first + i,
                recorded_at: Utc::now(),
                event: NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "T".into(),
                    schema_version: 1,
                    payload: "{}".into(),
                    metadata: EventMetadata {
                        occurred_at: Utc::now(),
                        correlation_id: Uuid::now_v7(),
                        causation_id: None,
                        actor: Actor {
                            role: Role::System,
                            subject: "t".into(),
                        },
                    },
                },
            })
            .collect();
        format::encode(out, first, None, &recorded);
    }

    fn segment_with(records: &[(Position, u64)], size: usize) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(size as u64).to_le_bytes());
        for (first, n) in records {
            record(&mut bytes, *first, *n);
        }
        bytes.resize(size, 0);
        bytes
    }

    #[test]
    fn the_prefix_stops_at_a_torn_record_and_at_a_gap() {
        let whole = segment_with(&[(1, 2), (3, 1), (4, 3)], 4096);
        let (end, next, records, clean) = intact_prefix(&whole, 1);
        assert_eq!((next, records, clean), (7, 3, true));
        assert!(whole[end..].iter().all(|b| *b == 0));

        // The third record half-written: the first two are the prefix.
        let (two_end, ..) = intact_prefix(&segment_with(&[(1, 2), (3, 1)], 4096), 1);
        let mut torn = whole.clone();
        torn[two_end + 40..end].fill(0);
        assert_eq!(intact_prefix(&torn, 1), (two_end, 4, 2, false));

        // A record that does not continue the log is not taken.
        let gap = segment_with(&[(1, 2), (5, 1)], 4096);
        let (_, next, records, clean) = intact_prefix(&gap, 1);
        assert_eq!((next, records, clean), (3, 1, false));
        // Nor is a segment that starts elsewhere than expected.
        assert_eq!(intact_prefix(&whole, 2).2, 0);
    }
}
