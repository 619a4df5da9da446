//! Writing and reading signed batches in both forms: three objects (header, packet file,
//! signature) or a single signature object carrying header and packets inline. The
//! signature object is always written last: a batch exists once its signature does.

use super::BatchError;
use crate::batch::ObjectNames;
use crate::crypto::{DigestStream, HashingWriter, PacketDigest, SigningKey, TrustSet};
use crate::store::{get_bytes, ObjectStore, ObjectWriter, StoreError, StoreErrorKind};
use crate::wire::{self, BatchSignature, Record, RecordReader, RecordWriter};
use std::io::{self, Read, Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Headers are small; anything larger is refused before it is read.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// A single-object signature carries its packet file inline (validation batches:
/// ~50 bytes a packet), so it may be large, but not unboundedly.
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 30;

/// Records that head a batch and carry the digest of its packet file.
pub trait BatchHeader: Record {
    fn packet_file_digest(&self) -> &[u8];
    /// The hash that digest is made with: SHA-256 unless the header names another.
    fn packet_file_digest_algorithm(&self) -> PacketDigest {
        PacketDigest::Sha256
    }
}

impl BatchHeader for wire::IngestionHeader {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
}
impl BatchHeader for wire::DapIngestionHeader {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
    fn packet_file_digest_algorithm(&self) -> PacketDigest {
        self.packet_file_digest_algorithm
    }
}
impl BatchHeader for wire::DapValidationHeader {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
    fn packet_file_digest_algorithm(&self) -> PacketDigest {
        self.packet_file_digest_algorithm
    }
}
impl BatchHeader for wire::Poplar1RoundHeader {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
}
impl BatchHeader for wire::ValidityHeader {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
}
impl BatchHeader for wire::SumPart {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
}
impl BatchHeader for wire::DapSumPart {
    fn packet_file_digest(&self) -> &[u8] {
        &self.packet_file_digest
    }
}

/// Where packets go while a batch is written.
enum Sink {
    /// Single-object form: spooled to an anonymous temporary file (removed when closed),
    /// then streamed inline into the signature object, so memory does not grow.
    Spool(io::BufWriter<std::fs::File>),
    /// Three-object form: streamed into the packet object.
    Object(Box<dyn ObjectWriter>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Spool(f) => f.write(buf),
            Sink::Object(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Spool(f) => f.flush(),
            Sink::Object(w) => w.flush(),
        }
    }
}

/// A batch being written: packets are appended, then `finish` adds header and signature.
pub struct BatchWriter<P: Record> {
    names: ObjectNames,
    packets: Option<RecordWriter<P, HashingWriter<Sink>>>,
    /// What the packet file is hashed with: the header must name it.
    digest: PacketDigest,
    count: u64,
    /// The description of the packet object, for errors.
    object: String,
}

impl<P: Record> BatchWriter<P> {
    /// Single-object form: packets go inline into the signature object, hashed with
    /// `digest` (which the header given to `finish` must name).
    pub fn single_object(names: ObjectNames, digest: PacketDigest) -> Result<Self, BatchError> {
        let object = names.signature.clone();
        let spool = tempfile::tempfile().map_err(|e| BatchError::Other {
            object: object.clone(),
            reason: format!("creating a temporary spool file: {e}"),
        })?;
        Self::with_sink(
            names,
            Sink::Spool(io::BufWriter::new(spool)),
            digest,
            object,
        )
    }

    /// Three-object form: packets stream into the packet object of `store`, hashed with
    /// `digest`.
    pub fn three_object(
        store: &dyn ObjectStore,
        names: ObjectNames,
        digest: PacketDigest,
    ) -> Result<Self, BatchError> {
        let sink = Sink::Object(store.put(&names.packets)?);
        let object = store.describe(&names.packets);
        Self::with_sink(names, sink, digest, object)
    }

    fn with_sink(
        names: ObjectNames,
        sink: Sink,
        digest: PacketDigest,
        object: String,
    ) -> Result<Self, BatchError> {
        let hashing = HashingWriter::new(sink, digest);
        let writer = RecordWriter::new(hashing).map_err(|e| BatchError::Wire {
            object: object.clone(),
            source: e,
        })?;
        Ok(BatchWriter {
            names,
            packets: Some(writer),
            digest,
            count: 0,
            object,
        })
    }

    pub fn append(&mut self, packet: &P) -> Result<(), BatchError> {
        let w = self.packets.as_mut().ok_or_else(|| BatchError::Other {
            object: self.object.clone(),
            reason: "append after finish".into(),
        })?;
        w.append(packet).map_err(|e| BatchError::Wire {
            object: self.object.clone(),
            source: e,
        })?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Completes the packet file, builds the header around its digest, signs it and
    /// writes the remaining objects to each store (signature last). A three-object batch
    /// goes to the one store it was created on, which must be the only one given.
    pub fn finish<H: BatchHeader>(
        mut self,
        make_header: impl FnOnce(Vec<u8>) -> H,
        key: &SigningKey,
        stores: &[&dyn ObjectStore],
    ) -> Result<(), BatchError> {
        let writer = self.packets.take().ok_or_else(|| BatchError::Other {
            object: self.object.clone(),
            reason: "finish called twice".into(),
        })?;
        let hashing = writer.finish().map_err(|e| BatchError::Wire {
            object: self.object.clone(),
            source: e,
        })?;
        let (sink, digest) = hashing.finish();
        let header = make_header(digest.to_vec());
        check_names_digest(&header, self.digest, &self.names)?;
        let (header_bytes, record) = sign_header(&header, key, &self.names)?;
        match sink {
            Sink::Spool(spool) => {
                let spool_error = |e: io::Error| BatchError::Other {
                    object: self.object.clone(),
                    reason: format!("reading back the spooled packets: {e}"),
                };
                let mut file = spool
                    .into_inner()
                    .map_err(|e| spool_error(e.into_error()))?;
                let len = file.stream_position().map_err(spool_error)?;
                for store in stores {
                    file.rewind().map_err(spool_error)?;
                    let writer = store.put(&self.names.signature)?;
                    let writer = wire::write_inline_signature(
                        writer,
                        &record.batch_header_signature,
                        &record.key_identifier,
                        &header_bytes,
                        io::BufReader::new(&mut file),
                        len,
                    )
                    .map_err(|e| BatchError::Wire {
                        object: store.describe(&self.names.signature),
                        source: e,
                    })?;
                    writer.commit()?;
                }
            }
            Sink::Object(packet_object) => {
                let [store] = stores else {
                    return Err(BatchError::Other {
                        object: self.object.clone(),
                        reason: "a three-object batch is written to exactly one store".into(),
                    });
                };
                packet_object.commit()?;
                crate::store::put_bytes(*store, &self.names.header, &header_bytes)?;
                let sig_bytes = encode_signature(&record, &self.names)?;
                crate::store::put_bytes(*store, &self.names.signature, &sig_bytes)?;
            }
        }
        Ok(())
    }
}

/// The header's bytes and its signature record (three-object form: nothing inline).
fn sign_header<H: Record>(
    header: &H,
    key: &SigningKey,
    names: &ObjectNames,
) -> Result<(Vec<u8>, BatchSignature), BatchError> {
    let header_bytes = wire::encode_single(header).map_err(|e| BatchError::Wire {
        object: names.header.clone(),
        source: e,
    })?;
    let record = super::signature_over(&header_bytes, key, &names.header)?;
    Ok((header_bytes, record))
}

/// Writes a three-object batch held whole in memory, for a writer that may not read the
/// store: packet file and header are the same bytes however often they are written (the
/// encoding is deterministic), and the signature is created only if none is there. False:
/// the batch was complete already, and nothing of it changed. The header is made from
/// the packet file's digest by `algorithm`, which it must name.
pub fn write_batch_unless_signed<P: Record, H: BatchHeader>(
    store: &dyn ObjectStore,
    names: &ObjectNames,
    packets: &[P],
    (algorithm, make_header): (PacketDigest, impl FnOnce(Vec<u8>) -> H),
    key: &SigningKey,
) -> Result<bool, BatchError> {
    let packet_bytes = wire::encode_all(packets).map_err(|e| BatchError::Wire {
        object: store.describe(&names.packets),
        source: e,
    })?;
    let header = make_header(algorithm.digest(&packet_bytes).to_vec());
    check_names_digest(&header, algorithm, names)?;
    let (header_bytes, record) = sign_header(&header, key, names)?;
    crate::store::put_bytes(store, &names.packets, &packet_bytes)?;
    crate::store::put_bytes(store, &names.header, &header_bytes)?;
    let sig_bytes = encode_signature(&record, names)?;
    Ok(store.create_new(&names.signature, &sig_bytes)?)
}

/// A header must name the hash its packet file's digest was made with.
fn check_names_digest<H: BatchHeader>(
    header: &H,
    algorithm: PacketDigest,
    names: &ObjectNames,
) -> Result<(), BatchError> {
    match header.packet_file_digest_algorithm() {
        named if named == algorithm => Ok(()),
        named => Err(BatchError::Other {
            object: names.header.clone(),
            reason: format!(
                "the header names {} for a digest made with {}",
                named.name(),
                algorithm.name()
            ),
        }),
    }
}

fn encode_signature(record: &BatchSignature, names: &ObjectNames) -> Result<Vec<u8>, BatchError> {
    wire::encode_single(record).map_err(|e| BatchError::Wire {
        object: names.signature.clone(),
        source: e,
    })
}

/// A batch whose signature has been verified; its packets are read on demand.
pub struct OpenedBatch<'s, H> {
    pub header: H,
    pub key_id: String,
    /// The exact bytes the signature covers.
    pub header_bytes: Vec<u8>,
    packets: PacketSource<'s>,
}

enum PacketSource<'s> {
    Inline {
        bytes: Arc<Vec<u8>>,
        object: String,
    },
    /// A packet file in storage: its own object (offset 0), or the inline packets of a
    /// single-object signature, streamed from there rather than held in memory.
    Object {
        store: &'s dyn ObjectStore,
        key: String,
        offset: u64,
        /// The size `head` reported (or the inline length): reads stop there, so an object
        /// replaced by a larger one after the check is never read past it (its digest then
        /// fails).
        size: u64,
        /// Inline packets: the signature file's sync marker, which must end the object.
        trailer: Option<[u8; 16]>,
    },
}

