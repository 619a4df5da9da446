//! Batches as the ENPA layout stores them: identities, object names, and signed
//! batch objects in both forms. Knows nothing of where the bytes live beyond the
//! `ObjectStore` trait.

mod heavy;
mod names;
mod pass_record;
mod peek;
mod shard;
mod signature;
mod signed;
mod sum_part;

pub use heavy::{
    create_pass_query, create_pass_sum_part, read_pass_query, read_pass_sum_part,
    traversal_windows, unanswered_traversal_windows, InvalidReport, PassId, PassQuery, PassSumPart,
};
pub use names::{BatchKind, ObjectNames, ROUND_STASH_PREFIX, SHARE_STASH_PREFIX};
pub use pass_record::{create_pass_record, read_pass_record};
pub use peek::peek_record_name;
// The identities whose objects this layer names, where callers of `batch` look for them.
pub use crate::ids::{
    parse_time, run_name, truncate_to_minute, validate_name, BatchId, SumPartId, Window,
};
pub use shard::Shard;
pub use signature::{check_signature, sign_json, signature_over, verify_json};
pub use signed::{
    hex, open_batch, write_batch_unless_signed, BatchHeader, BatchWriter, OpenedBatch,
    PacketStream, MAX_HEADER_BYTES, MAX_SIGNATURE_BYTES,
};
pub use sum_part::{
    decode_sum_part, encode_sum_part, read_sum_part, write_sum_part, SumPartBinding, SumPartRecord,
    VerifiedSumPart,
};

use crate::crypto::CryptoError;
use crate::store::StoreError;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{object}: {source}")]
    Wire {
        object: String,
        #[source]
        source: WireError,
    },
    #[error("{object}: signature check failed: {source}")]
    Signature {
        object: String,
        #[source]
        source: CryptoError,
    },
    #[error("{object}: packet file digest {actual} does not match the signed header's {expected}")]
    DigestMismatch {
        object: String,
        expected: String,
        actual: String,
    },
    #[error("{object}: {reason}")]
    Other { object: String, reason: String },
}
