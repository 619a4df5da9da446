//! Keys per party: each party runs `keygen --party` in its own folder and hands the others
//! only its public manifest; `keygen --import` wires them in. The four folders then run
//! the DAP pipeline to the true result, and no folder holds another party's secret.

mod common;

use common::divvi;
use std::path::{Path, PathBuf};

const PARTIES: [&str; 4] = ["ingestor", "server0", "server1", "portal"];

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = divvi(args);
    assert!(
        out.status.success(),
        "divvi {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn folder(root: &Path, party: &str) -> PathBuf {
    root.join(party)
}

fn manifest(root: &Path, party: &str) -> PathBuf {
    folder(root, party).join(format!("{party}.manifest.json"))
}

/// Every party's keygen in its own folder: the portal defines a histogram task, the
/// servers a privacy floor of 2 clients.
fn keygen_all(root: &Path) {
    for party in PARTIES {
        let dir = folder(root, party);
        let mut args = vec!["keygen", "--party", party, "--out", p(&dir)];
        match party {
            "portal" => args.extend(["--vdaf", "histogram:4", "--min-batch-size", "2"]),
            "server0" | "server1" => args.extend(["--min-clients", "2"]),
            _ => {}
        }
        let out = run_ok(&args);
        assert!(out.contains("still to import"), "{out}");
    }
}

