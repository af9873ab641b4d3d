//! Segment files: the log is a directory of preallocated, zero-filled files
//! named by the position of their first event. Records are appended into the
//! active (last) segment; when a record does not fit, the next segment starts.
//! Zero-filling ahead of time means a commit's `fdatasync` flushes data only,
//! never file-size metadata. This module also owns recovery: scanning the
//! segments on open, discarding a torn tail, refusing real damage.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use super::format::{self, Invalid, Record, HEADER};
use crate::store::{Position, StoreError};

/// Every segment starts with this magic and its own size (u64 LE), so a file
/// that is not a segment, or a segment cut short, is recognised.
pub(super) const MAGIC: &[u8; 8] = b"O2OHLOG1";
/// Bytes before the first record of a segment.
pub(super) const SEGMENT_HEADER: u64 = 16;

/// A segment's file name: its first position, zero-padded so names sort.
pub(super) fn segment_path(dir: &Path, first_position: Position) -> PathBuf {
    dir.join(format!("{first_position:020}.seg"))
}

/// The spare segment while the preparer writes it (removed at recovery: a
/// crash may have cut it short).
fn spare_path(dir: &Path) -> PathBuf {
    dir.join("spare.seg.tmp")
}

/// The spare segment once zero-filled and synced, kept across restarts so a
/// start does not write another 64 MB of zeros.
fn ready_spare_path(dir: &Path) -> PathBuf {
    dir.join("spare.ready")
}

/// Creates a zero-filled segment of `bytes` at `path` with its header,
/// synced; gives up between megabytes once `cancelled` is set.
pub(super) fn create_zeroed(
    path: &Path,
    bytes: u64,
    cancelled: &AtomicBool,
) -> std::io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(MAGIC)?;
    file.write_all(&bytes.to_le_bytes())?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes - SEGMENT_HEADER;
    while left > 0 {
        if cancelled.load(Ordering::Acquire) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the store is closing",
            ));
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

/// Makes a directory entry change (create, rename) durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A segment file, open for positioned reads (and writes, for the active one).
pub(super) struct Segment {
    /// Its path.
    pub path: PathBuf,
    /// The open file; positioned I/O needs no seek, so it is shared.
    pub file: Arc<File>,
}

