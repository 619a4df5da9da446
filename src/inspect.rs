//! `divvi inspect`: any object of the ENPA format as readable JSON; with trusted keys,
//! the signature verdict, and for batch headers and signatures, the packet digest verdict.
//!
//! Bounded: it reads regular files only (a FIFO, device, socket or folder is refused by
//! its type before it is opened, and opening never blocks), and never more of an object,
//! the named one or a neighbour it opens itself, than the cap for its kind.

use crate::batch::{hex, BatchHeader, MAX_HEADER_BYTES, MAX_SIGNATURE_BYTES};
use crate::crypto::{PacketDigest, TrustSet};
use crate::store::ObjectStore;
use crate::wire::{self, *};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs::{File, FileType};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most `inspect` reads of a file of packets (ingestion, validation or invalid-packet
/// records), which it holds in memory whole: ample for a batch of 100,000 packets.
pub const MAX_PACKET_FILE_BYTES: u64 = 64 << 20;

/// The cap for a file of `record`s: the batch module's caps for headers (and sum parts) and
/// signatures (which may carry a batch's packets inline), else the packet-file cap.
fn cap_of(record: &str) -> u64 {
    match record {
        "PrioBatchSignature" => MAX_SIGNATURE_BYTES,
        "PrioIngestionHeader"
        | "PrioValidityHeader"
        | "PrioSumPart"
        | "DapIngestionHeader"
        | "DapSumPart"
        | "DapValidationHeader"
        | "Poplar1RoundHeader" => MAX_HEADER_BYTES,
        _ => MAX_PACKET_FILE_BYTES,
    }
}

/// What a file that is not a regular file is, for the refusal.
fn kind_of(file_type: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn refuse_unless_regular(path: &Path, file_type: FileType) -> Result<()> {
    match file_type.is_file() {
        true => Ok(()),
        false => bail!(
            "{} is {}: inspect reads regular files only",
            path.display(),
            kind_of(file_type)
        ),
    }
}

/// Opens a regular file (symlinks followed), checking its type before opening it and
/// again on what was opened; non-blocking, so a file swapped for a FIFO cannot hang us.
/// Returns it with its size.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let reading = || format!("reading {}", path.display());
    refuse_unless_regular(
        path,
        std::fs::metadata(path).with_context(reading)?.file_type(),
    )?;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(reading)?;
    let meta = file.metadata().with_context(reading)?;
    refuse_unless_regular(path, meta.file_type())?;
    Ok((file, meta.len()))
}

/// What `inspect` reads: a local file, or an object of a store (S3): the named object and
/// the neighbours it opens itself (a signature's header, a header's packet file).
pub enum Source<'a> {
    File(PathBuf),
    Object {
        store: &'a dyn ObjectStore,
        key: String,
    },
}

impl Source<'_> {
    /// How errors and the output name it.
    fn display(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Object { store, key } => store.describe(key),
        }
    }

    /// Its name (a path or a key), from which neighbours' names are made.
    fn name(&self) -> String {
        match self {
            Source::File(path) => path.to_string_lossy().into_owned(),
            Source::Object { key, .. } => key.clone(),
        }
    }

    /// The neighbour called `name` (made from [`Source::name`]), in the same place.
    fn neighbour(&self, name: String) -> Source<'_> {
        match self {
            Source::File(_) => Source::File(PathBuf::from(name)),
            Source::Object { store, .. } => Source::Object {
                store: *store,
                key: name,
            },
        }
    }

    /// Opens it for reading, with its size; a file only if it is a regular one.
    fn open(&self) -> Result<(Box<dyn Read + '_>, u64)> {
        match self {
            Source::File(path) => {
                let (file, size) = open_regular(path)?;
                Ok((Box::new(file), size))
            }
            Source::Object { store, key } => {
                let size = store
                    .head(key)?
                    .ok_or_else(|| anyhow::anyhow!("{}: no such object", store.describe(key)))?;
                Ok((store.get(key)?, size))
            }
        }
    }
}

fn refuse_over(source: &Source, what: &str, size: u64, cap: u64) -> Result<()> {
    match size > cap {
        true => bail!(
            "{} ({what}) is {size} bytes, over the inspect limit of {cap} bytes",
            source.display()
        ),
        false => Ok(()),
    }
}

/// Reads the rest of `reader` onto `bytes`, never past `cap` in all (a file may grow).
fn read_rest(
    reader: impl Read,
    source: &Source,
    what: &str,
    cap: u64,
    bytes: &mut Vec<u8>,
) -> Result<()> {
    let room = cap.saturating_sub(bytes.len() as u64);
    reader
        .take(room.saturating_add(1))
        .read_to_end(bytes)
        .with_context(|| format!("reading {}", source.display()))?;
    refuse_over(source, what, bytes.len() as u64, cap)
}

