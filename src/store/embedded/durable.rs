//! How the writer makes a group's bytes durable before anyone is answered.
//!
//! Where the file system allows it, the active segment has a second
//! descriptor opened with `O_DIRECT | O_DSYNC`: one write that returns once
//! the bytes are on the disk's stable storage, with no copy into the page
//! cache and no writeback to wait for. On this project's virtio disk it
//! takes a fifth less time than `pwrite` + `fdatasync` of the same bytes
//! (see `docs/benchmarks.md`, event store, session 15).
//!
//! A direct write starts and ends on a block boundary, so the writer keeps
//! the bytes of the segment's last partial block and writes them again in
//! front of the next group's bytes, padding the end with zeros (what the
//! zero-filled segment holds there anyway). The rewritten bytes are the same
//! as on disk, so a crash during the rewrite cannot damage an acknowledged
//! record.
//!
//! Where direct I/O is refused (tmpfs before Linux 6.6, some network file
//! systems) or turned off ([`super::LogOptions::direct_writes`]), each write is `pwrite` +
//! `fdatasync` through the segment's shared descriptor.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use super::segment::{create_zeroed, Segment};
use crate::store::StoreError;

/// Alignment of direct writes: offsets, lengths and buffer addresses. Every
/// common block device's logical block divides it.
const BLOCK: usize = 4096;

/// One aligned block of a direct write's buffer.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

/// Writes group after group to the end of the log, durably.
pub(super) struct DurableWriter {
    /// The direct descriptor of the segment last written, while direct
    /// writes work.
    direct: Option<Direct>,
    /// Whether to try direct writes on the next segment.
    try_direct: bool,
}

/// The direct descriptor of one segment and the bytes of its last partial block.
struct Direct {
    /// Index of the segment in the log.
    segment: usize,
    file: File,
    /// The file's size, which writes never change.
    size: u64,
    /// Offset where the next write is expected to continue.
    end: u64,
    /// The bytes from the block boundary before `end` up to `end`, then
    /// the next write's bytes and padding.
    buffer: Vec<Block>,
}

impl DurableWriter {
    /// A writer that tries direct writes first when `direct` is set.
    pub(super) fn new(direct: bool) -> Self {
        DurableWriter {
            direct: None,
            try_direct: direct,
        }
    }

    /// Writes `bytes` at `offset` of segment `index` and returns once they
    /// are durable. Writes to one segment continue where the last ended.
    pub(super) fn write(
        &mut self,
        index: usize,
        segment: &Segment,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let io = |e: std::io::Error| {
            StoreError::Backend(format!("cannot write {}: {e}", segment.path.display()))
        };
        if self.try_direct
            && self
                .direct
                .as_ref()
                .is_none_or(|d| d.segment != index || d.end != offset)
        {
            self.direct = match Direct::open(index, segment, offset) {
                Ok(direct) => Some(direct),
                Err(e) if refused(&e) => {
                    self.give_up_direct(segment, &e);
                    None
                }
                // Out of descriptors, memory, a failed read-back: this write
                // goes through the page cache, the next tries again.
                Err(e) => {
                    tracing::warn!(file = %segment.path.display(), error = %e,
                        "cannot open the segment for a direct write; writing through the page cache this time");
                    None
                }
            };
        }
        if let Some(direct) = self.direct.as_mut().filter(|d| d.fits(bytes.len())) {
            match direct.write(bytes) {
                Ok(()) => return Ok(()),
                // Refused before anything was written: the file system
                // wants another alignment, or no direct I/O on this file.
                Err(e) if refused(&e) => self.give_up_direct(segment, &e),
                Err(e) => return Err(io(e)),
            }
        }
        segment.file.write_all_at(bytes, offset).map_err(io)?;
        segment.file.sync_data().map_err(io)
    }

    fn give_up_direct(&mut self, segment: &Segment, error: &std::io::Error) {
        tracing::warn!(
            file = %segment.path.display(), %error,
            "direct writes are refused here; the log writes through the page cache and fdatasync instead"
        );
        self.direct = None;
        self.try_direct = false;
    }
}

/// Whether `error` says this file system does not do direct I/O (or not with
/// this alignment), as opposed to a failure of this one attempt.
fn refused(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
}

#[cfg(test)]
impl DurableWriter {
    /// Whether the last write went through a direct descriptor.
    fn is_direct(&self) -> bool {
        self.direct.is_some()
    }
}

