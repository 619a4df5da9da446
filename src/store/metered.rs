//! A store wrapper that counts the bytes a job reads and writes (for its metrics).

use super::{ObjectStore, ObjectWriter, StoreError};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes moved through every store wrapped with the same counters.
#[derive(Debug, Default)]
pub struct ByteCounters {
    pub read: AtomicU64,
    pub written: AtomicU64,
}

impl ByteCounters {
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

pub struct Metered {
    inner: Box<dyn ObjectStore>,
    counters: Arc<ByteCounters>,
}

impl Metered {
    pub fn wrap(inner: Box<dyn ObjectStore>, counters: &Arc<ByteCounters>) -> Box<dyn ObjectStore> {
        Box::new(Metered {
            inner,
            counters: Arc::clone(counters),
        })
    }
}

impl ObjectStore for Metered {
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        Ok(Box::new(CountingReader {
            inner: self.inner.get(key)?,
            counters: Arc::clone(&self.counters),
        }))
    }

    fn put(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(CountingWriter {
            inner: self.inner.put(key)?,
            counters: Arc::clone(&self.counters),
            pending: 0,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }

    fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.inner.head(key)
    }

    fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let created = self.inner.create_new(key, bytes)?;
        if created {
            self.counters
                .written
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok(created)
    }

    fn discard(&self, key: &str) -> Result<(), StoreError> {
        self.inner.discard(key)
    }

    fn remove_stale_temporaries(&self, age: std::time::Duration) -> Result<usize, StoreError> {
        self.inner.remove_stale_temporaries(age)
    }

    fn exists(&self) -> Result<bool, StoreError> {
        self.inner.exists()
    }

    fn top_level_names(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner.top_level_names(limit)
    }
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    counters: Arc<ByteCounters>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Counts written bytes only once the object is committed (an abandoned write moved
/// nothing anyone will read).
struct CountingWriter {
    inner: Box<dyn ObjectWriter>,
    counters: Arc<ByteCounters>,
    pending: u64,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pending += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for CountingWriter {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let this = *self;
        this.inner.commit()?;
        this.counters
            .written
            .fetch_add(this.pending, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{get_bytes, put_bytes, LocalStore};

    #[test]
    fn counts_committed_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Arc::new(ByteCounters::default());
        let store = Metered::wrap(Box::new(LocalStore::new(dir.path())), &counters);
        put_bytes(store.as_ref(), "a", b"12345").unwrap();
        {
            let mut abandoned = store.put("b").unwrap();
            abandoned.write_all(b"xyz").unwrap();
        }
        assert!(store.create_new("c", b"12").unwrap());
        assert!(!store.create_new("c", b"1234").unwrap());
        assert_eq!(counters.written(), 7);
        assert_eq!(get_bytes(store.as_ref(), "a", 10).unwrap(), b"12345");
        assert_eq!(counters.read(), 5);
    }
}
