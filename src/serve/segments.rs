//! The upload server's write-ahead journal on local disk: an upload is acknowledged only
//! once its reports are in a segment file and fsynced; a flusher turns sealed segments
//! into ingestion batches and removes a segment only after its batches are written.
//!
//! Files in the journal's folder: `{seq:020}.open`, the one segment being appended, and
//! `{seq:020}.sealed`, complete segments waiting for the flusher, oldest first. A record
//! is `length (u32 BE) ‖ checksum (first 8 bytes of SHA-256 of the payload) ‖ payload`.
//!
//! A killed server can leave the open segment with a torn last record (written, not yet
//! fsynced, so never acknowledged): opening the journal cuts the segment at its first
//! record that is short or fails its checksum and seals what precedes. A sealed segment
//! was fsynced whole, so damage there is an error, never a silent cut.

use crate::crypto::sha256;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const OPEN: &str = "open";
const SEALED: &str = "sealed";
const HEADER_LEN: usize = 12;
/// No upload is near this; a longer length field is damage.
const MAX_RECORD: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("journal segment {path}: {reason}")]
    Damaged { path: String, reason: String },
}

fn io_error<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        op,
        source,
    }
}

/// The journal's folder, with at most one segment open for appending.
pub struct Journal {
    dir: PathBuf,
    next_seq: u64,
    open: Option<OpenSegment>,
}

struct OpenSegment {
    path: PathBuf,
    file: File,
    bytes: u64,
    records: u64,
}

fn segment_path(dir: &Path, seq: u64, state: &str) -> PathBuf {
    dir.join(format!("{seq:020}.{state}"))
}

/// The sequence number and state of a journal file name, if it is one.
fn parse_name(path: &Path) -> Option<(u64, &str)> {
    let (seq, state) = path.file_name()?.to_str()?.split_once('.')?;
    let seq = seq.parse().ok().filter(|_| seq.len() == 20)?;
    matches!(state, OPEN | SEALED).then_some((seq, state))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir, "syncing the folder"))
}

impl Journal {
    /// Opens (creating) the journal in `dir`. A segment left open by a killed server is
    /// cut at its first torn record and sealed. Returns the sealed segments, oldest
    /// first: what a restarted server must flush before anything else.
    pub fn open(dir: &Path) -> Result<(Journal, Vec<PathBuf>), JournalError> {
        fs::create_dir_all(dir).map_err(io_error(dir, "creating the folder"))?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir, "listing"))? {
            let path = entry.map_err(io_error(dir, "listing"))?.path();
            if let Some((seq, state)) = parse_name(&path) {
                found.push((seq, state == OPEN, path));
            }
        }
        found.sort();
        let next_seq = found.last().map_or(0, |(seq, _, _)| seq + 1);
        let mut sealed = Vec::new();
        for (seq, open, path) in found {
            if !open {
                sealed.push(path);
                continue;
            }
            if cut_torn_tail(&path)? == 0 {
                fs::remove_file(&path).map_err(io_error(&path, "removing an empty segment"))?;
                continue;
            }
            let target = segment_path(dir, seq, SEALED);
            fs::rename(&path, &target).map_err(io_error(&path, "sealing"))?;
            sealed.push(target);
        }
        sync_dir(dir)?;
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                next_seq,
                open: None,
            },
            sealed,
        ))
    }

    /// Appends every payload and fsyncs once: when this returns Ok, all are durable.
    /// Many uploads' payloads in one call share the fsync (group commit).
    pub fn append(&mut self, payloads: &[&[u8]]) -> Result<(), JournalError> {
        let segment = match &mut self.open {
            Some(segment) => segment,
            None => {
                let path = segment_path(&self.dir, self.next_seq, OPEN);
                let file = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_error(&path, "creating a segment"))?;
                // The new name must survive a crash along with what is written to it.
                sync_dir(&self.dir)?;
                self.next_seq += 1;
                self.open.insert(OpenSegment {
                    path,
                    file,
                    bytes: 0,
                    records: 0,
                })
            }
        };
        let mut buffer = Vec::new();
        for payload in payloads {
            let len = u32::try_from(payload.len())
                .ok()
                .filter(|&l| l <= MAX_RECORD)
                .ok_or_else(|| JournalError::Damaged {
                    path: segment.path.display().to_string(),
                    reason: format!("a record of {} bytes is too large", payload.len()),
                })?;
            buffer.extend_from_slice(&len.to_be_bytes());
            buffer.extend_from_slice(&sha256(payload)[..8]);
            buffer.extend_from_slice(payload);
        }
        segment
            .file
            .write_all(&buffer)
            .and_then(|()| segment.file.sync_data())
            .map_err(io_error(&segment.path, "appending"))?;
        segment.bytes += buffer.len() as u64;
        segment.records += payloads.len() as u64;
        Ok(())
    }

    /// Bytes in the open segment (0 when none is open).
    pub fn open_bytes(&self) -> u64 {
        self.open.as_ref().map_or(0, |s| s.bytes)
    }

    /// Seals the open segment, if it holds anything: returns it for the flusher. The
    /// next append opens a new one.
    pub fn seal(&mut self) -> Result<Option<PathBuf>, JournalError> {
        let Some(segment) = self.open.take() else {
            return Ok(None);
        };
        let target = segment.path.with_extension(SEALED);
        fs::rename(&segment.path, &target).map_err(io_error(&segment.path, "sealing"))?;
        sync_dir(&self.dir)?;
        Ok(Some(target))
    }
}

