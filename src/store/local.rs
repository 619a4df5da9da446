//! Local folders as buckets: the embedded default. Writes go to a hidden temporary file
//! in the target's folder and are renamed into place on commit (atomic on POSIX).

use super::{validate_key, ObjectStore, ObjectWriter, StoreError, StoreErrorKind};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// Temporary files start with this; listings skip them.
const TEMP_PREFIX: &str = ".divvi-tmp-";

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, op: &'static str, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key).map_err(|reason| StoreError {
            op,
            object: self.describe(key),
            kind: StoreErrorKind::BadKey(reason),
        })?;
        Ok(self.root.join(key))
    }

    fn error(&self, op: &'static str, key: &str, e: io::Error) -> StoreError {
        let kind = if e.kind() == io::ErrorKind::NotFound {
            StoreErrorKind::NotFound
        } else {
            StoreErrorKind::Io(e)
        };
        StoreError {
            op,
            object: self.describe(key),
            kind,
        }
    }
}

impl ObjectStore for LocalStore {
    fn describe(&self, key: &str) -> String {
        format!("file://{}", self.root.join(key).display())
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let path = self.path("reading", key)?;
        let file = File::open(&path).map_err(|e| self.error("reading", key, e))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 16, file)))
    }

    fn put(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let target = self.path("writing", key)?;
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| self.error("writing", key, e))?;
        let temp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().as_simple()));
        let file = File::create(&temp).map_err(|e| self.error("writing", key, e))?;
        Ok(Box::new(LocalWriter {
            file: Some(BufWriter::with_capacity(1 << 16, file)),
            temp,
            target,
            object: self.describe(key),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk from the deepest folder the prefix names, then filter by the full prefix.
        let folder = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if folder.is_empty() {
            self.root.clone()
        } else {
            self.path("listing", folder)?
        };
        let mut keys = Vec::new();
        walk(&start, folder, &mut keys).map_err(|e| StoreError {
            op: "listing",
            object: self.describe(prefix),
            kind: StoreErrorKind::Io(e),
        })?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path("checking", key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("checking", key, e)),
        }
    }

    fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let target = self.path("creating", key)?;
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let err = |e| self.error("creating", key, e);
        fs::create_dir_all(&dir).map_err(err)?;
        let temp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().as_simple()));
        let written = File::create(&temp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        // A hard link fails if the name exists, where rename would replace it.
        let linked = written.and_then(|()| fs::hard_link(&temp, &target));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    fn discard(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path("discarding", key)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.error("discarding", key, e)),
            _ => Ok(()),
        }
    }

    fn exists(&self) -> Result<bool, StoreError> {
        match fs::metadata(&self.root) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.error("checking", "", e)),
        }
    }

    fn top_level_names(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let err = |e| self.error("listing", "", e);
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(err)? {
            let name = entry.map_err(err)?.file_name();
            match name.to_str() {
                Some(n) if !n.starts_with(TEMP_PREFIX) => names.push(n.to_string()),
                _ => {}
            }
        }
        names.sort();
        names.truncate(limit);
        Ok(names)
    }

    fn remove_stale_temporaries(&self, age: Duration) -> Result<usize, StoreError> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        remove_temporaries_before(&self.root, cutoff).map_err(|e| StoreError {
            op: "removing stale temporary files under",
            object: self.describe(""),
            kind: StoreErrorKind::Io(e),
        })
    }
}

/// Removes the temporary files under `dir` (at any depth: a write's temporary file sits
/// in its target's folder) last modified before `cutoff`; returns how many.
fn remove_temporaries_before(dir: &Path, cutoff: SystemTime) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            removed += remove_temporaries_before(&entry.path(), cutoff)?;
        } else if kind.is_file() && is_temporary(&entry.file_name()) {
            removed += usize::from(remove_if_older(&entry.path(), cutoff)?);
        }
    }
    Ok(removed)
}

fn is_temporary(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX))
}

