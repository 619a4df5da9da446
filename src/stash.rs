//! The share stash: what intake learns that aggregate needs, kept sealed in the server's
//! own storage so aggregate neither opens packets nor checks proofs again.
//!
//! For every packet of an ingestion batch, in batch order, the stash holds its UUID and
//! either what aggregate needs of it or a mark that intake left it out. ENPA: the part of
//! its plaintext share that aggregate sums (server 0: the first `bins` field elements;
//! server 1: the 32-byte seed). DAP: the report's time and the joint randomness seed its
//! verifier message must equal; the final frame then ends with a trailer, the sum of the
//! output shares of every report kept (see `dap::prio3::split`), so aggregate only takes
//! away the reports it refuses.
//!
//! File: `DVSTASH1` ‖ salt (32) ‖ frames. A frame is `last` (1 byte) ‖ length (u32 BE) ‖
//! AES-256-GCM ciphertext of its records, sealed under a key derived from the server's
//! stash key, the salt and the batch context (batch UUID, server, what is kept, the signed digest
//! of the ingestion packet file). Frames are numbered by their nonce and the final one is
//! marked, so a stash cannot be reordered, cut short, or passed off as another batch's.

use crate::crypto::{FrameSealer, StashKey};
use crate::ids::ServerIndex;
use crate::store::{ObjectStore, ObjectWriter, StoreError, StoreErrorKind};
use std::io::{Read, Write};
use uuid::Uuid;

const MAGIC: &[u8; 8] = b"DVSTASH1";
/// Records per frame at most: one rayon chunk's worth.
const FRAME_RECORDS: usize = 512;
/// Bytes of records per frame at most, so a frame of large shares (a Prio3 leader's
/// 32 KiB at histogram 2048) stays small in memory: 32 records then. Readers take frames
/// of any size up to [`MAX_FRAME_BYTES`].
const FRAME_BYTES: usize = 1 << 20;
/// No honest frame is larger (512 records of a 2^16-bin share is 128 MiB); refuse more.
const MAX_FRAME_BYTES: u32 = 256 << 20;

const KEPT: u8 = 0;
const LEFT_OUT: u8 = 1;
/// The trailer: the final frame's last record, a nil UUID, this kind, a u32 BE length
/// and that many bytes.
const TRAILER: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StashError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{object}: {reason}")]
    Bad { object: String, reason: String },
}

/// What a stash belongs to; bound into its key.
#[derive(Debug, Clone)]
pub struct StashContext {
    pub batch: Uuid,
    pub server: ServerIndex,
    pub kept: KeptShape,
    /// `packet_file_digest` of the signed ingestion header.
    pub ingestion_digest: Vec<u8>,
}

/// What intake keeps per packet, by task kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptShape {
    /// ENPA: server 0 keeps `bins` field elements of its share, server 1 its seed.
    Prio2 { bins: usize },
    /// DAP: each server keeps the report's time and the seed its verifier message must
    /// equal, `kept_len` bytes in all.
    Dap { task_id: Vec<u8>, kept_len: usize },
    /// Poplar1: after round 1 or 2 of a pass, the report's time and this server's
    /// verification state (its share of the report's prefix counts), `kept_len` bytes.
    Poplar1 {
        task_id: Vec<u8>,
        pass_index: u32,
        round: u8,
        /// The pass's aggregation parameter: a state is only read back at its own pass.
        pass: Vec<u8>,
        kept_len: usize,
    },
}

impl StashContext {
    /// The context of this server's stash for an ENPA ingestion batch: intake (writing)
    /// and aggregate (reading) must derive it the same way, so both call this.
    pub fn for_batch(
        id: &crate::batch::BatchId,
        server: ServerIndex,
        bins: usize,
        header: &crate::wire::IngestionHeader,
    ) -> Self {
        StashContext {
            batch: id.uuid,
            server,
            kept: KeptShape::Prio2 { bins },
            ingestion_digest: header.packet_file_digest.clone(),
        }
    }

    /// The context of this server's stash for a DAP ingestion batch.
    pub fn for_dap_batch(
        id: &crate::batch::BatchId,
        server: ServerIndex,
        kept_len: usize,
        header: &crate::wire::DapIngestionHeader,
    ) -> Self {
        StashContext {
            batch: id.uuid,
            server,
            kept: KeptShape::Dap {
                task_id: header.task_id.clone(),
                kept_len,
            },
            ingestion_digest: header.packet_file_digest.clone(),
        }
    }

