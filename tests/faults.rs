//! Storage faults in the middle of reads and writes, and a full disk: the stage fails
//! cleanly naming the object, nothing half-written is visible, and a rerun reaches the
//! same result as an undisturbed run.

mod common;

use chrono::{DurationRound, TimeDelta, Utc};
use common::*;
use divvi::batch::{truncate_to_minute, BatchId, Window};
use divvi::crypto::PacketScheme;
use divvi::dap::DapVersion;
use divvi::dap::{encode_reports, DapClient, Measurement, VdafConfig};
use divvi::schedule::{execute_run, RunId, RunOutcome};
use divvi::stages::collect::Collected;
use divvi::stages::ingest::{IngestionBatch, PacketMaker};
use divvi::stages::ingest_dap::{ingest_dap, DapIngestOptions};
use divvi::stages::{collect, intake, no_tick};
use divvi::store::{ObjectStore, ObjectWriter, StoreError, StoreErrorKind};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Wraps a store; while armed, the next read (or write) of a key ending in `suffix`
/// breaks after `after` bytes, then it disarms, like a transient fault.
struct Faulty {
    inner: Box<dyn ObjectStore>,
    reads: Arc<AtomicBool>,
    writes: Arc<AtomicBool>,
    suffix: &'static str,
    after: usize,
}

struct BrokenRead {
    inner: Box<dyn Read + Send>,
    left: usize,
}

impl Read for BrokenRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(
                "injected fault: connection reset mid-read",
            ));
        }
        let n = buf.len().min(self.left);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

struct BrokenWrite {
    inner: Box<dyn ObjectWriter>,
    left: usize,
}

impl Write for BrokenWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("injected fault: write failed"));
        }
        let n = buf.len().min(self.left);
        let wrote = self.inner.write(&buf[..n])?;
        self.left -= wrote;
        Ok(wrote)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for BrokenWrite {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if self.left == 0 {
            return Err(StoreError {
                op: "writing",
                object: "(faulty)".into(),
                kind: StoreErrorKind::Service("injected fault at commit".into()),
            });
        }
        self.inner.commit()
    }
}

impl ObjectStore for Faulty {
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let inner = self.inner.get(key)?;
        if key.ends_with(self.suffix) && self.reads.swap(false, Ordering::SeqCst) {
            return Ok(Box::new(BrokenRead {
                inner,
                left: self.after,
            }));
        }
        Ok(inner)
    }
    fn put(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let inner = self.inner.put(key)?;
        if key.ends_with(self.suffix) && self.writes.swap(false, Ordering::SeqCst) {
            return Ok(Box::new(BrokenWrite {
                inner,
                left: self.after,
            }));
        }
        Ok(inner)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }
    fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.inner.head(key)
    }
    fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.inner.create_new(key, bytes)
    }
    fn discard(&self, key: &str) -> Result<(), StoreError> {
        self.inner.discard(key)
    }
}

struct Switches {
    reads: Arc<AtomicBool>,
    writes: Arc<AtomicBool>,
}

/// Replaces a store by a faulty wrapper of it; returns the switches.
fn make_faulty(store: &mut Box<dyn ObjectStore>, suffix: &'static str, after: usize) -> Switches {
    let reads = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicBool::new(false));
    let inner = std::mem::replace(
        store,
        Box::new(divvi::store::LocalStore::new("/nonexistent")),
    );
    *store = Box::new(Faulty {
        inner,
        reads: reads.clone(),
        writes: writes.clone(),
        suffix,
        after,
    });
    Switches { reads, writes }
}

/// The pipeline a fault test runs: ENPA, or a DAP-18 task of a Prio3 histogram.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Enpa,
    Dap,
}

/// Three batches of `per_batch` reports over 3 bins, the window holding them, their ids,
/// and the true histogram.
fn setup_kind(
    kind: Kind,
    aggregation: &str,
    per_batch: usize,
) -> (Deployment, Window, Vec<BatchId>, Vec<u64>) {
    match kind {
        Kind::Enpa => setup(aggregation, per_batch),
        Kind::Dap => setup_dap(aggregation, per_batch),
    }
}