/// The size of an object, refused if it exceeds the server's `max_bytes`
/// (`limits.max_object_bytes`) or the format's own `cap` for that kind of object; only
/// `head` is asked, nothing is read.
fn checked_size(
    store: &dyn ObjectStore,
    key: &str,
    cap: u64,
    max_bytes: u64,
) -> Result<u64, BatchError> {
    let object = store.describe(key);
    let size = store.head(key)?.ok_or_else(|| StoreError {
        op: "reading",
        object: object.clone(),
        kind: StoreErrorKind::NotFound,
    })?;
    let (limit, which) = if max_bytes <= cap {
        (max_bytes, "limits.max_object_bytes")
    } else {
        (cap, "the largest this kind of object may be")
    };
    if size > limit {
        return Err(BatchError::Other {
            object,
            reason: format!(
                "object is {size} bytes, over the limit of {limit} bytes ({which}); refused before reading"
            ),
        });
    }
    Ok(size)
}

/// Reads a small object (signature, header) whole, after checking its size.
fn read_checked(
    store: &dyn ObjectStore,
    key: &str,
    cap: u64,
    max_bytes: u64,
) -> Result<Vec<u8>, BatchError> {
    checked_size(store, key, cap, max_bytes)?;
    Ok(get_bytes(store, key, cap.min(max_bytes))?)
}