    /// The context of this server's state after `round` of a Poplar1 pass over a batch.
    pub fn for_poplar1_round(
        id: &crate::batch::BatchId,
        server: ServerIndex,
        header: &crate::wire::DapIngestionHeader,
        (pass_index, round, pass): (u32, u8, &[u8]),
        kept_len: usize,
    ) -> Self {
        StashContext {
            batch: id.uuid,
            server,
            kept: KeptShape::Poplar1 {
                task_id: header.task_id.clone(),
                pass_index,
                round,
                pass: pass.to_vec(),
                kept_len,
            },
            ingestion_digest: header.packet_file_digest.clone(),
        }
    }

    /// What the stash's file key is bound to: batch UUID, server, the kept shape (ENPA:
    /// bins, u64 BE, as before DAP existed; DAP: a label, the task id and the state
    /// length kept), digest. Public for the fuzz harness, which seals frames of its own.
    #[doc(hidden)]
    pub fn key_context(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(64);
        c.extend_from_slice(self.batch.as_bytes());
        c.push(self.server.number());
        match &self.kept {
            KeptShape::Prio2 { bins } => c.extend_from_slice(&(*bins as u64).to_be_bytes()),
            KeptShape::Dap { task_id, kept_len } => {
                c.extend_from_slice(b"divvi dap verify check");
                c.extend_from_slice(task_id);
                c.extend_from_slice(&(*kept_len as u64).to_be_bytes());
            }
            KeptShape::Poplar1 {
                task_id,
                pass_index,
                round,
                pass,
                kept_len,
            } => {
                c.extend_from_slice(b"divvi poplar1 pass state");
                c.extend_from_slice(task_id);
                c.extend_from_slice(&pass_index.to_be_bytes());
                c.push(*round);
                c.extend_from_slice(&(pass.len() as u64).to_be_bytes());
                c.extend_from_slice(pass);
                c.extend_from_slice(&(*kept_len as u64).to_be_bytes());
            }
        }
        c.extend_from_slice(&self.ingestion_digest);
        c
    }

    /// Bytes kept per packet: ENPA server 0 keeps `bins` field elements, server 1 its
    /// seed; a DAP server the report's time and check.
    pub fn share_len(&self) -> usize {
        match (&self.kept, self.server) {
            (KeptShape::Prio2 { bins }, ServerIndex::Zero) => 4 * bins,
            (KeptShape::Prio2 { .. }, ServerIndex::One) => 32,
            (KeptShape::Dap { kept_len, .. }, _) => *kept_len,
            (KeptShape::Poplar1 { kept_len, .. }, _) => *kept_len,
        }
    }
}

/// One packet's entry: its kept share bytes, or None if intake left it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StashRecord {
    pub uuid: Uuid,
    pub share: Option<Vec<u8>>,
}

pub struct StashWriter {
    out: Box<dyn ObjectWriter>,
    object: String,
    sealer: FrameSealer,
    share_len: usize,
    frame: u64,
    /// Records a frame holds before it is written.
    frame_records: usize,
    buffer: Vec<u8>,
    buffered: usize,
}

/// Records per frame for shares of `share_len` bytes (each record is 17 bytes more).
fn frame_records(share_len: usize) -> usize {
    (FRAME_BYTES / (17 + share_len)).clamp(1, FRAME_RECORDS)
}

impl StashWriter {
    pub fn create(
        store: &dyn ObjectStore,
        key: &str,
        stash_key: &StashKey,
        context: &StashContext,
    ) -> Result<Self, StashError> {
        let object = store.describe(key);
        let bad = |reason: String| StashError::Bad {
            object: object.clone(),
            reason,
        };
        let salt = StashKey::new_salt().map_err(|e| bad(e.to_string()))?;
        let sealer = stash_key
            .file_sealer(&salt, &context.key_context())
            .map_err(|e| bad(e.to_string()))?;
        let mut out = store.put(key)?;
        out.write_all(MAGIC)
            .and_then(|_| out.write_all(&salt))
            .map_err(|e| io_error(&object, e))?;
        let share_len = context.share_len();
        let frame_records = frame_records(share_len);
        Ok(StashWriter {
            out,
            object,
            sealer,
            share_len,
            frame: 0,
            frame_records,
            // A full frame and its tag: the buffer is reused, never regrown.
            buffer: Vec::with_capacity(frame_records * (17 + share_len) + 16),
            buffered: 0,
        })
    }

