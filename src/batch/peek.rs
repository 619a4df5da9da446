//! Which record an object holds, read from its container header before choosing how to
//! read it: ENPA or DAP batches and sum parts share names and differ in their records.

use crate::store::{get_bytes, ObjectStore, StoreError, StoreErrorKind};

/// The record name of the container file at `key` (at most `limit` bytes): `None` if the
/// object is missing or not a container file, for the caller's reader to wait for or to
/// name what is wrong. A failed read is an error, not a guess: a transient fault must not
/// send a DAP object down the ENPA path (or back) and come out as a wrong-record error.
pub fn peek_record_name(
    store: &dyn ObjectStore,
    key: &str,
    limit: u64,
) -> Result<Option<String>, StoreError> {
    match get_bytes(store, key, limit) {
        Ok(bytes) => Ok(crate::wire::record_name(&bytes).ok()),
        Err(StoreError {
            kind: StoreErrorKind::NotFound | StoreErrorKind::TooLarge { .. },
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}