/// Removes a file last modified before `cutoff`; one already gone (its writer committed
/// it, or another run removed it) counts as not removed.
fn remove_if_older(path: &Path, cutoff: SystemTime) -> io::Result<bool> {
    let modified = match fs::symlink_metadata(path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if modified >= cutoff {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn walk(dir: &Path, key_prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = if key_prefix.is_empty() {
            name.to_string()
        } else {
            format!("{key_prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}

struct LocalWriter {
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    target: PathBuf,
    object: String,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let err = |e| StoreError {
            op: "writing",
            object: self.object.clone(),
            kind: StoreErrorKind::Io(e),
        };
        let Some(buffered) = self.file.take() else {
            return Ok(());
        };
        let file = buffered.into_inner().map_err(|e| err(e.into_error()))?;
        // Durable before visible: a crash after rename never exposes a short file.
        file.sync_all().map_err(err)?;
        drop(file);
        fs::rename(&self.temp, &self.target).map_err(err)?;
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed: remove the temporary file so nothing half-written remains.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{get_bytes, put_bytes};

    #[test]
    fn a_missing_folder_does_not_exist_and_top_level_names_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!LocalStore::new(dir.path().join("missing"))
            .exists()
            .unwrap());
        let s = LocalStore::new(dir.path());
        assert!(s.exists().unwrap());
        for key in ["b/1/x", "a/x", "c", "d/y"] {
            put_bytes(&s, key, b"").unwrap();
        }
        assert_eq!(s.top_level_names(3).unwrap(), vec!["a", "b", "c"]);
    }

    #[test]
    fn put_get_list_head() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        put_bytes(&s, "a/b/1.x", b"one").unwrap();
        put_bytes(&s, "a/b/2.x", b"two").unwrap();
        put_bytes(&s, "a/c.x", b"three").unwrap();
        assert_eq!(get_bytes(&s, "a/b/1.x", 100).unwrap(), b"one");
        assert_eq!(s.list("a/").unwrap(), vec!["a/b/1.x", "a/b/2.x", "a/c.x"]);
        assert_eq!(s.list("a/b/2").unwrap(), vec!["a/b/2.x"]);
        assert!(s.list("zzz/").unwrap().is_empty());
        assert_eq!(s.head("a/c.x").unwrap(), Some(5));
        assert_eq!(s.head("a/none").unwrap(), None);
        assert!(get_bytes(&s, "a/none", 10).unwrap_err().is_not_found());
        assert!(matches!(
            get_bytes(&s, "a/c.x", 2).unwrap_err().kind,
            StoreErrorKind::TooLarge { size: 5, limit: 2 }
        ));
    }

    #[test]
    fn uncommitted_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        {
            let mut w = s.put("x/y.z").unwrap();
            w.write_all(b"partial").unwrap();
        }
        assert_eq!(s.head("x/y.z").unwrap(), None);
        assert!(s.list("").unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
    }

    #[test]
    fn create_new_has_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        let wins: Vec<bool> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8u8)
                .map(|i| {
                    let s = &s;
                    scope.spawn(move || s.create_new("r/x", &[i; 4]).unwrap())
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(wins.iter().filter(|&&w| w).count(), 1, "{wins:?}");
        let winner = wins.iter().position(|&w| w).unwrap() as u8;
        assert_eq!(get_bytes(&s, "r/x", 10).unwrap(), vec![winner; 4]);
        assert!(!s.create_new("r/x", b"late").unwrap());
        assert_eq!(s.list("").unwrap(), vec!["r/x"], "no temporary files left");
    }

    #[test]
    fn stale_temporaries_are_removed_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        put_bytes(&s, "a/b/kept.x", b"object").unwrap();
        let old = dir.path().join(format!("a/b/{TEMP_PREFIX}old"));
        let fresh = dir.path().join(format!("a/{TEMP_PREFIX}fresh"));
        for path in [&old, &fresh] {
            fs::write(path, b"partial").unwrap();
        }
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        assert_eq!(
            s.remove_stale_temporaries(Duration::from_secs(3600))
                .unwrap(),
            1
        );
        assert!(!old.exists() && fresh.exists());
        assert_eq!(s.list("").unwrap(), vec!["a/b/kept.x"]);
        let missing = LocalStore::new(dir.path().join("none"));
        assert_eq!(missing.remove_stale_temporaries(Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn discard_deletes_once_and_then_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        put_bytes(&s, "a/1.x", b"one").unwrap();
        put_bytes(&s, "a/2.x", b"two").unwrap();
        s.discard("a/1.x").unwrap();
        assert_eq!(s.list("a/").unwrap(), vec!["a/2.x"]);
        s.discard("a/1.x").unwrap();
        let e = s.discard("../a/2.x").unwrap_err();
        assert!(matches!(e.kind, StoreErrorKind::BadKey(_)), "{e}");
        assert_eq!(s.head("a/2.x").unwrap(), Some(3));
    }

    #[test]
    fn traversal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path().join("inner"));
        let e = s.put("../escape").err().unwrap();
        assert!(matches!(e.kind, StoreErrorKind::BadKey(_)), "{e}");
        assert!(s.get("/etc/passwd").is_err());
    }
}