impl Direct {
    /// Opens segment `index` for direct writes continuing at `end`, reading
    /// back the bytes of the partial block before it.
    fn open(index: usize, segment: &Segment, end: u64) -> std::io::Result<Direct> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(&segment.path)?;
        let size = file.metadata()?.len();
        let mut direct = Direct {
            segment: index,
            file,
            size,
            end,
            buffer: Vec::new(),
        };
        let kept = direct.kept();
        segment.file.read_exact_at(
            &mut aligned(&mut direct.buffer, kept)[..kept],
            end - kept as u64,
        )?;
        Ok(direct)
    }

    /// Whether `len` more bytes, padded to a whole block, stay inside the
    /// file. A segment whose size is not a whole number of blocks takes its
    /// last write through the page cache instead, so it never grows.
    fn fits(&self, len: usize) -> bool {
        let start = self.end - self.kept() as u64;
        start + ((self.kept() + len).div_ceil(BLOCK) * BLOCK) as u64 <= self.size
    }

    /// How many bytes of the partial block before `end` the buffer holds.
    fn kept(&self) -> usize {
        (self.end % BLOCK as u64) as usize
    }

    /// Writes `bytes` at `end` durably and keeps the new partial block.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let kept = self.kept();
        let start = self.end - kept as u64;
        let len = kept + bytes.len();
        let buffer = aligned(&mut self.buffer, len);
        buffer[kept..len].copy_from_slice(bytes);
        buffer[len..].fill(0);
        self.file.write_all_at(buffer, start)?;
        // Keep the bytes of the new last partial block at the front.
        let whole = len / BLOCK * BLOCK;
        buffer.copy_within(whole..len, 0);
        self.end += bytes.len() as u64;
        Ok(())
    }
}

/// The first `len` bytes of `buffer` rounded up to whole blocks, grown as
/// needed; bytes past what was written before are zeros.
fn aligned(buffer: &mut Vec<Block>, len: usize) -> &mut [u8] {
    let blocks = len.div_ceil(BLOCK);
    if buffer.len() < blocks {
        buffer.resize(blocks, Block([0; BLOCK]));
    }
    // SAFETY: `Block` is a `repr(C)` array of bytes with no padding, so the
    // first `blocks` blocks are `blocks * BLOCK` initialised bytes, borrowed
    // mutably with `buffer`.
    unsafe { std::slice::from_raw_parts_mut(buffer.as_mut_ptr().cast::<u8>(), blocks * BLOCK) }
}

/// Times `count` durable writes of `bytes` each, back to back at growing
/// offsets of a fresh zero-filled file in `dir` (removed afterwards), the
/// way the writer makes a group durable: what one group of that size costs
/// on this disk, with nothing else in the way.
pub fn time_group_writes(
    dir: &std::path::Path,
    bytes: usize,
    count: usize,
) -> Result<Vec<std::time::Duration>, StoreError> {
    let path = dir.join("group-write-probe");
    let io = |e: std::io::Error| {
        StoreError::Backend(format!("cannot time writes in {}: {e}", path.display()))
    };
    let size = ((bytes * count).div_ceil(BLOCK) * BLOCK + BLOCK) as u64;
    let file =
        create_zeroed(&path, size, &std::sync::atomic::AtomicBool::new(false)).map_err(io)?;
    let segment = Segment {
        path: path.clone(),
        file: std::sync::Arc::new(file),
    };
    let mut writer = DurableWriter::new(true);
    let payload = vec![0x5au8; bytes];
    let mut offset = BLOCK as u64;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = std::time::Instant::now();
        writer.write(0, &segment, offset, &payload)?;
        times.push(started.elapsed());
        offset += bytes as u64;
    }
    drop(segment);
    let _ = std::fs::remove_file(&path);
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::segment::SEGMENT_HEADER;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Writes chunks of awkward sizes one after another, with a new writer
    /// (as after a restart) halfway, and checks after every write that the
    /// file holds exactly the header, every chunk so far, and zeros.
    fn writes_land_exactly(direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        // Not a whole number of blocks: the last write reaches the very end.
        let size = (64 << 10) + 100;
        let file = create_zeroed(&path, size, &AtomicBool::new(false)).unwrap();
        let segment = Segment {
            path: path.clone(),
            file: Arc::new(file),
        };
        let mut expected = std::fs::read(&path).unwrap();
        let mut writer = DurableWriter::new(direct);
        let mut offset = SEGMENT_HEADER;
        let mut sizes = vec![1, 100, 4095, 4096, 4097, 7, 9000, 3, 8192, 5000];
        let written: usize = sizes.iter().sum();
        sizes.push(size as usize - SEGMENT_HEADER as usize - written);
        for (i, len) in sizes.iter().copied().enumerate() {
            if i == 5 {
                writer = DurableWriter::new(direct);
            }
            let chunk: Vec<u8> = (0..len).map(|b| ((b + i * 31) % 251 + 1) as u8).collect();
            writer.write(0, &segment, offset, &chunk).unwrap();
            let at = offset as usize;
            expected[at..at + len].copy_from_slice(&chunk);
            offset += len as u64;
            assert_eq!(std::fs::read(&path).unwrap(), expected, "after write {i}");
            if direct && i == 0 {
                // Where the temp dir's file system takes direct I/O (as on
                // the project's machines), the direct path is what ran.
                let accepted = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&path)
                    .is_ok();
                assert_eq!(writer.is_direct(), accepted);
            }
        }
    }

    #[test]
    fn direct_writes_keep_every_earlier_byte_and_pad_with_zeros() {
        writes_land_exactly(true);
    }

    #[test]
    fn page_cache_writes_land_the_same_bytes() {
        writes_land_exactly(false);
    }

    #[test]
    fn timed_group_writes_leave_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let times = time_group_writes(dir.path(), 5000, 20).unwrap();
        assert_eq!(times.len(), 20);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