    /// Adds a packet in batch order: its kept share bytes, or None if it was left out.
    pub fn push(&mut self, uuid: Uuid, share: Option<&[u8]>) -> Result<(), StashError> {
        if let Some(bytes) = share.filter(|b| b.len() != self.share_len) {
            return Err(StashError::Bad {
                object: self.object.clone(),
                reason: format!(
                    "share of {} bytes, expected {}",
                    bytes.len(),
                    self.share_len
                ),
            });
        }
        self.buffer.extend_from_slice(uuid.as_bytes());
        match share {
            Some(bytes) => {
                self.buffer.push(KEPT);
                self.buffer.extend_from_slice(bytes);
            }
            None => self.buffer.push(LEFT_OUT),
        }
        self.buffered += 1;
        if self.buffered >= self.frame_records {
            self.write_frame(false)?;
        }
        Ok(())
    }

    fn write_frame(&mut self, last: bool) -> Result<(), StashError> {
        self.sealer
            .seal_in_place(self.frame, last, &mut self.buffer)
            .map_err(|e| StashError::Bad {
                object: self.object.clone(),
                reason: e.to_string(),
            })?;
        let len = u32::try_from(self.buffer.len()).map_err(|_| StashError::Bad {
            object: self.object.clone(),
            reason: "frame too large".into(),
        })?;
        self.out
            .write_all(&[u8::from(last)])
            .and_then(|_| self.out.write_all(&len.to_be_bytes()))
            .and_then(|_| self.out.write_all(&self.buffer))
            .map_err(|e| io_error(&self.object, e))?;
        self.buffer.clear();
        self.frame += 1;
        self.buffered = 0;
        Ok(())
    }

    /// Writes the final frame, ending with `trailer` if there is one, and makes the
    /// stash visible.
    pub fn finish(mut self, trailer: Option<&[u8]>) -> Result<(), StashError> {
        if let Some(bytes) = trailer {
            let len = u32::try_from(bytes.len()).map_err(|_| StashError::Bad {
                object: self.object.clone(),
                reason: "trailer too large".into(),
            })?;
            self.buffer.extend_from_slice(Uuid::nil().as_bytes());
            self.buffer.push(TRAILER);
            self.buffer.extend_from_slice(&len.to_be_bytes());
            self.buffer.extend_from_slice(bytes);
        }
        self.write_frame(true)?;
        self.out.commit()?;
        Ok(())
    }
}

fn io_error(object: &str, e: std::io::Error) -> StashError {
    StashError::Store(StoreError {
        op: "writing",
        object: object.to_string(),
        kind: StoreErrorKind::Io(e),
    })
}

pub struct StashReader {
    input: Box<dyn Read + Send>,
    object: String,
    sealer: FrameSealer,
    share_len: usize,
    frame: u64,
    done: bool,
    trailer: Option<Vec<u8>>,
}

impl StashReader {
    pub fn open(
        store: &dyn ObjectStore,
        key: &str,
        stash_key: &StashKey,
        context: &StashContext,
    ) -> Result<Self, StashError> {
        let object = store.describe(key);
        let mut input = store.get(key)?;
        let mut head = [0u8; 40];
        input.read_exact(&mut head).map_err(|e| StashError::Bad {
            object: object.clone(),
            reason: format!("reading header: {e}"),
        })?;
        if &head[..8] != MAGIC {
            return Err(StashError::Bad {
                object,
                reason: "not a divvi share stash".into(),
            });
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&head[8..]);
        let sealer = stash_key
            .file_sealer(&salt, &context.key_context())
            .map_err(|e| StashError::Bad {
                object: object.clone(),
                reason: e.to_string(),
            })?;
        Ok(StashReader {
            input,
            object,
            sealer,
            share_len: context.share_len(),
            frame: 0,
            done: false,
            trailer: None,
        })
    }

    fn bad(&self, reason: impl Into<String>) -> StashError {
        StashError::Bad {
            object: self.object.clone(),
            reason: reason.into(),
        }
    }

