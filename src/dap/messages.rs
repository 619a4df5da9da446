//! DAP upload messages in TLS presentation syntax (D09 §4.4.2, D18 §4.4.2): big-endian
//! integers, byte-length prefixes, no framing. The two drafts differ in one place here:
//! DAP-18's report metadata ends with public extensions, DAP-09's does not, so reports
//! and metadata are encoded and decoded for a [`DapVersion`]. Decoding goes through
//! [`Reader`], which names the field and byte offset of what is wrong and refuses
//! lengths outside each field's range and bytes left over.

use prio::codec::{CodecError, Encode};

use super::task::{DapVersion, TaskId};

/// Length of a report id (`opaque ReportID[16]`), also the VDAF nonce.
pub const REPORT_ID_LEN: usize = 16;

/// A message that does not decode: what, where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{field} at byte {offset}: needs {need} bytes, only {have} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("{field} at byte {offset}: length {len} is outside {min}..={max}")]
    BadLength {
        field: &'static str,
        offset: usize,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("{what}: {count} bytes left over after byte {offset}")]
    TrailingBytes {
        what: &'static str,
        offset: usize,
        count: usize,
    },
    #[error("{field} at byte {offset}: {reason}")]
    Unsupported {
        field: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("report {index} (starting at byte {offset} of the upload): {source}")]
    InReport {
        index: usize,
        offset: usize,
        source: Box<WireError>,
    },
    #[error("encoding {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// A cursor over a message that reads TLS-syntax fields and names them in its errors.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self, what: &'static str) -> Result<(), WireError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                what,
                offset: self.pos,
                count: self.bytes.len() - self.pos,
            })
        }
    }

    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], WireError> {
        let have = self.bytes.len() - self.pos;
        if n > have {
            return Err(WireError::Truncated {
                field,
                offset: self.pos,
                need: n,
                have,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// `opaque field<min..2^16-1>`.
    pub fn opaque_u16(&mut self, field: &'static str, min: usize) -> Result<&'a [u8], WireError> {
        let offset = self.pos;
        let len = usize::from(self.u16(field)?);
        self.check_len(field, offset, len, min, usize::from(u16::MAX))?;
        self.take(field, len)
    }

    /// `opaque field<min..2^32-1>`.
    pub fn opaque_u32(&mut self, field: &'static str, min: usize) -> Result<&'a [u8], WireError> {
        let offset = self.pos;
        let len = self.u32(field)? as usize;
        self.check_len(field, offset, len, min, u32::MAX as usize)?;
        self.take(field, len)
    }

    fn check_len(
        &self,
        field: &'static str,
        offset: usize,
        len: usize,
        min: usize,
        max: usize,
    ) -> Result<(), WireError> {
        if len < min || len > max {
            return Err(WireError::BadLength {
                field,
                offset,
                len,
                min,
                max,
            });
        }
        Ok(())
    }
}

/// Decodes one whole message: bytes left over are an error.
fn decode_exact<T>(
    bytes: &[u8],
    what: &'static str,
    decode: impl FnOnce(&mut Reader) -> Result<T, WireError>,
) -> Result<T, WireError> {
    let mut r = Reader::new(bytes);
    let value = decode(&mut r)?;
    r.finish(what)?;
    Ok(value)
}

/// Appends `opaque<0..2^16-1>`: the length, then the bytes in one copy (prio's
/// `encode_u16_items` encodes a byte at a time, which shows in an upload server's profile).
pub(super) fn put_opaque_u16(bytes: &mut Vec<u8>, value: &[u8]) -> Result<(), CodecError> {
    let len =
        u16::try_from(value.len()).map_err(|_| CodecError::LengthPrefixTooBig(value.len()))?;
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(value);
    Ok(())
}

/// Appends `opaque<0..2^32-1>`, as [`put_opaque_u16`].
pub(super) fn put_opaque_u32(bytes: &mut Vec<u8>, value: &[u8]) -> Result<(), CodecError> {
    let len =
        u32::try_from(value.len()).map_err(|_| CodecError::LengthPrefixTooBig(value.len()))?;
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(value);
    Ok(())
}

pub(super) fn encoded<T: Encode>(what: &'static str, value: &T) -> Result<Vec<u8>, WireError> {
    value.get_encoded().map_err(|e| WireError::Encode {
        what,
        reason: e.to_string(),
    })
}

/// `opaque ReportID[16]`: 16 random bytes, the VDAF nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportId(pub [u8; REPORT_ID_LEN]);

impl ReportId {
    /// 16 bytes from the OS CSPRNG (D18 §4.4.2 requires a CSPRNG).
    pub fn random() -> Result<Self, WireError> {
        let mut id = [0u8; REPORT_ID_LEN];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| WireError::Encode {
            what: "report id",
            reason: "random number generator failed".into(),
        })?;
        Ok(ReportId(id))
    }
}

/// `ReportMetadata`: report id and time; DAP-18 adds public extensions, of which divvi
/// writes none and accepts none (no extension types are defined for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportMetadata {
    pub report_id: ReportId,
    /// DAP-18: units of the task's time_precision since the epoch; DAP-09: seconds
    /// (see [`super::Task::time_unit`]).
    pub time: u64,
}

impl ReportMetadata {
    pub fn encode(&self, version: DapVersion, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&self.report_id.0);
        bytes.extend_from_slice(&self.time.to_be_bytes());
        if version == DapVersion::Dap18 {
            bytes.extend_from_slice(&0u16.to_be_bytes()); // public_extensions: none
        }
    }

    pub fn encoded_len(version: DapVersion) -> usize {
        match version {
            DapVersion::Dap09 => REPORT_ID_LEN + 8,
            DapVersion::Dap18 => REPORT_ID_LEN + 8 + 2,
        }
    }

    pub fn decode(version: DapVersion, r: &mut Reader) -> Result<Self, WireError> {
        let report_id = ReportId(r.array("report_id")?);
        let time = r.u64("time")?;
        if version == DapVersion::Dap09 {
            return Ok(ReportMetadata { report_id, time });
        }
        let offset = r.offset();
        let extensions = r.opaque_u16("public_extensions", 0)?;
        if !extensions.is_empty() {
            let mut ext = Reader::new(extensions);
            let kind = ext.u16("extension_type").unwrap_or(0);
            return Err(WireError::Unsupported {
                field: "public_extensions",
                offset,
                reason: format!("unsupported public extension (type 0x{kind:04x})"),
            });
        }
        Ok(ReportMetadata { report_id, time })
    }

    pub fn from_bytes(version: DapVersion, bytes: &[u8]) -> Result<Self, WireError> {
        decode_exact(bytes, "report metadata", |r| Self::decode(version, r))
    }

    pub fn to_bytes(&self, version: DapVersion) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::encoded_len(version));
        self.encode(version, &mut bytes);
        bytes
    }
}