/// Reads a neighbour we know the kind of, refusing one over `cap`.
fn read_capped(source: &Source, what: &str, cap: u64) -> Result<Vec<u8>> {
    let (reader, size) = source.open()?;
    refuse_over(source, what, size, cap)?;
    let mut bytes = Vec::new();
    read_rest(reader, source, what, cap, &mut bytes)?;
    Ok(bytes)
}

/// Reads the object named on the command line: its first bytes (within the header cap),
/// then the rest within the cap for the record its Avro header declares.
fn read_inspected(source: &Source) -> Result<Vec<u8>> {
    let (mut reader, size) = source.open()?;
    let mut bytes = Vec::new();
    (&mut reader)
        .take(MAX_HEADER_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", source.display()))?;
    let (what, cap) = cap_for(source, &bytes, size)?;
    refuse_over(source, &what, size, cap)?;
    read_rest(reader, source, &what, cap, &mut bytes)?;
    Ok(bytes)
}

/// What a file is and its cap: any file fits the header cap; a larger one gets the cap
/// of the record its first bytes declare.
fn cap_for(source: &Source, first_bytes: &[u8], size: u64) -> Result<(String, u64)> {
    if size <= MAX_HEADER_BYTES {
        return Ok(("a file".into(), MAX_HEADER_BYTES));
    }
    let record = wire::record_name(first_bytes)
        .with_context(|| format!("{} is not an ENPA Avro file", source.display()))?;
    Ok((format!("a {record} file"), cap_of(&record)))
}

fn records<R: Record + serde::Serialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<(Vec<Value>, usize)> {
    let mut shown = Vec::new();
    let mut count = 0;
    for r in RecordReader::<R, _>::new(bytes)? {
        let r = r?;
        if shown.len() < limit {
            shown.push(serde_json::to_value(&r)?);
        }
        count += 1;
    }
    Ok((shown, count))
}

fn decode_any(name: &str, bytes: &[u8], limit: usize) -> Result<(Vec<Value>, usize)> {
    match name {
        "PrioIngestionHeader" => records::<IngestionHeader>(bytes, limit),
        "PrioDataSharePacket" => records::<DataSharePacket>(bytes, limit),
        "PrioValidityHeader" => records::<ValidityHeader>(bytes, limit),
        "PrioValidityPacket" => records::<ValidityPacket>(bytes, limit),
        "PrioSumPart" => records::<SumPart>(bytes, limit),
        "PrioInvalidPacket" => records::<InvalidPacket>(bytes, limit),
        "PrioBatchSignature" => records::<BatchSignature>(bytes, limit),
        "DapIngestionHeader" => records::<DapIngestionHeader>(bytes, limit),
        "DapReportShare" => records::<DapReportShare>(bytes, limit),
        "DapSumPart" => records::<DapSumPart>(bytes, limit),
        "DapValidationHeader" => records::<DapValidationHeader>(bytes, limit),
        "DapVerifierShare" => records::<DapVerifierShare>(bytes, limit),
        "Poplar1RoundHeader" => records::<Poplar1RoundHeader>(bytes, limit),
        other => anyhow::bail!("record {other} is not one of the ENPA v1 or DAP records"),
    }
}

/// The packet file's name that belongs to a header's: `X.batch` → `X.batch.avro`,
/// `S.sum_N` → `S.invalid_uuid_N.avro`.
fn packet_file_of(header: &str) -> String {
    if let Some(i) = header.rfind(".sum_") {
        return format!("{}.invalid_uuid_{}.avro", &header[..i], &header[i + 5..]);
    }
    format!("{header}.avro")
}

/// The packet-file digest a header carries, and the hash it is made with (each header
/// type says which, through `BatchHeader`).
fn digest_of_header(header_bytes: &[u8]) -> Option<(PacketDigest, Vec<u8>)> {
    fn digest_of<H: BatchHeader>(bytes: &[u8]) -> Option<(PacketDigest, Vec<u8>)> {
        let h = decode_single::<H>(bytes).ok()?;
        Some((
            h.packet_file_digest_algorithm(),
            h.packet_file_digest().to_vec(),
        ))
    }
    match wire::record_name(header_bytes).ok()?.as_str() {
        "PrioIngestionHeader" => digest_of::<IngestionHeader>(header_bytes),
        "PrioValidityHeader" => digest_of::<ValidityHeader>(header_bytes),
        "PrioSumPart" => digest_of::<SumPart>(header_bytes),
        "DapIngestionHeader" => digest_of::<DapIngestionHeader>(header_bytes),
        "DapSumPart" => digest_of::<DapSumPart>(header_bytes),
        "DapValidationHeader" => digest_of::<DapValidationHeader>(header_bytes),
        "Poplar1RoundHeader" => digest_of::<Poplar1RoundHeader>(header_bytes),
        _ => None,
    }
}

fn digest_verdict(header_bytes: &[u8], packets: Option<&[u8]>, packet_file: &Source) -> Value {
    let Some((algorithm, expected)) = digest_of_header(header_bytes) else {
        return json!({"verdict": "not a batch header"});
    };
    let owned;
    let packets = match packets {
        Some(p) => p,
        None => match read_capped(packet_file, "a packet file", MAX_PACKET_FILE_BYTES) {
            Ok(b) => {
                owned = b;
                &owned[..]
            }
            Err(e) => return json!({"verdict": "not checked", "reason": format!("{e:#}")}),
        },
    };
    let actual = algorithm.digest(packets);
    json!({
        "verdict": if actual[..] == expected[..] { "matches" } else { "MISMATCH" },
        "algorithm": algorithm.name(),
        "expected": hex(&expected),
        "actual": hex(&actual),
        "packet_file": packet_file.display(),
    })
}

/// Describes a file as JSON. `trust` (if any) checks signatures; `limit` caps records shown.
pub fn inspect(path: &Path, trust: Option<&TrustSet>, limit: usize) -> Result<Value> {
    inspect_source(&Source::File(path.to_path_buf()), trust, limit)
}

/// Describes a file or an object as JSON, as [`inspect`] does.
pub fn inspect_source(source: &Source, trust: Option<&TrustSet>, limit: usize) -> Result<Value> {
    let bytes = read_inspected(source)?;
    let file = source.display();
    if bytes.is_empty() {
        return Ok(
            json!({"file": file, "record": null, "records": [], "count": 0,
            "note": "empty file (an invalid-UUID file with no invalid packets)"}),
        );
    }
    let name =
        wire::record_name(&bytes).with_context(|| format!("{file} is not an ENPA Avro file"))?;
    let (shown, count) = decode_any(&name, &bytes, limit).with_context(|| file.clone())?;
    let mut out = json!({"file": file, "record": name, "count": count, "records": shown});
    if name == "PrioBatchSignature" {
        let sig: BatchSignature = decode_single(&bytes).with_context(|| file.clone())?;
        let name = source.name();
        let header_name = name.strip_suffix(".sig").unwrap_or(&name).to_string();
        let header = match &sig.batch_header {
            Some(h) => Ok(h.clone()),
            None => read_capped(
                &source.neighbour(header_name.clone()),
                "a batch header",
                MAX_HEADER_BYTES,
            )
            .map_err(|e| format!("{e:#}")),
        };
        match header {
            Ok(h) => {
                out["signature"] = match trust {
                    None => {
                        json!({"verdict": "not checked (no keys given)", "key_identifier": sig.key_identifier})
                    }
                    Some(t) => match t.verify(&sig.key_identifier, &h, &sig.batch_header_signature)
                    {
                        Ok(()) => json!({"verdict": "valid", "key_identifier": sig.key_identifier}),
                        Err(e) => {
                            json!({"verdict": "INVALID", "key_identifier": sig.key_identifier, "reason": e.to_string()})
                        }
                    },
                };
                if let Ok(hname) = wire::record_name(&h) {
                    if let Ok((hv, _)) = decode_any(&hname, &h, 1) {
                        out["header"] = hv.into_iter().next().unwrap_or(Value::Null);
                    }
                }
                let packet_file = source.neighbour(packet_file_of(&header_name));
                out["digest"] = digest_verdict(&h, sig.packets.as_deref(), &packet_file);
            }
            Err(reason) => out["signature"] = json!({"verdict": "not checked", "reason": reason}),
        }
    } else if matches!(
        name.as_str(),
        "PrioIngestionHeader" | "PrioValidityHeader" | "PrioSumPart"
    ) {
        let packet_file = source.neighbour(packet_file_of(&source.name()));
        out["digest"] = digest_verdict(&bytes, None, &packet_file);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dap_sum_parts_are_shown_and_carry_their_digest() {
        let part = crate::wire::tests::fixtures::dap_sum_part(1, 4);
        let bytes = encode_single(&part).unwrap();
        assert_eq!(
            cap_of(&wire::record_name(&bytes).unwrap()),
            MAX_HEADER_BYTES
        );
        assert_eq!(
            digest_of_header(&bytes),
            Some((PacketDigest::Sha256, vec![0xe3; 32]))
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dap.sum_0");
        std::fs::write(&path, &bytes).unwrap();
        let out = inspect(&path, None, 10).unwrap();
        assert_eq!(out["record"], "DapSumPart");
        assert_eq!(out["records"][0]["checksum"], hex(&part.checksum));
        assert_eq!(out["records"][0]["collector_config_id"], 4);
    }
}
