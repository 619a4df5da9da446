//! Object storage: one small trait, a backend per kind of location. Callers see keys
//! (`a/b/c.batch`) relative to a location, never paths or SDK types.
//!
//! The trait is synchronous on purpose: stages stream records through it from plain
//! threads and rayon; an async backend (S3) keeps its runtime inside itself.

mod key;
mod local;
mod location;
mod metered;
#[cfg(feature = "s3")]
mod s3;

pub use key::validate_key;
pub use local::LocalStore;
pub use location::{open_location, LocationConfig, LocationSettings, Place};
pub use metered::{ByteCounters, Metered};
#[cfg(feature = "s3")]
pub use s3::S3Store;

use std::io::{Read, Write};

/// What went wrong with an object, naming the operation, the object and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{op} {object}: {kind}")]
pub struct StoreError {
    pub op: &'static str,
    pub object: String,
    // Not a `#[source]`: the message already says it, and chains would repeat it.
    pub kind: StoreErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreErrorKind {
    #[error("no such object")]
    NotFound,
    #[error("bad object key: {0}")]
    BadKey(String),
    #[error("object is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// The storage service refused or failed (its error code and message).
    #[error("{0}")]
    Service(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, StoreErrorKind::NotFound)
    }
}

/// A streaming write that becomes visible only on `commit`; dropping it uncommitted
/// leaves nothing behind, so readers never see half an object.
pub trait ObjectWriter: Write + Send {
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

pub trait ObjectStore: Send + Sync {
    /// A URL-like name of an object, for messages (`file:///data/x`, `s3://b/p/x`).
    fn describe(&self, key: &str) -> String;
    /// Streams an object's bytes.
    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError>;
    /// Starts an atomic write of an object (replacing any object of that key on commit).
    fn put(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// Keys of all objects under a prefix (a key prefix, not necessarily a folder), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The size of an object, or None if it does not exist.
    fn head(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Writes a small object only if no object of that key exists, atomically even when
    /// several writers race: true if this call created it, false if one existed.
    fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError>;
    /// Gives up an object nothing will read again (a Poplar1 pass's round states once
    /// its sum part exists). A local folder deletes it; S3 leaves it to the bucket's
    /// lifecycle rule for its prefix, since divvi's job roles hold no `s3:DeleteObject`
    /// (and in a versioned bucket a delete frees nothing before that rule runs anyway).
    /// An object already gone is no error.
    fn discard(&self, key: &str) -> Result<(), StoreError>;
    /// Removes what killed writers left behind (temporary files) older than `age`, and
    /// says how many. Younger ones may belong to a writer still at work, so they stay.
    /// Stores whose writes leave nothing visible when killed have nothing to remove.
    fn remove_stale_temporaries(&self, _age: std::time::Duration) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// Whether the location itself exists (a local folder may be missing). Stores where a
    /// missing location fails every call loudly (S3's NoSuchBucket) need not say.
    fn exists(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// The first `limit` names at the top of the location (the first segment of its
    /// keys, e.g. aggregations), sorted, to name what is there when a name matches nothing.
    fn top_level_names(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        for key in self.list("")? {
            let first = key.split('/').next().unwrap_or_default();
            if names.last().map(String::as_str) != Some(first) {
                names.push(first.to_string());
            }
            if names.len() >= limit {
                break;
            }
        }
        Ok(names)
    }
}

/// Reads a whole object, refusing one larger than `limit` bytes before reading it.
pub fn get_bytes(store: &dyn ObjectStore, key: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
    let err = |kind| StoreError {
        op: "reading",
        object: store.describe(key),
        kind,
    };
    let size = store
        .head(key)?
        .ok_or_else(|| err(StoreErrorKind::NotFound))?;
    if size > limit {
        return Err(err(StoreErrorKind::TooLarge { size, limit }));
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    store
        .get(key)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| err(StoreErrorKind::Io(e)))?;
    if out.len() as u64 > limit {
        return Err(err(StoreErrorKind::TooLarge {
            size: out.len() as u64,
            limit,
        }));
    }
    Ok(out)
}

/// Writes a whole object atomically.
pub fn put_bytes(store: &dyn ObjectStore, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let mut w = store.put(key)?;
    w.write_all(bytes).map_err(|e| StoreError {
        op: "writing",
        object: store.describe(key),
        kind: StoreErrorKind::Io(e),
    })?;
    w.commit()
}