/// Reads and verifies a batch: signature record, header (inline or object), signature
/// under `trust`. Every object is refused by its size (`head`) before it is read if it is
/// larger than `max_bytes` (the server's `limits.max_object_bytes`). Packets are not read
/// yet; `packets()` streams them and checks the digest.
pub fn open_batch<'s, H: BatchHeader>(
    store: &'s dyn ObjectStore,
    names: &ObjectNames,
    trust: &TrustSet,
    max_bytes: u64,
) -> Result<OpenedBatch<'s, H>, BatchError> {
    let sig_object = store.describe(&names.signature);
    let wire_error = |e| BatchError::Wire {
        object: sig_object.clone(),
        source: e,
    };
    let sig_size = checked_size(store, &names.signature, MAX_SIGNATURE_BYTES, max_bytes)?;
    // Read up to the inline packets, which then stream from storage: a validation batch
    // of 100,000 Prio3 verifier shares is tens of MB, held twice when decoded whole.
    let prefix = wire::read_signature_prefix(
        store.get(&names.signature)?.take(sig_size),
        MAX_HEADER_BYTES,
    )
    .map_err(wire_error)?;
    let (mut sig, inline) = match prefix {
        Some(prefix) => (
            prefix.signature,
            prefix.packets.map(|(offset, size)| PacketSource::Object {
                store,
                key: names.signature.clone(),
                offset,
                size,
                trailer: Some(prefix.marker),
            }),
        ),
        // Another writer's schema: the file is read whole.
        None => {
            let bytes = read_checked(store, &names.signature, MAX_SIGNATURE_BYTES, max_bytes)?;
            let mut sig: BatchSignature = wire::decode_single(&bytes).map_err(wire_error)?;
            let inline = sig.packets.take().map(|packets| PacketSource::Inline {
                bytes: Arc::new(packets),
                object: sig_object.clone(),
            });
            (sig, inline)
        }
    };
    let (header_bytes, packets) = match (sig.batch_header.take(), inline) {
        (Some(header), Some(packets)) => (header, packets),
        (None, None) => (
            read_checked(store, &names.header, MAX_HEADER_BYTES, max_bytes)?,
            PacketSource::Object {
                store,
                key: names.packets.clone(),
                offset: 0,
                size: checked_size(store, &names.packets, u64::MAX, max_bytes)?,
                trailer: None,
            },
        ),
        _ => {
            return Err(BatchError::Other {
                object: sig_object,
                reason: "signature carries only one of batch_header and packets".into(),
            })
        }
    };
    super::check_signature(&sig, &header_bytes, trust, &store.describe(&names.header))?;
    let header = wire::decode_single(&header_bytes).map_err(|e| BatchError::Wire {
        object: store.describe(&names.header),
        source: e,
    })?;
    Ok(OpenedBatch {
        header,
        key_id: sig.key_identifier,
        header_bytes,
        packets,
    })
}