/// `HpkeCiphertext`: config id, encapsulated key `<1..2^16-1>`, payload `<1..2^32-1>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpkeCiphertext {
    pub config_id: u8,
    pub enc: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Encode for HpkeCiphertext {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        self.config_id.encode(bytes)?;
        put_opaque_u16(bytes, &self.enc)?;
        put_opaque_u32(bytes, &self.payload)
    }
    fn encoded_len(&self) -> Option<usize> {
        Some(1 + 2 + self.enc.len() + 4 + self.payload.len())
    }
}

/// An `HpkeCiphertext` whose bytes live elsewhere (a batch record): opening one needs no
/// copy of a payload that may be tens of KB.
#[derive(Debug, Clone, Copy)]
pub struct HpkeCiphertextRef<'a> {
    pub config_id: u8,
    pub enc: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> From<&'a HpkeCiphertext> for HpkeCiphertextRef<'a> {
    fn from(c: &'a HpkeCiphertext) -> Self {
        HpkeCiphertextRef {
            config_id: c.config_id,
            enc: &c.enc,
            payload: &c.payload,
        }
    }
}

impl HpkeCiphertext {
    pub fn decode(r: &mut Reader) -> Result<Self, WireError> {
        Ok(HpkeCiphertext {
            config_id: r.u8("config_id")?,
            enc: r.opaque_u16("enc", 1)?.to_vec(),
            payload: r.opaque_u32("payload", 1)?.to_vec(),
        })
    }
}

/// `Report`: metadata, public share `<0..2^32-1>`, then the leader's and the helper's
/// encrypted input shares (in that order: shares are assigned by position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub metadata: ReportMetadata,
    pub public_share: Vec<u8>,
    pub leader_encrypted_input_share: HpkeCiphertext,
    pub helper_encrypted_input_share: HpkeCiphertext,
}

impl Report {
    pub fn encode(&self, version: DapVersion, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        self.metadata.encode(version, bytes);
        put_opaque_u32(bytes, &self.public_share)?;
        self.leader_encrypted_input_share.encode(bytes)?;
        self.helper_encrypted_input_share.encode(bytes)
    }