    /// The next frame's records; None once the final frame has been read and nothing follows.
    pub fn next_frame(&mut self) -> Result<Option<Vec<StashRecord>>, StashError> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0u8; 5];
        self.input
            .read_exact(&mut head)
            .map_err(|e| self.bad(format!("frame {}: {e} (stash cut short?)", self.frame)))?;
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(self.bad(format!("frame {}: bad flag", self.frame))),
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME_BYTES {
            return Err(self.bad(format!("frame {} claims {len} bytes", self.frame)));
        }
        let sealed = read_frame(&mut *self.input, len as usize)
            .map_err(|e| self.bad(format!("frame {}: {e}", self.frame)))?;
        let plain = self.sealer.open(self.frame, last, sealed).map_err(|_| {
            self.bad(format!(
                "frame {} does not authenticate (wrong key, other batch, or damaged)",
                self.frame
            ))
        })?;
        self.frame += 1;
        if last {
            self.done = true;
            let mut rest = [0u8; 1];
            if self
                .input
                .read(&mut rest)
                .map_err(|e| self.bad(e.to_string()))?
                != 0
            {
                return Err(self.bad("bytes after the final frame"));
            }
        }
        let (records, trailer) = self.parse(&plain)?;
        match (trailer, last) {
            (Some(_), false) => return Err(self.bad("a trailer before the final frame")),
            (trailer, _) => self.trailer = trailer,
        }
        Ok(Some(records))
    }

    /// The trailer the writer ended the stash with, once the final frame has been read.
    pub fn trailer(&self) -> Option<&[u8]> {
        self.trailer.as_deref()
    }

    /// A frame's records, and the trailer if the frame ends with one.
    fn parse(&self, mut plain: &[u8]) -> Result<(Vec<StashRecord>, Option<Vec<u8>>), StashError> {
        let mut records = Vec::new();
        while !plain.is_empty() {
            let (uuid, rest) = plain
                .split_first_chunk::<16>()
                .ok_or_else(|| self.bad("truncated record"))?;
            let (&kind, rest) = rest
                .split_first()
                .ok_or_else(|| self.bad("truncated record"))?;
            let uuid = Uuid::from_bytes(*uuid);
            plain = match kind {
                LEFT_OUT => {
                    records.push(StashRecord { uuid, share: None });
                    rest
                }
                KEPT if rest.len() >= self.share_len => {
                    let (share, rest) = rest.split_at(self.share_len);
                    records.push(StashRecord {
                        uuid,
                        share: Some(share.to_vec()),
                    });
                    rest
                }
                TRAILER => {
                    let (len, rest) = rest
                        .split_first_chunk::<4>()
                        .ok_or_else(|| self.bad("truncated trailer"))?;
                    let len = u32::from_be_bytes(*len) as usize;
                    if rest.len() != len || !uuid.is_nil() {
                        return Err(self.bad("a trailer that is not the last record"));
                    }
                    return Ok((records, Some(rest.to_vec())));
                }
                _ => return Err(self.bad("bad record")),
            };
        }
        Ok((records, None))
    }
}