/// The SHA-256 keygen printed for a party's manifest.
fn printed_fingerprint(out: &str, party: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{party}'s manifest SHA-256: ")))
        .unwrap_or_else(|| panic!("no fingerprint of {party}: {out}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// Aggregate on both servers and collect, of `aggregation` over the window `start..end`:
/// the result file the portal wrote.
fn aggregate_and_collect(
    root: &Path,
    aggregation: &str,
    (start, end): (&str, &str),
) -> serde_json::Value {
    let window = ["--aggregation", aggregation, "--start", start, "--end", end];
    for party in ["server0", "server1", "portal"] {
        let config = folder(root, party).join(format!("{party}.toml"));
        let command = if party == "portal" {
            "collect"
        } else {
            "aggregate"
        };
        let mut args = vec![command, "--config", p(&config)];
        args.extend(window);
        run_ok(&args);
    }
    let file = folder(root, "portal")
        .join("buckets/portal-results")
        .join(aggregation)
        .join(format!("{start}-{end}.result.json"));
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// `keygen --import` of `from`'s manifest into `into`'s folder, with `extra` arguments.
fn import(root: &Path, into: &str, from: &str, extra: &[&str]) -> std::process::Output {
    let (m, dir) = (manifest(root, from), folder(root, into));
    let mut args = vec!["keygen", "--import", p(&m), "--dir", p(&dir)];
    args.extend(extra);
    divvi(&args)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::files_ending(dir, "")
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn key_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn four_parties_make_their_own_keys_exchange_manifests_and_collect_the_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    keygen_all(root);

    // Each party holds only its own secrets.
    assert_eq!(
        key_files(&folder(root, "ingestor")),
        ["ingestor-signing.key"]
    );
    assert_eq!(
        key_files(&folder(root, "portal")),
        ["collector-hpke.key", "portal-signing.key"]
    );
    for n in [0, 1] {
        let names: Vec<String> = ["agreement", "hpke", "packet", "signing", "stash"]
            .iter()
            .map(|k| format!("server{n}-{k}.key"))
            .collect();
        assert_eq!(key_files(&folder(root, &format!("server{n}"))), names);
    }

    // A manifest whose fingerprint is not the one its party announced is refused, and
    // nothing of it is kept.
    let out = import(root, "server0", "server1", &[]);
    assert!(out.status.success(), "{out:?}");
    let announced = printed_fingerprint(&String::from_utf8_lossy(&out.stdout), "server0");
    let wrong = "0".repeat(64);
    let out = import(root, "server0", "ingestor", &["--fingerprint", &wrong]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&wrong) && err.contains("not imported"),
        "{err}"
    );
    assert!(!folder(root, "server0")
        .join("peers/ingestor.manifest.json")
        .exists());
    assert!(!folder(root, "server0").join("server0.toml").exists());
    // The fingerprint the server printed for its own manifest is the file's SHA-256.
    let bytes = std::fs::read(manifest(root, "server0")).unwrap();
    assert_eq!(announced, divvi::keygen::manifest::fingerprint(&bytes));

    // A party's own manifest is not imported.
    let out = import(root, "server0", "server0", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("own"),
        "{out:?}"
    );

    // Every party imports the others' manifests (the ingestor's checked by fingerprint).
    let ingestor_fp =
        divvi::keygen::manifest::fingerprint(&std::fs::read(manifest(root, "ingestor")).unwrap());
    let out = import(
        root,
        "server0",
        "ingestor",
        &["--fingerprint", &ingestor_fp],
    );
    assert!(out.status.success(), "{out:?}");
    for party in PARTIES {
        let out = import_all(root, party);
        assert!(out.contains("config: "), "{party}: {out}");
        assert!(out.contains("DAP task: "), "{party}: {out}");
        let kind = party.trim_end_matches(['0', '1']);
        let config = folder(root, party).join(format!("{party}.toml"));
        run_ok(&["check", "--config", p(&config), "--as", kind]);
    }

    // One task everywhere; the servers agreed on a verify key without sending it.
    let task = std::fs::read(folder(root, "portal").join("task.json")).unwrap();
    for party in PARTIES {
        assert_eq!(
            std::fs::read(folder(root, party).join("task.json")).unwrap(),
            task
        );
    }
    let verify: Vec<Vec<u8>> = ["server0", "server1"]
        .iter()
        .map(|s| std::fs::read(folder(root, s).join("keys/verify.key")).unwrap())
        .collect();
    assert_eq!(verify[0], verify[1]);

    // No secret of one party is anywhere in another's folder (manifests, peers, configs).
    for owner in PARTIES {
        let secrets: Vec<Vec<u8>> = files(&folder(root, owner).join("keys"))
            .into_iter()
            .filter(|(path, _)| !path.ends_with("verify.key"))
            .map(|(_, bytes)| String::from_utf8(bytes).unwrap().trim().as_bytes().to_vec())
            .collect();
        for other in PARTIES.iter().filter(|&&o| o != owner) {
            for (path, bytes) in files(&folder(root, other)) {
                for s in &secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == &s[..]),
                        "{owner}'s secret in {}",
                        path.display()
                    );
                }
            }
        }
    }
    for (path, bytes) in files(&folder(root, "ingestor"))
        .into_iter()
        .chain(files(&folder(root, "portal")))
    {
        assert!(
            !bytes
                .windows(verify[0].len() - 1)
                .any(|w| w == &verify[0][..verify[0].len() - 1]),
            "the verify key in {}",
            path.display()
        );
    }

    // The DAP pipeline across the four folders: the true histogram.
    let task_file = folder(root, "ingestor").join("task.json");
    let input = root.join("m.jsonl");
    std::fs::write(&input, "0\n3\n1\n3\n2\n3\n").unwrap();
    let body = root.join("upload.bin");
    run_ok(&[
        "client",
        "--task",
        p(&task_file),
        "--input",
        p(&input),
        "--output",
        p(&body),
    ]);
    let ingested = run_ok(&[
        "ingest",
        "--config",
        p(&folder(root, "ingestor").join("ingestor.toml")),
        "--task",
        p(&task_file),
        "--input",
        p(&body),
    ]);
    let aggregation = serde_json::from_str::<serde_json::Value>(ingested.lines().next().unwrap())
        .unwrap()["aggregation"]
        .as_str()
        .unwrap()
        .to_string();
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    let (start, end) = (format!("{day}0000"), format!("{day}2359"));
    let config = |party: &str| folder(root, party).join(format!("{party}.toml"));
    for server in ["server0", "server1"] {
        run_ok(&[
            "intake",
            "--config",
            p(&config(server)),
            "--aggregation",
            &aggregation,
        ]);
    }
    let result = aggregate_and_collect(root, &aggregation, (&start, &end));
    assert_eq!(
        result["result"],
        serde_json::json!([1, 1, 1, 3]),
        "{result}"
    );

    // A portal's manifest of another task, imported once the task is made, is refused
    // and not kept: the folder stays as it was.
    let other = root.join("other-portal");
    run_ok(&[
        "keygen",
        "--party",
        "portal",
        "--out",
        p(&other),
        "--vdaf",
        "count",
    ]);
    let kept = std::fs::read(folder(root, "server0").join("peers/portal.manifest.json")).unwrap();
    let before = config_text(root, "server0");
    let m = other.join("portal.manifest.json");
    let out = divvi(&[
        "keygen",
        "--import",
        p(&m),
        "--dir",
        p(&folder(root, "server0")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not imported") && err.contains("differs"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(folder(root, "server0").join("peers/portal.manifest.json")).unwrap(),
        kept
    );
    assert_eq!(config_text(root, "server0"), before);
    assert_eq!(
        std::fs::read(folder(root, "server0").join("task.json")).unwrap(),
        task
    );
}

#[test]
fn only_the_portal_defines_the_task_and_import_needs_a_party_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = divvi(&[
        "keygen",
        "--party",
        "server0",
        "--out",
        p(&tmp.path().join("s0")),
        "--vdaf",
        "count",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("portal"),
        "{out:?}"
    );
    let out = divvi(&[
        "keygen",
        "--party",
        "nobody",
        "--out",
        p(&tmp.path().join("x")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = divvi(&["keygen", "--import", "m.json", "--dir", p(tmp.path())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("party.toml") && err.contains("keygen --party"),
        "{err}"
    );
}

/// Manifests can live in a bucket: server 0 publishes its own where it may write (its
/// sum-parts bucket, with its own credentials), and the portal imports it from there with
/// the portal's.
#[test]
fn a_manifest_published_to_a_bucket_is_imported_from_it() {
    use common::seaweed::Seaweed;
    let tmp = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&tmp.path().join("weed"), "manifests-");
    let s3 = [
        "--s3-endpoint",
        weed.endpoint.as_str(),
        "--s3-region",
        common::seaweed::REGION,
        "--s3-path-style",
        "--s3-bucket-prefix",
        weed.bucket_prefix.as_str(),
    ];
    let prefix = format!("s3://{}server0-sum-parts/manifests", weed.bucket_prefix);
    let as_party = |party: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
            .args(args)
            .env("AWS_PROFILE", party)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{party} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let server0 = tmp.path().join("server0");
    let mut args = vec!["keygen", "--party", "server0", "--out", p(&server0)];
    args.extend(s3);
    args.extend(["--publish", &prefix]);
    let out = as_party("server0", &args);
    assert!(out.contains("published: "), "{out}");

    let portal = tmp.path().join("portal");
    let mut args = vec!["keygen", "--party", "portal", "--out", p(&portal)];
    args.extend(s3);
    as_party("portal", &args);
    let object = format!("{prefix}/server0.manifest.json");
    let mut args = vec!["keygen", "--import", &object, "--dir", p(&portal)];
    args.extend(&s3[..5]);
    let out = as_party("portal", &args);
    assert!(
        out.contains("still to import") && out.contains("server1"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(portal.join("peers/server0.manifest.json")).unwrap(),
        std::fs::read(server0.join("server0.manifest.json")).unwrap()
    );
    // The published manifest names the server's buckets on the endpoint, without its
    // AWS profile (each party reaches them with its own).
    let text = std::fs::read_to_string(server0.join("server0.manifest.json")).unwrap();
    assert!(
        text.contains(&weed.endpoint) && !text.contains("profile"),
        "{text}"
    );
}

/// Every party's keygen in `root` (an ENPA deployment: no DAP task) and every import.
fn enpa_deployment(root: &Path) {
    for party in PARTIES {
        let dir = folder(root, party);
        let mut args = vec!["keygen", "--party", party, "--out", p(&dir)];
        args.extend(["--min-clients", "1"]);
        run_ok(&args);
    }
    for party in PARTIES {
        import_all(root, party);
    }
}

/// `party` imports every other party's current manifest; keygen's output.
fn import_all(root: &Path, party: &str) -> String {
    let others: Vec<PathBuf> = PARTIES
        .iter()
        .filter(|&&q| q != party)
        .map(|q| manifest(root, q))
        .collect();
    let dir = folder(root, party);
    let mut args = vec!["keygen", "--import"];
    args.extend(others.iter().map(|m| p(m)));
    args.extend(["--dir", p(&dir)]);
    run_ok(&args)
}

fn config_text(root: &Path, party: &str) -> String {
    std::fs::read_to_string(folder(root, party).join(format!("{party}.toml"))).unwrap()
}

/// Ingests `csv` (0/1 vectors of 4 bins) as `ingestor_dir`'s ingestor.
fn ingest_enpa(root: &Path, ingestor_dir: &Path, name: &str, csv: &str) -> std::process::Output {
    let input = root.join(name);
    std::fs::write(&input, csv).unwrap();
    divvi(&[
        "ingest",
        "--config",
        p(&ingestor_dir.join("ingestor.toml")),
        "--input",
        p(&input),
        "--aggregation",
        "rotation",
        "--bins",
        "4",
        "--time",
        common::test_time(),
    ])
}

fn rotate(root: &Path, party: &str, args: &[&str]) -> String {
    let dir = folder(root, party);
    let mut all = vec!["keygen", "--dir", p(&dir)];
    all.extend(args);
    run_ok(&all)
}

/// Key rotation as the README documents it: a new key published beside the old, an
/// overlap in which batches under both are taken, the old retired; every report of
/// every batch is counted, and a batch signed with a retired key is refused.
#[test]
fn keys_rotate_with_an_overlap_and_no_report_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    enpa_deployment(root);
    let ingestor = folder(root, "ingestor");
    let out = ingest_enpa(root, &ingestor, "a.csv", "1,0,0,1\n0,1,0,0\n0,1,1,0\n");
    assert!(out.status.success(), "{out:?}");
    // An ingestor that will be forgotten with the old key.
    let stale = root.join("stale-ingestor");
    assert!(std::process::Command::new("cp")
        .args(["-a", p(&ingestor), p(&stale)])
        .status()
        .unwrap()
        .success());

    // 1. New keys beside the old: server 0's packet key, the ingestor's signing key.
    let out = rotate(root, "server0", &["--new-key", "packet"]);
    assert!(out.contains("new key server0-packet-2"), "{out}");
    let text = config_text(root, "server0");
    assert!(
        text.contains("\"server0-packet\"") && text.contains("\"server0-packet-2\""),
        "{text}"
    );
    let out = rotate(root, "ingestor", &["--new-key", "signing"]);
    assert!(out.contains("new key ingestor-signing-2"), "{out}");
    // A key not yet trusted by the servers is not signed with: the config still says the
    // first until step 2.
    assert!(config_text(root, "ingestor").contains("id = \"ingestor-signing\"\n"));
    for party in PARTIES {
        import_all(root, party);
    }
    assert!(config_text(root, "ingestor").contains("packet_key_id = \"server0-packet-2\""));
    for server in ["server0", "server1"] {
        let text = config_text(root, server);
        assert!(
            text.contains("\"ingestor-signing\"") && text.contains("\"ingestor-signing-2\""),
            "{text}"
        );
    }

    // 2. The ingestor signs with the new key; a batch under the new keys.
    let out = rotate(root, "ingestor", &["--use-key", "ingestor-signing-2"]);
    assert!(out.contains("96 h more"), "{out}");
    // The old key's end of trust is announced and, once imported, in the servers' configs.
    for party in PARTIES {
        import_all(root, party);
    }
    let announced: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest(root, "ingestor")).unwrap()).unwrap();
    let ends: Vec<bool> = announced["signing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.get("not_after").is_some())
        .collect();
    assert_eq!(ends, [true, false], "{announced}");
    assert!(config_text(root, "server1").contains("not_after = "));
    let out = ingest_enpa(root, &ingestor, "b.csv", "0,0,0,1\n0,0,0,0\n1,1,1,1\n");
    assert!(out.status.success(), "{out:?}");
    let config = |party: &str| folder(root, party).join(format!("{party}.toml"));
    for server in ["server0", "server1"] {
        let out = run_ok(&[
            "intake",
            "--config",
            p(&config(server)),
            "--aggregation",
            "rotation",
        ]);
        assert_eq!(out.lines().count(), 2, "both batches: {out}");
    }

    // The overlap covers the aggregation too: the old signing key still verifies batch
    // A when aggregate reads it. Every report of both batches is counted:
    // 1001 0100 0110 0001 0000 1111.
    let t = common::test_time();
    let result = aggregate_and_collect(root, "rotation", (t, t));
    assert_eq!(
        result["histogram"],
        serde_json::json!([2, 3, 2, 3]),
        "{result}"
    );
    assert_eq!(result["total_individual_clients"], 6, "{result}");

    // 3. After the overlap the old keys are retired; the signer's active key and a last
    // packet key cannot be.
    let refused = divvi(&[
        "keygen",
        "--dir",
        p(&ingestor),
        "--retire-key",
        "ingestor-signing-2",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("signs with"),
        "{refused:?}"
    );
    rotate(root, "ingestor", &["--retire-key", "ingestor-signing"]);
    rotate(root, "server0", &["--retire-key", "server0-packet"]);
    let refused = divvi(&[
        "keygen",
        "--dir",
        p(&folder(root, "server0")),
        "--retire-key",
        "server0-packet-2",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("last packet key"),
        "{refused:?}"
    );
    assert!(!ingestor.join("keys/ingestor-signing.key").exists());
    assert!(!folder(root, "server0")
        .join("keys/server0-packet.key")
        .exists());
    for party in PARTIES {
        import_all(root, party);
    }
    for server in ["server0", "server1"] {
        let text = config_text(root, server);
        assert!(!text.contains("\"ingestor-signing\""), "{text}");
    }
    assert!(!config_text(root, "server0").contains("\"server0-packet\""));

    // The forgotten ingestor's batch, signed with the retired key, is refused by name.
    let out = ingest_enpa(root, &stale, "c.csv", "1,1,1,1\n");
    assert!(out.status.success(), "{out:?}");
    let out = divvi(&[
        "intake",
        "--config",
        p(&config("server0")),
        "--aggregation",
        "rotation",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ingestor-signing"), "{text}");
}
