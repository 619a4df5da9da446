//! The hashes of `packet_file_digest`: SHA-256 (ENPA's, and every batch header without a
//! digest algorithm field) and BLAKE3 (DAP ingestion and validation batches), one-shot,
//! streaming, and as I/O adapters (a writer of either; a SHA-256 reader) so a packet file
//! can be hashed while it is read or written, without a second pass.

use std::io::{self, Read, Write};

use aws_lc_rs::digest::{self, Context, SHA256};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    to_array(digest::digest(&SHA256, bytes))
}

fn to_array(d: digest::Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SHA-256 output is always 32 bytes.
    out.copy_from_slice(d.as_ref());
    out
}

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Sha256Stream(Context);

impl Sha256Stream {
    pub fn new() -> Self {
        Sha256Stream(Context::new(&SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        to_array(self.0.finish())
    }
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sha256Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256Stream")
    }
}

/// The hash a batch header's `packet_file_digest` is made with, as its header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketDigest {
    Sha256,
    /// For large packet files read on the hot path: a Prio3 leader's shares are ~33 KB a
    /// report at histogram 2048, and SHA-256 of them was 6% of its intake.
    Blake3,
}

impl PacketDigest {
    /// The name headers carry.
    pub fn name(self) -> &'static str {
        match self {
            PacketDigest::Sha256 => "SHA-256",
            PacketDigest::Blake3 => "BLAKE3",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [PacketDigest::Sha256, PacketDigest::Blake3]
            .into_iter()
            .find(|d| d.name() == name)
    }

    pub fn digest(self, bytes: &[u8]) -> [u8; 32] {
        let mut stream = self.stream();
        stream.update(bytes);
        stream.finish()
    }

    pub fn stream(self) -> DigestStream {
        match self {
            PacketDigest::Sha256 => DigestStream::Sha256(Sha256Stream::new()),
            PacketDigest::Blake3 => DigestStream::Blake3(Box::default()),
        }
    }
}

impl serde::Serialize for PacketDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Incremental [`PacketDigest`].
#[derive(Clone)]
pub enum DigestStream {
    Sha256(Sha256Stream),
    Blake3(Box<blake3::Hasher>),
}

impl DigestStream {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            DigestStream::Sha256(s) => s.update(bytes),
            DigestStream::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    pub fn finish(self) -> [u8; 32] {
        match self {
            DigestStream::Sha256(s) => s.finish(),
            DigestStream::Blake3(h) => *h.finalize().as_bytes(),
        }
    }
}

/// Reader adapter that hashes every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R: Read> {
    inner: R,
    hash: Sha256Stream,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: Sha256Stream::new(),
        }
    }

    /// Digest of everything read so far (read to EOF first for a whole-file digest).
    pub fn finish(self) -> [u8; 32] {
        self.hash.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Writer adapter that hashes every byte the inner writer accepted.
pub struct HashingWriter<W: Write> {
    inner: W,
    hash: DigestStream,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, digest: PacketDigest) -> Self {
        HashingWriter {
            inner,
            hash: digest.stream(),
        }
    }

    /// The inner writer (not flushed here) and the digest of everything written.
    pub fn finish(self) -> (W, [u8; 32]) {
        (self.inner, self.hash.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Hash only what was accepted, so short writes are not counted twice.
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];

    #[test]
    fn sha256_known_answer() {
        assert_eq!(sha256(b"abc"), ABC);
        let mut s = Sha256Stream::new();
        s.update(b"a");
        s.update(b"bc");
        assert_eq!(s.finish(), ABC);
    }

    #[test]
    fn packet_digests_known_answers_by_name_and_in_pieces() {
        // BLAKE3("abc"), from the BLAKE3 reference implementation's test vectors.
        let blake3_abc = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(PacketDigest::Blake3.digest(b"abc")), blake3_abc);
        assert_eq!(PacketDigest::Sha256.digest(b"abc"), ABC);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        for d in [PacketDigest::Sha256, PacketDigest::Blake3] {
            assert_eq!(PacketDigest::from_name(d.name()), Some(d));
            let mut s = d.stream();
            for piece in data.chunks(7001) {
                s.update(piece);
            }
            assert_eq!(s.finish(), d.digest(&data), "{}", d.name());
        }
        assert_eq!(PacketDigest::from_name("sha256"), None);
    }

    #[test]
    fn reader_and_writer_hash_what_passes_through() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = HashingReader::new(&data[..]);
        let mut copy = Vec::new();
        r.read_to_end(&mut copy).unwrap();
        assert_eq!(copy, data);
        assert_eq!(r.finish(), sha256(&data));

        for digest in [PacketDigest::Sha256, PacketDigest::Blake3] {
            let mut w = HashingWriter::new(Vec::new(), digest);
            w.write_all(&data[..17]).unwrap();
            w.write_all(&data[17..]).unwrap();
            let (inner, d) = w.finish();
            assert_eq!(inner, data);
            assert_eq!(d, digest.digest(&data), "{}", digest.name());
        }
    }
}