/// Keeps one zero-filled spare segment ready so the writer never waits for
/// preallocation when it moves to a new segment. Dropping it stops and joins
/// its thread (within a megabyte's write), so no thread of a closed store
/// renames files under a store opened after it.
pub(super) struct Preparer {
    dir: PathBuf,
    bytes: u64,
    ready: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
    /// Set when the store closes: the thread stops preparing.
    closing: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        let _ = self.wake.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Preparer {
    /// Starts the preparer thread, which prepares a spare right away unless
    /// the last run left one of this size ready.
    pub(super) fn start(dir: &Path, bytes: u64) -> Result<Self, StoreError> {
        let (wake, requests) = mpsc::channel::<()>();
        let left_ready = std::fs::metadata(ready_spare_path(dir)).is_ok_and(|m| m.len() == bytes);
        if !left_ready {
            // Of another size (the option changed), or none.
            let _ = std::fs::remove_file(ready_spare_path(dir));
        }
        let ready = Arc::new(AtomicBool::new(left_ready));
        let closing = Arc::new(AtomicBool::new(false));
        let (thread_dir, thread_ready, thread_closing) =
            (dir.to_path_buf(), ready.clone(), closing.clone());
        let thread = std::thread::Builder::new()
            .name("o2ohub-log-preparer".into())
            .spawn(move || {
                while requests.recv().is_ok() && !thread_closing.load(Ordering::Acquire) {
                    if thread_ready.load(Ordering::Acquire) {
                        continue;
                    }
                    // Written under a temporary name and renamed once synced:
                    // a spare under the ready name is whole.
                    let prepared = create_zeroed(&spare_path(&thread_dir), bytes, &thread_closing).and_then(|_| {
                        std::fs::rename(spare_path(&thread_dir), ready_spare_path(&thread_dir))
                    });
                    match prepared {
                        Ok(()) => thread_ready.store(true, Ordering::Release),
                        Err(_) if thread_closing.load(Ordering::Acquire) => return,
                        Err(e) => tracing::warn!(error = %e, "could not prepare a spare log segment; will create on demand"),
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the segment preparer: {e}")))?;
        let _ = wake.send(());
        Ok(Preparer {
            dir: dir.to_path_buf(),
            bytes,
            ready,
            wake,
            closing,
            thread: Some(thread),
        })
    }

    /// A new segment starting at `first_position`: the spare if it is ready,
    /// else one made now.
    pub(super) fn next_segment(&self, first_position: Position) -> Result<Segment, StoreError> {
        let path = segment_path(&self.dir, first_position);
        let io = |e: std::io::Error| {
            StoreError::Backend(format!("cannot create log segment {}: {e}", path.display()))
        };
        if self.ready.swap(false, Ordering::AcqRel) {
            std::fs::rename(ready_spare_path(&self.dir), &path).map_err(io)?;
        } else {
            create_zeroed(&path, self.bytes, &AtomicBool::new(false)).map_err(io)?;
        }
        sync_dir(&self.dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let _ = self.wake.send(());
        Ok(Segment {
            path,
            file: Arc::new(file),
        })
    }
}

/// What recovery found in the log directory.
pub(super) struct Recovered {
    /// Every segment, in order.
    pub segments: Vec<Segment>,
    /// Offset just past the last record of the last segment.
    pub end_offset: u64,
}

/// Scans every segment, handing each valid record to `found` in log order
/// (with its segment's index, offset and size) as it is decoded, so no more
/// than one segment's records are held at once. A damaged record that is
/// followed only by zeros in the last segment is a write cut short by a
/// crash: it was never acknowledged, so it is zeroed out (with a warning).
/// Any other damage refuses the store; what `found` was given before then
/// is to be discarded with it.
pub(super) fn recover(
    dir: &Path,
    found: &mut dyn FnMut(usize, u64, u32, &Record),
) -> Result<Recovered, StoreError> {
    let io = |e: std::io::Error| {
        StoreError::Backend(format!("cannot read log directory {}: {e}", dir.display()))
    };
    let _ = std::fs::remove_file(spare_path(dir));
    let mut names: Vec<(Position, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".seg") {
            match stem.parse::<Position>() {
                Ok(first) => names.push((first, path)),
                Err(_) => {
                    return Err(StoreError::Corrupt {
                        file: path.clone(),
                        last_good_position: 0,
                        detail: "a file in the log directory is not named like a segment".into(),
                    })
                }
            }
        }
    }
    names.sort();
    let mut scans: Vec<Scan> = Vec::with_capacity(names.len());
    // Events of the valid records so far, which must number the log's
    // positions without a gap.
    let mut last_good: Position = 0;
    // Whether an earlier segment ended in damage: records after it make
    // that damage the error to report (below), not a gap they would show.
    let mut damaged = false;
    for (index, (_, path)) in names.into_iter().enumerate() {
        let mut record_found = |offset: usize, size: usize, record: &Record| {
            if damaged {
                return Ok(());
            }
            if record.first_position != last_good + 1 {
                return Err(format!(
                    "a record starts at position {} where {} was expected",
                    record.first_position,
                    last_good + 1
                ));
            }
            last_good += record.events.len() as u64;
            found(index, offset as u64, size as u32, record);
            Ok(())
        };
        match scan(&path, &mut record_found).map_err(io)? {
            Ok(scanned) => {
                damaged |= scanned.damage.is_some();
                scans.push(scanned);
            }
            Err(StoreError::Corrupt { file, detail, .. }) => {
                return Err(StoreError::Corrupt {
                    file,
                    last_good_position: last_good,
                    detail,
                });
            }
            Err(other) => return Err(other),
        }
    }
    // The first damaged record decides: a write cut short by a crash is the
    // last thing in the log (zeros after it, nothing in any later segment,
    // which a group spanning two segments may have created). Anything else is
    // damage.
    if let Some(d) = scans.iter().position(|s| s.damage.is_some()) {
        let later_empty = scans[d + 1..]
            .iter()
            .all(|s| s.events == 0 && s.damage.is_none());
        let scan = &scans[d];
        let damage = scan.damage.as_ref().expect("found above");
        if !(damage.zeros_after && later_empty) {
            let last_good = scans[..=d].iter().map(|s| s.events).sum();
            return Err(StoreError::Corrupt {
                file: scan.path.clone(),
                last_good_position: last_good,
                detail: format!("{} at byte {}", damage.detail, damage.offset),
            });
        }
        tracing::warn!(
            file = %scan.path.display(), offset = damage.offset, bytes = damage.claimed_end - damage.offset,
            detail = %damage.detail,
            "discarding a torn record: a write cut short by a crash or a failed write, never acknowledged"
        );
        scan.file
            .write_all_at(
                &vec![0u8; damage.claimed_end - damage.offset],
                damage.offset as u64,
            )
            .and_then(|_| scan.file.sync_data())
            .map_err(io)?;
        for empty in scans.drain(d + 1..) {
            std::fs::remove_file(&empty.path).map_err(io)?;
        }
        sync_dir(dir).map_err(io)?;
        let scan = &mut scans[d];
        scan.end = scan.damage.take().map_or(scan.end, |d| d.offset);
    }
    let mut recovered = Recovered {
        segments: Vec::new(),
        end_offset: 0,
    };
    for scan in scans {
        recovered.end_offset = scan.end as u64;
        recovered.segments.push(Segment {
            path: scan.path,
            file: Arc::new(scan.file),
        });
    }
    Ok(recovered)
}

/// A damaged record found by a scan.
struct Damage {
    /// Where the record starts.
    offset: usize,
    /// Where its header says it ends (clamped to the file).
    claimed_end: usize,
    /// Whether only zeros follow that end.
    zeros_after: bool,
    /// What is wrong.
    detail: String,
}

/// One segment as found on disk.
struct Scan {
    path: PathBuf,
    file: File,
    /// Events in its valid records.
    events: u64,
    /// Offset after the last valid record.
    end: usize,
    /// The first damaged record, if any (scanning stops there).
    damage: Option<Damage>,
}

/// Reads one segment: checks its header, then decodes records until the end
/// of data or the first damaged record, handing each valid one to `found`
/// (which may refuse it: the segment is then corrupt with its reason). The
/// outer error is I/O, the inner a segment that is not whole.
fn scan(
    path: &Path,
    found: &mut dyn FnMut(usize, usize, &Record) -> Result<(), String>,
) -> std::io::Result<Result<Scan, StoreError>> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let bytes = std::fs::read(path)?;
    let corrupt = |detail: String| StoreError::Corrupt {
        file: path.to_path_buf(),
        last_good_position: 0,
        detail,
    };
    if bytes.len() < SEGMENT_HEADER as usize || &bytes[..8] != MAGIC {
        return Ok(Err(corrupt(
            "this file is not an o2ohub log segment".into(),
        )));
    }
    let stated = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
    if stated != bytes.len() as u64 {
        return Ok(Err(corrupt(format!(
            "the segment was created with {stated} bytes but has {}: it was truncated or overwritten",
            bytes.len()
        ))));
    }
    let mut scan = Scan {
        path: path.to_path_buf(),
        file,
        events: 0,
        end: 0,
        damage: None,
    };
    let mut offset = SEGMENT_HEADER as usize;
    loop {
        // A full segment ends with fewer bytes than a header: zeros.
        if bytes.len() - offset < HEADER && bytes[offset..].iter().all(|b| *b == 0) {
            break;
        }
        match format::decode(&bytes[offset..]) {
            Ok((record, size)) => {
                if let Err(detail) = found(offset, size, &record) {
                    return Ok(Err(corrupt(detail)));
                }
                scan.events += record.events.len() as u64;
                offset += size;
            }
            Err(Invalid::End) => {
                // Bytes after the end were never acknowledged: a group
                // whose first block was lost while a later one landed (a
                // failed write, or a crash). Left there, a later group
                // ending inside them would leave them as a damaged record
                // behind acknowledged ones; they are zeroed like a torn
                // record (below), or refused outside the log's last segment.
                if let Some(last) = bytes[offset..].iter().rposition(|b| *b != 0) {
                    scan.damage = Some(Damage {
                        offset,
                        claimed_end: offset + last + 1,
                        zeros_after: true,
                        detail: "non-zero bytes after the end of the log".into(),
                    });
                }
                break;
            }
            Err(Invalid::Damaged(detail)) => {
                let claimed = format::header(&bytes[offset..])
                    .map(|(len, _)| len)
                    .unwrap_or(0);
                let claimed_end = (offset + HEADER + claimed).min(bytes.len());
                let zeros_after = bytes[claimed_end..].iter().all(|b| *b == 0);
                scan.damage = Some(Damage {
                    offset,
                    claimed_end,
                    zeros_after,
                    detail,
                });
                break;
            }
        }
    }
    scan.end = offset;
    Ok(Ok(scan))
}

/// Reads and decodes the record of `len` bytes at `offset` of a segment.
pub(super) fn read_record(segment: &Segment, offset: u64, len: u32) -> Result<Record, StoreError> {
    let mut buf = vec![0u8; len as usize];
    segment
        .file
        .read_exact_at(&mut buf, offset)
        .map_err(|e| StoreError::Backend(format!("cannot read {}: {e}", segment.path.display())))?;
    match format::decode(&buf) {
        Ok((record, _)) => Ok(record),
        Err(Invalid::End) | Err(Invalid::Damaged(_)) => Err(StoreError::Corrupt {
            file: segment.path.clone(),
            last_good_position: 0,
            detail: format!("the record at byte {offset} no longer reads back intact"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits (bounded) until the preparer has a spare ready.
    fn wait_ready(preparer: &Preparer) {
        let started = Instant::now();
        while !preparer.ready.load(Ordering::Acquire) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no spare within 30 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_ready_spare_is_kept_across_restarts_and_closing_stops_the_preparer() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = 1 << 20;
        let first = Preparer::start(dir.path(), bytes).unwrap();
        wait_ready(&first);
        drop(first);
        assert!(ready_spare_path(dir.path()).exists());

        // A restart takes the spare as ready without writing it again.
        let second = Preparer::start(dir.path(), bytes).unwrap();
        assert!(second.ready.load(Ordering::Acquire));
        let segment = second.next_segment(1).unwrap();
        let mut head = [0u8; SEGMENT_HEADER as usize];
        segment.file.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(&head[..8], MAGIC);
        assert_eq!(std::fs::metadata(&segment.path).unwrap().len(), bytes);
        wait_ready(&second);
        drop(second);

        // Another segment size: the old spare is not used.
        let third = Preparer::start(dir.path(), 2 * bytes).unwrap();
        wait_ready(&third);
        assert_eq!(
            third
                .next_segment(1 << 30)
                .unwrap()
                .file
                .metadata()
                .unwrap()
                .len(),
            2 * bytes
        );
        wait_ready(&third);
        drop(third);

        // Closing while a spare is being written stops the writing: nothing
        // is left to rename a later store's files.
        let dir = tempfile::tempdir().unwrap();
        let fourth = Preparer::start(dir.path(), 1 << 30).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let closing = Instant::now();
        drop(fourth);
        assert!(
            closing.elapsed() < Duration::from_secs(5),
            "closing waited for the whole spare"
        );
        assert!(!ready_spare_path(dir.path()).exists());
        let left = std::fs::metadata(spare_path(dir.path())).map_or(0, |m| m.len());
        assert!(left < 1 << 30);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            std::fs::metadata(spare_path(dir.path())).map_or(0, |m| m.len()),
            left
        );
    }
}
