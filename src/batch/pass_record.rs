//! A server's record that it evaluated a batch's reports at one Poplar1 pass: one signed
//! object per (batch, server, pass index) in the server's own location, created once and
//! never replaced (`{batch}.pass{index}_{server}`). It names its batch, server and index
//! inside the signed content, so a record copied under another name is refused.

use super::{sign_json, verify_json, BatchError, BatchId};
use crate::crypto::{SigningKey, TrustSet};
use crate::ids::ServerIndex;
use crate::store::{get_bytes, ObjectStore};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Records are a few hundred bytes (the pass's prefixes); anything larger is refused.
const MAX_PASS_RECORD_BYTES: u64 = 16 << 20;

/// What a pass record holds: the pass's encoding (VDAF-18's aggregation parameter).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PassRecord {
    batch: String,
    server: u8,
    index: u32,
    /// The pass, base64url (as task files carry bytes).
    pass: String,
}

impl BatchId {
    /// Key of `server`'s record of pass `index` over this batch (in its own location).
    pub fn pass_record_name(&self, server: ServerIndex, index: u32) -> String {
        format!(
            "{}/{}/{}.pass{index}_{server}",
            self.aggregation,
            self.date_path(),
            self.uuid
        )
    }
}

/// Creates the record of pass `index` (its encoding `pass`) unless one exists: true if
/// this call wrote it, false if a record was already there (read it to compare).
pub fn create_pass_record(
    store: &dyn ObjectStore,
    id: &BatchId,
    server: ServerIndex,
    index: u32,
    pass: &[u8],
    key: &SigningKey,
) -> Result<bool, BatchError> {
    let name = id.pass_record_name(server, index);
    let record = PassRecord {
        batch: id.to_string(),
        server: server.number(),
        index,
        pass: URL_SAFE_NO_PAD.encode(pass),
    };
    let bytes = sign_json(&record, key, &store.describe(&name))?;
    Ok(store.create_new(&name, &bytes)?)
}

/// The pass encoding `server` recorded as pass `index` of the batch, signature checked
/// against `trust`; None if there is no such record.
pub fn read_pass_record(
    store: &dyn ObjectStore,
    id: &BatchId,
    server: ServerIndex,
    index: u32,
    trust: &TrustSet,
) -> Result<Option<Vec<u8>>, BatchError> {
    let name = id.pass_record_name(server, index);
    if store.head(&name)?.is_none() {
        return Ok(None);
    }
    let object = store.describe(&name);
    let bytes = get_bytes(store, &name, MAX_PASS_RECORD_BYTES)?;
    let record: PassRecord = verify_json(&bytes, trust, &object)?;
    let other = |reason: String| BatchError::Other {
        object: object.clone(),
        reason,
    };
    if record.batch != id.to_string() || record.server != server.number() || record.index != index {
        return Err(other(format!(
            "a record of pass {} of batch {} by server {}, stored as pass {index} of {id} by server {server}",
            record.index, record.batch, record.server
        )));
    }
    URL_SAFE_NO_PAD
        .decode(&record.pass)
        .map(Some)
        .map_err(|_| other("the pass is not base64url".into()))
}