impl<'s, H: BatchHeader> OpenedBatch<'s, H> {
    /// Streams the packets; the last item is an error if the packet file's digest differs
    /// from the signed header's, so callers must not act on results before the stream ends.
    pub fn packets<P: Record>(&self) -> Result<PacketStream<P>, BatchError> {
        let (reader, object): (Box<dyn Read + Send>, String) = match &self.packets {
            PacketSource::Inline { bytes, object } => (
                Box::new(io::Cursor::new(SharedBytes(bytes.clone()))),
                object.clone(),
            ),
            PacketSource::Object {
                store,
                key,
                offset,
                size,
                trailer,
            } => {
                let mut reader = store.get(key)?;
                let skipped = io::copy(&mut (&mut reader).take(*offset), &mut io::sink());
                if skipped.ok() != Some(*offset) {
                    return Err(BatchError::Other {
                        object: store.describe(key),
                        reason: "ends before its inline packets (changed since it was opened?)"
                            .into(),
                    });
                }
                let packets: Box<dyn Read + Send> = match trailer {
                    Some(marker) => Box::new(wire::SyncTrailer::new(reader, *size, *marker)),
                    None => Box::new(reader.take(*size)),
                };
                (packets, store.describe(key))
            }
        };
        PacketStream::new(
            reader,
            object,
            self.header.packet_file_digest_algorithm(),
            self.header.packet_file_digest().to_vec(),
        )
    }

    /// A description of where the packets come from, for messages.
    pub fn packet_object(&self) -> String {
        match &self.packets {
            PacketSource::Inline { object, .. } => object.clone(),
            PacketSource::Object { store, key, .. } => store.describe(key),
        }
    }
}

struct SharedBytes(Arc<Vec<u8>>);
impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Hashes what the Avro reader pulls through it, into a digest shared with the stream,
/// and counts the bytes.
struct TeeHash<R> {
    inner: R,
    hasher: Arc<Mutex<DigestStream>>,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for TeeHash<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Packets of a batch, streamed; the digest is checked when the records run out.
pub struct PacketStream<P: Record> {
    records: Option<RecordReader<P, TeeHash<Box<dyn Read + Send>>>>,
    hasher: Arc<Mutex<DigestStream>>,
    /// Bytes of the file read so far.
    read: Arc<AtomicU64>,
    expected: Vec<u8>,
    object: String,
}

impl<P: Record> PacketStream<P> {
    fn new(
        reader: Box<dyn Read + Send>,
        object: String,
        algorithm: PacketDigest,
        expected: Vec<u8>,
    ) -> Result<Self, BatchError> {
        let hasher = Arc::new(Mutex::new(algorithm.stream()));
        let read = Arc::new(AtomicU64::new(0));
        let tee = TeeHash {
            inner: reader,
            hasher: hasher.clone(),
            read: read.clone(),
        };
        let records = RecordReader::new(tee).map_err(|e| BatchError::Wire {
            object: object.clone(),
            source: e,
        })?;
        Ok(PacketStream {
            records: Some(records),
            hasher,
            read,
            expected,
            object,
        })
    }