/// Removes a sealed segment once its reports are written as batches (from any thread:
/// the flusher does not own the journal).
pub fn remove_sealed(sealed: &Path) -> Result<(), JournalError> {
    fs::remove_file(sealed).map_err(io_error(sealed, "removing"))?;
    sync_dir(sealed.parent().unwrap_or(Path::new(".")))
}

/// One record read back: Ok(payload), or why the bytes from here on are not a record.
fn next_record(input: &mut impl Read) -> Result<Option<Vec<u8>>, String> {
    let mut header = [0u8; HEADER_LEN];
    match read_full(input, &mut header) {
        Ok(0) => return Ok(None),
        Ok(HEADER_LEN) => {}
        Ok(n) => return Err(format!("a record header cut short after {n} bytes")),
        Err(e) => return Err(e.to_string()),
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len > MAX_RECORD {
        return Err(format!("a record claims {len} bytes"));
    }
    let mut payload = vec![0u8; len as usize];
    match read_full(input, &mut payload) {
        Ok(n) if n == payload.len() => {}
        Ok(n) => return Err(format!("a record of {len} bytes cut short after {n}")),
        Err(e) => return Err(e.to_string()),
    }
    if sha256(&payload)[..8] != header[4..] {
        return Err("a record fails its checksum".into());
    }
    Ok(Some(payload))
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Cuts an open segment after its last whole record; returns how many records it keeps.
fn cut_torn_tail(path: &Path) -> Result<u64, JournalError> {
    let mut input = io::BufReader::new(File::open(path).map_err(io_error(path, "opening"))?);
    let (mut kept, mut records) = (0u64, 0u64);
    while let Ok(Some(payload)) = next_record(&mut input) {
        kept += (HEADER_LEN + payload.len()) as u64;
        records += 1;
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path, "opening to cut"))?;
    let len = file
        .metadata()
        .map_err(io_error(path, "reading size"))?
        .len();
    if len != kept {
        tracing::warn!(segment = %path.display(), kept, dropped = len - kept,
            "journal segment ends in a torn record (never acknowledged): cut");
        file.set_len(kept)
            .and_then(|()| file.sync_all())
            .map_err(io_error(path, "cutting"))?;
    }
    Ok(records)
}

/// The payloads of a sealed segment, in order. Any damage is an error naming the
/// segment: its records were acknowledged.
pub fn read_sealed(path: &Path) -> Result<Vec<Vec<u8>>, JournalError> {
    let mut input = io::BufReader::new(File::open(path).map_err(io_error(path, "opening"))?);
    let mut payloads = Vec::new();
    loop {
        match next_record(&mut input) {
            Ok(Some(payload)) => payloads.push(payload),
            Ok(None) => return Ok(payloads),
            Err(reason) => {
                return Err(JournalError::Damaged {
                    path: path.display().to_string(),
                    reason: format!("record {}: {reason}", payloads.len()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_records_survive_a_restart_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, sealed) = Journal::open(dir.path()).unwrap();
        assert!(sealed.is_empty());
        journal.append(&[b"one", b"two"]).unwrap();
        let first = journal.seal().unwrap().unwrap();
        journal.append(&[b"three"]).unwrap();
        assert_eq!(journal.open_bytes(), 12 + 5);
        drop(journal); // killed: the second segment is still open
        let (journal, sealed) = Journal::open(dir.path()).unwrap();
        assert_eq!(sealed.len(), 2);
        assert_eq!(sealed[0], first);
        assert_eq!(
            read_sealed(&sealed[0]).unwrap(),
            [b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(read_sealed(&sealed[1]).unwrap(), [b"three".to_vec()]);
        // New segments are numbered after the old ones.
        drop(journal);
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal.append(&[b"four"]).unwrap();
        let third = journal.seal().unwrap().unwrap();
        assert!(third > sealed[1], "{third:?}");
        remove_sealed(&sealed[0]).unwrap();
        assert!(!sealed[0].exists());
    }

    #[test]
    fn a_torn_tail_is_cut_and_what_precedes_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal.append(&[b"acknowledged"]).unwrap();
        let path = journal.open.as_ref().unwrap().path.clone();
        drop(journal);
        // A write the kill interrupted: a header claiming more than follows.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&100u32.to_be_bytes()).unwrap();
        file.write_all(&[0; 8]).unwrap();
        file.write_all(b"partial").unwrap();
        drop(file);
        let (_, sealed) = Journal::open(dir.path()).unwrap();
        assert_eq!(read_sealed(&sealed[0]).unwrap(), [b"acknowledged".to_vec()]);
    }

    #[test]
    fn a_record_failing_its_checksum_ends_an_open_segment_but_is_an_error_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal.append(&[b"first", b"second"]).unwrap();
        let path = journal.open.as_ref().unwrap().path.clone();
        drop(journal);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the second record's payload
        fs::write(&path, &bytes).unwrap();
        let (mut journal, sealed) = Journal::open(dir.path()).unwrap();
        assert_eq!(read_sealed(&sealed[0]).unwrap(), [b"first".to_vec()]);

        journal.append(&[b"third"]).unwrap();
        let sealed = journal.seal().unwrap().unwrap();
        let mut bytes = fs::read(&sealed).unwrap();
        bytes[HEADER_LEN] ^= 1;
        fs::write(&sealed, &bytes).unwrap();
        let e = read_sealed(&sealed).unwrap_err().to_string();
        assert!(e.contains("checksum") && e.contains(".sealed"), "{e}");
    }

    #[test]
    fn an_open_segment_with_nothing_whole_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(segment_path(dir.path(), 7, OPEN), [0u8, 0, 0]).unwrap();
        fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();
        let (mut journal, sealed) = Journal::open(dir.path()).unwrap();
        assert!(sealed.is_empty());
        assert!(!segment_path(dir.path(), 7, OPEN).exists());
        assert!(dir.path().join("notes.txt").exists());
        journal.append(&[b"x"]).unwrap();
        assert_eq!(
            journal.seal().unwrap().unwrap(),
            segment_path(dir.path(), 8, SEALED)
        );
    }
}