    pub fn encoded_len(&self, version: DapVersion) -> Option<usize> {
        Some(
            ReportMetadata::encoded_len(version)
                + 4
                + self.public_share.len()
                + self.leader_encrypted_input_share.encoded_len()?
                + self.helper_encrypted_input_share.encoded_len()?,
        )
    }

    pub fn decode(version: DapVersion, r: &mut Reader) -> Result<Self, WireError> {
        Ok(Report {
            metadata: ReportMetadata::decode(version, r)?,
            public_share: r.opaque_u32("public_share", 0)?.to_vec(),
            leader_encrypted_input_share: HpkeCiphertext::decode(r)?,
            helper_encrypted_input_share: HpkeCiphertext::decode(r)?,
        })
    }

    pub fn from_bytes(version: DapVersion, bytes: &[u8]) -> Result<Self, WireError> {
        decode_exact(bytes, "report", |r| Self::decode(version, r))
    }

    pub fn to_bytes(&self, version: DapVersion) -> Result<Vec<u8>, WireError> {
        encode_reports(version, std::slice::from_ref(self))
    }
}

/// Decodes reports back to back to the end, no count: a DAP-18 `UploadRequest` body, and
/// the form divvi keeps DAP-09's one-report uploads in too (`divvi client`'s output,
/// the upload journal). An error names the report's index and the byte offset where it
/// starts.
pub fn decode_reports(version: DapVersion, bytes: &[u8]) -> Result<Vec<Report>, WireError> {
    let mut r = Reader::new(bytes);
    let mut reports = Vec::new();
    while !r.is_empty() {
        let offset = r.offset();
        let report = Report::decode(version, &mut r).map_err(|e| WireError::InReport {
            index: reports.len(),
            offset,
            source: Box::new(e),
        })?;
        reports.push(report);
    }
    Ok(reports)
}

/// Encodes reports back to back (a DAP-18 `UploadRequest` body).
pub fn encode_reports(version: DapVersion, reports: &[Report]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    for report in reports {
        report
            .encode(version, &mut out)
            .map_err(|e| WireError::Encode {
                what: "report",
                reason: e.to_string(),
            })?;
    }
    Ok(out)
}

/// `PlaintextInputShare` (the same in D09 and D18): private extensions (divvi writes none, accepts none) and
/// the VDAF input share `<1..2^32-1>`. This is what HPKE seals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaintextInputShare {
    pub payload: Vec<u8>,
}

impl Encode for PlaintextInputShare {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        0u16.encode(bytes)?; // private_extensions: none
        put_opaque_u32(bytes, &self.payload)
    }
}

impl PlaintextInputShare {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let start = Self::payload_offset(bytes)?;
        Ok(PlaintextInputShare {
            payload: bytes[start..].to_vec(),
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        encoded("plaintext input share", self)
    }

    /// Where the payload of an encoded share starts (it runs to the end), once the whole
    /// is checked to decode: a receiver can keep the payload where it is.
    pub fn payload_offset(bytes: &[u8]) -> Result<usize, WireError> {
        decode_exact(bytes, "plaintext input share", |r| {
            let offset = r.offset();
            if !r.opaque_u16("private_extensions", 0)?.is_empty() {
                return Err(WireError::Unsupported {
                    field: "private_extensions",
                    offset,
                    reason: "unsupported private extension".into(),
                });
            }
            let payload = r.opaque_u32("payload", 1)?;
            Ok(bytes.len() - payload.len())
        })
    }
}

/// `InputShareAad`: D18 `task_id | TaskConfiguration | ReportMetadata | u32 public_share`,
/// D09 the same without the TaskConfiguration. `task_binding` is
/// [`super::Task::aad_task_binding`], computed once per task.
pub struct InputShareAad<'a> {
    pub version: DapVersion,
    pub task_id: &'a TaskId,
    pub task_binding: &'a [u8],
    pub metadata: &'a ReportMetadata,
    pub public_share: &'a [u8],
}

impl Encode for InputShareAad<'_> {
    fn encode(&self, bytes: &mut Vec<u8>) -> Result<(), CodecError> {
        bytes.extend_from_slice(&self.task_id.0);
        bytes.extend_from_slice(self.task_binding);
        self.metadata.encode(self.version, bytes);
        put_opaque_u32(bytes, self.public_share)
    }
}

impl InputShareAad<'_> {
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        encoded("input share AAD", self)
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
