//! `divvi inspect`: any object of the ENPA format as readable JSON; with trusted keys,
//! the signature verdict, and for batch headers and signatures, the packet digest verdict.

use crate::batch::hex;
use crate::crypto::{sha256, TrustSet};
use crate::wire::{self, *};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Objects larger than this are not inspected whole.
const MAX_INSPECT_BYTES: u64 = 4 << 30;

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
        other => anyhow::bail!("record {other} is not one of the ENPA v1 records"),
    }
}

/// The packet file that belongs to a header file: `X.batch` → `X.batch.avro`,
/// `S.sum_N` → `S.invalid_uuid_N.avro`.
fn packet_file_of(header: &Path) -> PathBuf {
    let s = header.to_string_lossy();
    if let Some(i) = s.rfind(".sum_") {
        return PathBuf::from(format!("{}.invalid_uuid_{}.avro", &s[..i], &s[i + 5..]));
    }
    PathBuf::from(format!("{s}.avro"))
}

fn digest_of_header(header_bytes: &[u8]) -> Option<Vec<u8>> {
    let name = wire::record_name(header_bytes).ok()?;
    match name.as_str() {
        "PrioIngestionHeader" => decode_single::<IngestionHeader>(header_bytes)
            .ok()
            .map(|h| h.packet_file_digest),
        "PrioValidityHeader" => decode_single::<ValidityHeader>(header_bytes)
            .ok()
            .map(|h| h.packet_file_digest),
        "PrioSumPart" => decode_single::<SumPart>(header_bytes)
            .ok()
            .map(|h| h.packet_file_digest),
        _ => None,
    }
}

fn digest_verdict(header_bytes: &[u8], packets: Option<&[u8]>, packet_path: &Path) -> Value {
    let Some(expected) = digest_of_header(header_bytes) else {
        return json!({"verdict": "not a batch header"});
    };
    let owned;
    let packets = match packets {
        Some(p) => p,
        None => match std::fs::read(packet_path) {
            Ok(b) => {
                owned = b;
                &owned[..]
            }
            Err(e) => {
                return json!({"verdict": "not checked", "reason": format!("{}: {e}", packet_path.display())})
            }
        },
    };
    let actual = sha256(packets);
    json!({
        "verdict": if actual[..] == expected[..] { "matches" } else { "MISMATCH" },
        "expected": hex(&expected),
        "actual": hex(&actual),
        "packet_file": packet_path.display().to_string(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_INSPECT_BYTES {
        anyhow::bail!("{} is {len} bytes, over the inspect limit", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Describes a file as JSON. `trust` (if any) checks signatures; `limit` caps records shown.
pub fn inspect(path: &Path, trust: Option<&TrustSet>, limit: usize) -> Result<Value> {
    let bytes = read_file(path)?;
    let file = path.display().to_string();
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
        let header_path = PathBuf::from(file.strip_suffix(".sig").unwrap_or(&file));
        let header = match &sig.batch_header {
            Some(h) => Ok(h.clone()),
            None => {
                std::fs::read(&header_path).map_err(|e| format!("{}: {e}", header_path.display()))
            }
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
                out["digest"] =
                    digest_verdict(&h, sig.packets.as_deref(), &packet_file_of(&header_path));
            }
            Err(reason) => out["signature"] = json!({"verdict": "not checked", "reason": reason}),
        }
    } else if matches!(
        name.as_str(),
        "PrioIngestionHeader" | "PrioValidityHeader" | "PrioSumPart"
    ) {
        out["digest"] = digest_verdict(&bytes, None, &packet_file_of(path));
    }
    Ok(out)
}
