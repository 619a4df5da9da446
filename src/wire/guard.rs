//! The input adapter under apache-avro's `Reader`: replays the header we already
//! parsed, then passes on one data block at a time, only after checking it.
//!
//! apache-avro trusts lengths and counts inside a block: an array count of 5e8 in a
//! 20-byte record makes it reserve 28 GB and abort the process. Each block is walked
//! here first with the writer schema, so apache-avro only ever decodes blocks whose
//! every length and count is backed by bytes actually present.
//!
//! apache-avro's work also grows with the values it decodes, and a writer schema can
//! declare values of zero bytes (null fields, arrays of nulls, empty records): a 4 KB
//! block with an array of millions of nulls took seconds and 500 MB. The walk therefore
//! also counts values, and a block may hold only a few per byte, as real files do.

use super::{slot::ErrorSlot, varint, WireError};
use apache_avro::Schema;
use std::io::{self, Read};

/// Same bound as apache-avro's default allocation limit.
const MAX_BLOCK_BYTES: u64 = 512 * 1024 * 1024;
/// Items per array or map; each costs apache-avro ~56 bytes as a `Value`.
const MAX_ITEMS: usize = 1 << 22;
/// Blocks above this size release their buffer once passed on.
const KEEP_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Values (fields, items, union branches) a block may hold per byte, plus a small
/// allowance. Our records take one value per byte at most (a sum of small numbers); the
/// bound keeps apache-avro's work and memory proportional to the bytes of the file.
const VALUES_PER_BYTE: u64 = 4;
const VALUES_ALLOWANCE: u64 = 256;

pub(crate) struct Guard<T> {
    input: T,
    writer: Schema,
    marker: [u8; 16],
    /// Bytes checked and ready for apache-avro: the header, then one framed block.
    ready: Vec<u8>,
    /// For a reader decoding records itself: where the loaded block's next record starts
    /// in `ready` (its records end where the sync marker begins), and how many are left.
    next_record: usize,
    records_left: i64,
    pos: usize,
    ended: bool,
    slot: ErrorSlot,
}

impl<T: Read> Guard<T> {
    pub(crate) fn new(
        input: T,
        header: Vec<u8>,
        writer: Schema,
        marker: [u8; 16],
        slot: ErrorSlot,
    ) -> Self {
        Self {
            input,
            writer,
            marker,
            ready: header,
            next_record: 0,
            records_left: 0,
            pos: 0,
            ended: false,
            slot,
        }
    }

    /// Loads and checks the next block; `Ok(false)` at a clean end of input. Its records
    /// are offered (`next_record`) only once the whole block has passed.
    pub(crate) fn next_block(&mut self) -> Result<bool, WireError> {
        if self.ready.capacity() > KEEP_BUFFER_BYTES {
            self.ready = Vec::new();
        }
        self.ready.clear();
        self.records_left = 0;
        self.pos = 0;
        let Some(count) = varint::read_long_or_end(&mut self.input).map_err(framing)? else {
            return Ok(false);
        };
        let size = varint::read_long(&mut self.input).map_err(framing)?;
        let Some(declared) = u64::try_from(size).ok().filter(|&s| s <= MAX_BLOCK_BYTES) else {
            return Err(malformed(format!("bad block size {size}")));
        };
        // Each record takes at least one byte (checked below), which bounds the count.
        if count < 1 || count > size {
            return Err(malformed(format!("bad record count {count} in block")));
        }

        varint::push_long(&mut self.ready, count);
        varint::push_long(&mut self.ready, size);
        let start = self.ready.len();
        // Grows with the bytes that actually arrive, not with the declared size.
        let got = (&mut self.input)
            .take(declared)
            .read_to_end(&mut self.ready)
            .map_err(WireError::Io)?;
        if u64::try_from(got).ok() != Some(declared) {
            return Err(malformed("truncated data block".into()));
        }
        let mut marker = [0u8; 16];
        self.input.read_exact(&mut marker).map_err(framing)?;
        if marker != self.marker {
            return Err(malformed("sync marker mismatch".into()));
        }

        let mut data = &self.ready[start..];
        let mut budget = declared
            .saturating_mul(VALUES_PER_BYTE)
            .saturating_add(VALUES_ALLOWANCE);
        for _ in 0..count {
            let before = data.len();
            skip(&self.writer, &mut data, &mut budget).map_err(malformed)?;
            if data.len() == before {
                return Err(malformed("record of zero bytes".into()));
            }
        }
        if !data.is_empty() {
            return Err(malformed("trailing bytes in data block".into()));
        }
        (self.next_record, self.records_left) = (start, count);
        self.ready.extend_from_slice(&marker);
        Ok(true)
    }
}