/// Three upload bodies of reports the client library seals, ingested without a key.
fn setup_dap(aggregation: &str, per_batch: usize) -> (Deployment, Window, Vec<BatchId>, Vec<u64>) {
    let (d, task) = dap_deployment(VdafConfig::Histogram {
        length: 3,
        chunk_length: 1,
    });
    let client = DapClient::new(&task).unwrap();
    let now = Utc::now();
    let mut truth = vec![0u64; 3];
    for b in 0..3 {
        let reports: Vec<_> = (0..per_batch)
            .map(|i| {
                let bin = (b + i) % 3;
                truth[bin] += 1;
                client
                    .report(&Measurement::Histogram(bin), now.timestamp() as u64)
                    .unwrap()
            })
            .collect();
        let options = DapIngestOptions {
            aggregation: Some(aggregation.into()),
            batch_size: per_batch,
            time: None,
            now,
        };
        ingest_dap(
            &d.ingestor,
            &task,
            &encode_reports(DapVersion::Dap18, &reports).unwrap(),
            &options,
        )
        .unwrap();
    }
    let ids = intake::pending_batches(&d.servers[0], aggregation).unwrap();
    assert_eq!(ids.len(), 3);
    // The window is the task's time unit (an hour) holding the reports.
    let start = now.duration_trunc(TimeDelta::hours(1)).unwrap();
    let window = Window::new(start, start + TimeDelta::minutes(59)).unwrap();
    (d, window, ids, truth)
}

/// The histogram collect publishes, and its client count, of either kind.
fn collected(
    d: &Deployment,
    aggregation: &str,
    window: &Window,
) -> anyhow::Result<(Vec<u64>, u64)> {
    Ok(
        match collect::collect_any(&d.portal, aggregation, window, 0, Default::default())? {
            Collected::Enpa(r) => (r.histogram, r.total_individual_clients as u64),
            Collected::Dap(r) => {
                let values = r.result.as_array().expect("a histogram");
                let counts = values
                    .iter()
                    .map(|v| v.as_u64().expect("a count"))
                    .collect();
                (counts, r.report_count)
            }
        },
    )
}

fn setup(aggregation: &str, per_batch: usize) -> (Deployment, Window, Vec<BatchId>, Vec<u64>) {
    let d = deployment(PacketScheme::Ecies);
    let time = truncate_to_minute(Utc::now()) - TimeDelta::minutes(4);
    let maker = PacketMaker::new(&d.ingestor, 3).unwrap();
    let mut truth = vec![0u64; 3];
    let mut ids = Vec::new();
    for b in 0..3 {
        let mut batch = IngestionBatch::new(&d.ingestor, aggregation, time).unwrap();
        for i in 0..per_batch {
            let bin = (b + i) % 3;
            let mut m = [0u32; 3];
            m[bin] = 1;
            truth[bin] += 1;
            batch.append(&maker.make(&m).unwrap()).unwrap();
        }
        ids.push(batch.finish(3, 1.0).unwrap());
    }
    (d, Window::new(time, time).unwrap(), ids, truth)
}

fn run(d: &Deployment, server: usize, run: &RunId) -> anyhow::Result<RunOutcome> {
    execute_run(
        &d.servers[server],
        run,
        TimeDelta::hours(1),
        Utc::now(),
        &no_tick,
    )
}

#[test]
fn faults_mid_read_and_mid_write_fail_cleanly_and_reruns_finish() {
    faults_fail_cleanly_and_reruns_finish(Kind::Enpa);
}

#[test]
fn faults_in_a_prio3_pipeline_fail_cleanly_and_reruns_finish() {
    faults_fail_cleanly_and_reruns_finish(Kind::Dap);
}

