//! Opening a packet with a server's keys.

use crate::crypto::PacketPrivateKey;
use crate::wire::DataSharePacket;

/// Opens a packet with the key its `encryption_key_id` names, or, when it names none,
/// with each configured key in turn. The packet's UUID is bound as associated data (HPKE).
pub fn open_packet(
    keys: &[(String, PacketPrivateKey)],
    packet: &DataSharePacket,
) -> Result<Vec<u8>, String> {
    let aad = packet.uuid.as_bytes();
    match &packet.encryption_key_id {
        Some(id) => {
            let (_, key) = keys
                .iter()
                .find(|(k, _)| k == id)
                .ok_or_else(|| format!("unknown encryption key id {id:?}"))?;
            key.open(&packet.encrypted_payload, aad)
                .map_err(|e| e.to_string())
        }
        None => {
            let mut last = String::from("no packet keys configured");
            for (_, key) in keys {
                match key.open(&packet.encrypted_payload, aad) {
                    Ok(p) => return Ok(p),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(format!("no configured key opens it (last error: {last})"))
        }
    }
}