    /// Up to `n` packets; an empty vector at the end.
    pub fn next_chunk(&mut self, n: usize) -> Result<Vec<P>, BatchError> {
        self.next_chunk_within(n, u64::MAX)
    }

    /// Up to `n` packets, fewer once about `max_bytes` of the file were read for them
    /// (whole Avro blocks are read at once); an empty vector at the end. Large packets
    /// (a Prio3 leader share of 2048 buckets is 33 KB) thus come in small chunks.
    pub fn next_chunk_within(&mut self, n: usize, max_bytes: u64) -> Result<Vec<P>, BatchError> {
        let start = self.read.load(Ordering::Relaxed);
        let mut chunk = Vec::with_capacity(n.min(1024));
        while chunk.len() < n {
            match self.next() {
                Some(item) => chunk.push(item?),
                None => break,
            }
            if self.read.load(Ordering::Relaxed) - start >= max_bytes {
                break;
            }
        }
        Ok(chunk)
    }

    fn check_digest(&mut self) -> Result<(), BatchError> {
        let digest = match self.hasher.lock() {
            Ok(mut h) => std::mem::replace(&mut *h, PacketDigest::Sha256.stream()).finish(),
            Err(_) => {
                return Err(BatchError::Other {
                    object: self.object.clone(),
                    reason: "digest state poisoned".into(),
                })
            }
        };
        if digest[..] != self.expected[..] {
            return Err(BatchError::DigestMismatch {
                object: self.object.clone(),
                expected: hex(&self.expected),
                actual: hex(&digest),
            });
        }
        Ok(())
    }
}

impl<P: Record> Iterator for PacketStream<P> {
    type Item = Result<P, BatchError>;
    fn next(&mut self) -> Option<Self::Item> {
        let records = self.records.as_mut()?;
        match records.next() {
            Some(Ok(p)) => Some(Ok(p)),
            Some(Err(e)) => {
                self.records = None;
                Some(Err(BatchError::Wire {
                    object: self.object.clone(),
                    source: e,
                }))
            }
            None => {
                // A reader that stopped before the end of the file leaves the digest short,
                // so the check below fails rather than passing a truncated file.
                self.records = None;
                self.check_digest().err().map(Err)
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchId, BatchKind};
    use crate::store::LocalStore;
    use crate::wire::{DapValidationHeader, DapVerifierShare};

    fn header(digest: Vec<u8>, algorithm: PacketDigest) -> DapValidationHeader {
        DapValidationHeader {
            batch_uuid: uuid::Uuid::from_u128(7),
            name: "dap".into(),
            task_id: vec![3; 32],
            packet_file_digest: digest,
            packet_file_digest_algorithm: algorithm,
        }
    }

    /// A validation hashed with BLAKE3 reads back with its digest checked; a header
    /// naming another hash than the writer used is refused and nothing is written.
    #[test]
    fn a_batch_is_hashed_with_what_its_header_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (key, _) = SigningKey::generate("k").unwrap();
        let mut trust = TrustSet::new();
        trust.insert("k", key.verifying_key());
        let id = BatchId::new("dap", chrono::Utc::now(), uuid::Uuid::from_u128(7)).unwrap();
        let names = id.names(BatchKind::Validation(crate::ids::ServerIndex::Zero));
        let shares: Vec<DapVerifierShare> = (0..50u8)
            .map(|i| DapVerifierShare {
                report_id: vec![i; 16],
                verifier_share: vec![i; 40],
            })
            .collect();
        let write = |named: PacketDigest| {
            let mut w = BatchWriter::single_object(names.clone(), PacketDigest::Blake3).unwrap();
            shares.iter().for_each(|s| w.append(s).unwrap());
            w.finish(|d| header(d, named), &key, &[&store])
        };

        let err = write(PacketDigest::Sha256).unwrap_err().to_string();
        assert!(
            err.contains("names SHA-256 for a digest made with BLAKE3"),
            "{err}"
        );
        assert_eq!(store.head(&names.signature).unwrap(), None);

        write(PacketDigest::Blake3).unwrap();
        let batch = open_batch::<DapValidationHeader>(&store, &names, &trust, u64::MAX).unwrap();
        assert_eq!(
            batch.header.packet_file_digest_algorithm,
            PacketDigest::Blake3
        );
        let read: Vec<DapVerifierShare> = batch.packets().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, shares);
    }
}