/// Reads a frame of `len` bytes into a buffer that grows with the bytes that arrive, never
/// past `len`: a damaged length must not cost its claim in memory before the stash turns
/// out to be short (found by fuzzing: a 57-byte stash whose first frame claims 256 MB).
fn read_frame(input: &mut dyn Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut frame = Vec::new();
    while frame.len() < len {
        let start = frame.len();
        let step = (len - start).min(start.max(1 << 20));
        frame.reserve_exact(step);
        frame.resize(start + step, 0);
        input.read_exact(&mut frame[start..])?;
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn context(server: ServerIndex) -> StashContext {
        StashContext {
            batch: Uuid::new_v4(),
            server,
            kept: KeptShape::Prio2 { bins: 3 },
            ingestion_digest: vec![7; 32],
        }
    }

    fn read_all(r: &mut StashReader) -> Result<Vec<StashRecord>, StashError> {
        let mut all = Vec::new();
        while let Some(f) = r.next_frame()? {
            all.extend(f);
        }
        Ok(all)
    }

    #[test]
    fn round_trip_across_frames_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, _) = StashKey::generate().unwrap();
        let ctx = context(ServerIndex::Zero);
        let mut w = StashWriter::create(&store, "a/s", &key, &ctx).unwrap();
        let mut expected = Vec::new();
        for i in 0..1100u32 {
            let uuid = Uuid::new_v4();
            let share = (i % 7 != 0).then(|| vec![(i % 251) as u8; 12]);
            w.push(uuid, share.as_deref()).unwrap();
            expected.push(StashRecord { uuid, share });
        }
        assert!(
            w.push(Uuid::new_v4(), Some(&[1, 2])).is_err(),
            "wrong share length"
        );
        w.finish(Some(b"the sum of what was kept")).unwrap();
        let mut r = StashReader::open(&store, "a/s", &key, &ctx).unwrap();
        assert_eq!(r.trailer(), None, "read only with the final frame");
        assert_eq!(read_all(&mut r).unwrap(), expected);
        assert_eq!(r.trailer(), Some(&b"the sum of what was kept"[..]));

        // Another batch's context, or another key: nothing authenticates.
        let mut other = ctx.clone();
        other.ingestion_digest = vec![8; 32];
        let mut r = StashReader::open(&store, "a/s", &key, &other).unwrap();
        assert!(read_all(&mut r).is_err());
        let (key2, _) = StashKey::generate().unwrap();
        let mut r = StashReader::open(&store, "a/s", &key2, &ctx).unwrap();
        assert!(read_all(&mut r).is_err());

        // Cut short: the final frame is missing.
        let path = dir.path().join("a/s");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
        let mut r = StashReader::open(&store, "a/s", &key, &ctx).unwrap();
        let e = read_all(&mut r).unwrap_err().to_string();
        assert!(e.contains("a/s"), "{e}");
    }

    #[test]
    fn large_shares_come_in_small_frames() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, _) = StashKey::generate().unwrap();
        // A Prio3 leader's kept state at histogram 2048: ~32 KiB.
        let ctx = StashContext {
            kept: KeptShape::Dap {
                task_id: vec![1; 32],
                kept_len: 32_776,
            },
            ..context(ServerIndex::Zero)
        };
        let mut w = StashWriter::create(&store, "b/s", &key, &ctx).unwrap();
        let mut expected = Vec::new();
        for i in 0..100u32 {
            let uuid = Uuid::new_v4();
            let share = (i != 40).then(|| vec![i as u8; 32_776]);
            w.push(uuid, share.as_deref()).unwrap();
            expected.push(StashRecord { uuid, share });
        }
        w.finish(None).unwrap();
        let mut r = StashReader::open(&store, "b/s", &key, &ctx).unwrap();
        let mut all = Vec::new();
        while let Some(frame) = r.next_frame().unwrap() {
            // At most 1 MiB of records a frame: 31 of these.
            assert!(frame.len() <= 31, "a frame of {}", frame.len());
            all.extend(frame);
        }
        assert_eq!(all, expected);
    }

    /// Remembers the largest buffer it was asked to fill.
    struct Probe {
        bytes: std::io::Cursor<Vec<u8>>,
        largest: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Read for Probe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.largest
                .fetch_max(buf.len(), std::sync::atomic::Ordering::Relaxed);
            self.bytes.read(buf)
        }
    }

    #[test]
    fn a_frame_length_is_not_allocated_before_its_bytes_arrive() {
        let (key, _) = StashKey::generate().unwrap();
        let ctx = context(ServerIndex::Zero);
        // Frame 0 claims 200 MB and holds 3 bytes.
        let mut frame = vec![0u8];
        frame.extend_from_slice(&200_000_000u32.to_be_bytes());
        frame.extend_from_slice(b"abc");
        let largest = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let probe = Probe {
            bytes: std::io::Cursor::new(frame),
            largest: largest.clone(),
        };
        let mut reader = StashReader {
            input: Box::new(probe),
            object: "file:///own/a/s".into(),
            sealer: key.file_sealer(&[0; 32], &ctx.key_context()).unwrap(),
            share_len: ctx.share_len(),
            frame: 0,
            done: false,
            trailer: None,
        };
        let e = reader.next_frame().unwrap_err().to_string();
        assert!(
            e.contains("file:///own/a/s") && e.contains("frame 0"),
            "{e}"
        );
        let largest = largest.load(std::sync::atomic::Ordering::Relaxed);
        assert!(largest <= 1 << 20, "asked to fill {largest} bytes at once");
    }

    #[test]
    fn frames_are_read_whole_across_growth_steps() {
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let frame = read_frame(&mut &bytes[..], bytes.len()).unwrap();
        assert_eq!(frame, bytes);
        assert!(read_frame(&mut &bytes[..10], 11).is_err());
    }
}