impl<T> Guard<T> {
    /// The loaded block's next record, exactly its bytes (stepped over again with the
    /// writer schema, as the walk did: no per-record bounds are kept, so memory stays
    /// one block); None once the block's records are taken.
    pub(crate) fn next_record(&mut self) -> Option<Result<&[u8], WireError>> {
        if self.records_left <= 0 {
            return None;
        }
        self.records_left -= 1;
        let start = self.next_record;
        let records_end = self.ready.len().saturating_sub(self.marker.len());
        let mut rest = self.ready.get(start..records_end).unwrap_or_default();
        let before = rest.len();
        // The walk passed these bytes within its budget; no need to count again.
        let mut unbounded = u64::MAX;
        if let Err(e) = skip(&self.writer, &mut rest, &mut unbounded) {
            self.records_left = 0;
            return Some(Err(malformed(e)));
        }
        self.next_record = start + (before - rest.len());
        self.ready.get(start..self.next_record).map(Ok)
    }
}

impl<T: Read> Read for Guard<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.ready.len() {
            if self.ended {
                return Ok(0);
            }
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    self.ended = true;
                    return Ok(0);
                }
                Err(e) => {
                    self.ended = true;
                    self.ready.clear();
                    self.pos = 0;
                    return Err(self.slot.keep(e));
                }
            }
        }
        let rest = &self.ready[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

fn malformed(reason: String) -> WireError {
    WireError::Malformed(reason)
}

/// An input error inside the framing: the end of input is truncation, the rest is I/O.
fn framing(e: io::Error) -> WireError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => malformed("truncated block header".into()),
        io::ErrorKind::InvalidData => malformed(e.to_string()),
        _ => WireError::Io(e),
    }
}

/// Steps over one datum of `schema`, checking that everything it declares is present
/// and counting its values against `budget`.
fn skip(schema: &Schema, data: &mut &[u8], budget: &mut u64) -> Result<(), String> {
    *budget = budget
        .checked_sub(1)
        .ok_or("more values than the block's bytes can carry")?;
    match schema {
        Schema::Null => Ok(()),
        Schema::Boolean => take(data, 1),
        Schema::Float => take(data, 4),
        Schema::Double => take(data, 8),
        Schema::Int
        | Schema::Long
        | Schema::Date
        | Schema::TimeMillis
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => long(data).map(drop),
        Schema::Bytes | Schema::String | Schema::Uuid => {
            let len = long(data)?;
            let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
            take(data, len)
        }
        Schema::Fixed(fixed) => take(data, fixed.size),
        Schema::Enum(e) => {
            let index = long(data)?;
            match usize::try_from(index) {
                Ok(i) if i < e.symbols.len() => Ok(()),
                _ => Err(format!("enum index {index} out of range")),
            }
        }
        Schema::Union(union) => {
            let index = long(data)?;
            let variant = usize::try_from(index)
                .ok()
                .and_then(|i| union.variants().get(i))
                .ok_or_else(|| format!("union index {index} out of range"))?;
            skip(variant, data, budget)
        }
        Schema::Record(record) => record
            .fields
            .iter()
            .try_for_each(|field| skip(&field.schema, data, budget)),
        Schema::Array(array) => items(data, |data| skip(&array.items, data, budget)),
        Schema::Map(map) => items(data, |data| {
            skip(&Schema::String, data, budget)?;
            skip(&map.types, data, budget)
        }),
        other => Err(format!(
            "unsupported {:?} type",
            apache_avro::schema::SchemaKind::from(other)
        )),
    }
}

/// Steps over the blocks of an array or map.
fn items(
    data: &mut &[u8],
    mut item: impl FnMut(&mut &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut total = 0usize;
    loop {
        let count = long(data)?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            long(data)?; // byte size of this block of items; not needed
        }
        let count = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        // apache-avro reserves `count` values up front: the count must be backed by bytes.
        total = total.saturating_add(count);
        if count > data.len() || total > MAX_ITEMS {
            return Err(format!("item count {count} exceeds the data"));
        }
        for _ in 0..count {
            item(data)?;
        }
    }
}

fn long(data: &mut &[u8]) -> Result<i64, String> {
    varint::take_long(data).ok_or_else(|| "truncated or overlong number".to_string())
}

fn take(data: &mut &[u8], len: usize) -> Result<(), String> {
    match data.get(len..) {
        Some(rest) => {
            *data = rest;
            Ok(())
        }
        None => Err(format!("length {len} exceeds the data")),
    }
}