fn faults_fail_cleanly_and_reruns_finish(kind: Kind) {
    let (mut d, window, ids, truth) = setup_kind(kind, "faults", 200);
    let ingestion = make_faulty(&mut d.servers[0].ingestion, ".batch.avro", 3000);
    let own = make_faulty(&mut d.servers[0].own, "", 2000);
    let outbox = make_faulty(&mut d.servers[0].peer_outbox, ".validity_0.sig", 500);
    let sums = make_faulty(&mut d.servers[1].sum_parts, ".sum_1", 100);
    let portal_read = make_faulty(&mut d.portal.servers[0].sum_parts, ".sum_0", 50);
    let validation = |s: usize, id: &BatchId| {
        id.names(divvi::batch::BatchKind::Validation(d.servers[s].index))
            .signature
    };

    // Intake: the packet file breaks mid-read, then the peer copy and our own copy of the
    // validation break mid-write. Each time nothing is visible, and the rerun completes.
    for (switch, what) in [
        (&ingestion.reads, "connection reset"),
        (&outbox.writes, "write failed"),
        (&own.writes, "write failed"),
    ] {
        switch.store(true, Ordering::SeqCst);
        let err = format!(
            "{:#}",
            intake::intake(&d.servers[0], &ids[0], &no_tick).unwrap_err()
        );
        assert!(err.contains(what), "{err}");
        assert!(
            d.servers[0]
                .own
                .head(&validation(0, &ids[0]))
                .unwrap()
                .is_none(),
            "{err}"
        );
    }
    for id in &ids {
        intake::intake(&d.servers[0], id, &no_tick).unwrap();
        intake::intake(&d.servers[1], id, &no_tick).unwrap();
    }

    // Aggregate: server 0's stash read breaks; then server 1's sum part write breaks.
    let run0 = RunId::new("faults", window, 0).unwrap();
    let stash = make_faulty(&mut d.servers[0].own, ".shares_0", 2000);
    stash.reads.store(true, Ordering::SeqCst);
    let err = format!("{:#}", run(&d, 0, &run0).unwrap_err());
    assert!(err.contains("connection reset"), "{err}");
    assert!(d.servers[0].own.head(&run0.done_key()).unwrap().is_none());
    assert!(matches!(
        run(&d, 0, &run0).unwrap(),
        RunOutcome::Done { .. }
    ));
    sums.writes.store(true, Ordering::SeqCst);
    let err = format!("{:#}", run(&d, 1, &run0).unwrap_err());
    assert!(err.contains("injected fault"), "{err}");
    assert!(d.servers[1].own.head(&run0.done_key()).unwrap().is_none());
    assert!(matches!(
        run(&d, 1, &run0).unwrap(),
        RunOutcome::Done { .. }
    ));

    // Collect: reading server 0's sum part breaks; the rerun gives the true histogram.
    portal_read.reads.store(true, Ordering::SeqCst);
    let err = format!(
        "{kind:?}: {:#}",
        collected(&d, "faults", &window).unwrap_err()
    );
    assert!(
        err.contains("connection reset") || err.contains("reading"),
        "{err}"
    );
    assert!(
        d.portal.results.list("").unwrap().is_empty(),
        "no result written"
    );
    let (histogram, clients) = collected(&d, "faults", &window).unwrap();
    assert_eq!(histogram, truth, "{kind:?}");
    assert_eq!(clients, 600, "{kind:?}");
    assert_eq!(
        (
            ingestion.reads.load(Ordering::SeqCst),
            sums.writes.load(Ordering::SeqCst)
        ),
        (false, false),
        "every armed fault fired"
    );
}

/// A small tmpfs: the local store's disk fills up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (run as root, as CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(path.to_path_buf())
    }
    fn grow(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_intake_cleanly_and_the_rerun_after_freeing_space_agrees() {
    full_disk_fails_cleanly_and_the_rerun_agrees(Kind::Enpa);
}

#[test]
fn a_full_disk_fails_a_prio3_intake_cleanly_and_the_rerun_agrees() {
    full_disk_fails_cleanly_and_the_rerun_agrees(Kind::Dap);
}

fn full_disk_fails_cleanly_and_the_rerun_agrees(kind: Kind) {
    let (mut d, window, ids, truth) = setup_kind(kind, "disk", 1000);
    let disk = SmallDisk::mount(&d.dir.path().join("small-disk"), "16k");
    d.servers[0].own = Box::new(divvi::store::LocalStore::new(&disk.0));
    let err = format!(
        "{:#}",
        intake::intake(&d.servers[0], &ids[0], &no_tick).unwrap_err()
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(disk.0.to_str().unwrap()),
        "names the object: {err}"
    );
    assert!(
        d.servers[0].own.list("").unwrap().is_empty(),
        "nothing visible on the full disk"
    );
    disk.grow("64m");
    for id in &ids {
        for s in &d.servers {
            intake::intake(s, id, &no_tick).unwrap();
        }
    }
    let run0 = RunId::new("disk", window, 0).unwrap();
    assert!(matches!(
        run(&d, 0, &run0).unwrap(),
        RunOutcome::Done { .. }
    ));
    assert!(matches!(
        run(&d, 1, &run0).unwrap(),
        RunOutcome::Done { .. }
    ));
    let (histogram, clients) = collected(&d, "disk", &window).unwrap();
    assert_eq!(histogram, truth, "{kind:?}");
    assert_eq!(clients, 3000, "{kind:?}");
}
