//! Secrets stay secret: key files are owner-only, and no command's output, error or log
//! (at trace level, text and JSON) carries key material, in any encoding we write.

mod common;

use base64::Engine;
use common::divvi;
use std::path::Path;

/// Every 16-character window (step 4) of a secret, as its text and as hex of its bytes.
fn fingerprints(secret_text: &str) -> Vec<String> {
    let mut forms = vec![secret_text.trim().to_string()];
    // DAP task secrets are base64url without padding; the others standard base64.
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret_text.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret_text.trim()));
    if let Ok(raw) = raw {
        forms.push(base64::engine::general_purpose::STANDARD.encode(&raw));
        forms.push(raw.iter().map(|b| format!("{b:02x}")).collect());
        forms.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
    }
    let mut out = Vec::new();
    for f in forms {
        let chars: Vec<char> = f.chars().collect();
        for start in (0..chars.len().saturating_sub(16)).step_by(4) {
            out.push(chars[start..start + 16].iter().collect());
        }
    }
    out
}

fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_divvi"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn key_files_are_owner_only_and_no_output_shows_key_material() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let dp = d.to_str().unwrap();
    // With a DAP task, so its four secrets are among the keys looked for.
    let ok = divvi(&[
        "keygen",
        "--out",
        dp,
        "--min-clients",
        "1",
        "--vdaf",
        "histogram:2",
    ]);
    assert!(ok.status.success());
    let keys: Vec<(String, String)> = std::fs::read_dir(d.join("keys"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", p.display());
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    // Signing: ingestor, both servers, portal; packet and stash keys of each server; the
    // three HPKE keys (both servers', the collector's) and the verify key.
    assert_eq!(keys.len(), 12);

    let cfg = |n: &str| d.join(n).display().to_string();
    let (s0, s1, portal, ing) = (
        cfg("server0.toml"),
        cfg("server1.toml"),
        cfg("portal.toml"),
        cfg("ingestor.toml"),
    );
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "1,0\n0,1\n1,0\n").unwrap();
    let time = common::test_time();
    let mut outputs = Vec::new();
    let trace = [("RUST_LOG", "trace")];
    for format in ["text", "json"] {
        let env = [trace[0], ("DIVVI_LOG_FORMAT", format)];
        let agg = format!("secrets-{format}");
        outputs.push(run(
            &[
                "ingest",
                "--config",
                &ing,
                "--input",
                csv.to_str().unwrap(),
                "--aggregation",
                &agg,
                "--bins",
                "2",
                "--time",
                time,
            ],
            &env,
        ));
        for s in [&s0, &s1] {
            outputs.push(run(&["intake", "--config", s, "--aggregation", &agg], &env));
        }
        for s in [&s0, &s1] {
            outputs.push(run(
                &[
                    "aggregate",
                    "--config",
                    s,
                    "--aggregation",
                    &agg,
                    "--start",
                    time,
                    "--end",
                    time,
                ],
                &env,
            ));
            outputs.push(run(&["status", "--config", s, "--aggregation", &agg], &env));
        }
        outputs.push(run(
            &[
                "collect",
                "--config",
                &portal,
                "--aggregation",
                &agg,
                "--start",
                time,
                "--end",
                time,
            ],
            &env,
        ));
    }
    assert!(
        outputs.iter().any(|o| o.contains("count")),
        "the pipeline ran"
    );
    for sub in [
        "",
        "demo",
        "keygen",
        "ingest",
        "intake",
        "aggregate",
        "collect",
        "status",
        "inspect",
        "bench",
        "check",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        outputs.push(run(&args, &[]));
    }
    // inspect on key files and configs, with and without a config's trust.
    for (path, _) in &keys {
        outputs.push(run(&["inspect", path], &trace));
        outputs.push(run(&["inspect", path, "--config", &s0], &trace));
    }
    for c in [&s0, &portal] {
        outputs.push(run(&["inspect", c], &trace));
    }
    outputs.push(run(&["check", "--config", &s0], &trace));
    outputs.push(run(
        &["check", "--config", &portal, "--as", "portal"],
        &trace,
    ));
    outputs.push(run(&["check", "--config", &s1], &trace));
    outputs.push(run(
        &["check", "--config", &ing, "--as", "ingestor"],
        &trace,
    ));
    // Broken DAP secrets: the other server's HPKE key, a truncated verify key.
    let swapped = d.join("swapped.toml");
    let body = std::fs::read_to_string(&s1)
        .unwrap()
        .replace("server1-hpke.key", "server0-hpke.key");
    std::fs::write(&swapped, body).unwrap();
    let out = run(&["check", "--config", swapped.to_str().unwrap()], &trace);
    assert!(out.contains("helper_hpke_config"), "{out}");
    outputs.push(out);
    let verify_key = d.join("keys/verify.key");
    let text = std::fs::read_to_string(&verify_key).unwrap();
    std::fs::write(&verify_key, &text[..text.len() - 6]).unwrap();
    let out = run(&["check", "--config", &s0], &trace);
    assert!(out.contains("dap.verify_key"), "{out}");
    outputs.push(out);
    std::fs::write(&verify_key, text.replace('A', "*")).unwrap();
    outputs.push(run(&["check", "--config", &s0], &trace));
    std::fs::write(&verify_key, &text).unwrap();
    // Broken secrets: a truncated key and a key variable that is not set.
    let packet_key = d.join("keys/server0-packet.key");
    let text = std::fs::read_to_string(&packet_key).unwrap();
    std::fs::write(&packet_key, &text[..text.len() / 2]).unwrap();
    outputs.push(run(
        &["intake", "--config", &s0, "--aggregation", "x"],
        &trace,
    ));
    std::fs::write(&packet_key, text.replace('A', "*")).unwrap();
    outputs.push(run(
        &["intake", "--config", &s0, "--aggregation", "x"],
        &trace,
    ));
    let env_config = d.join("env.toml");
    let body = std::fs::read_to_string(&s0).unwrap().replace(
        "[signing_key.secret]\nfile = \"keys/server0-signing.key\"",
        "[signing_key.secret]\nenv = \"DIVVI_TEST_SIGNING_KEY\"",
    );
    assert!(body.contains("DIVVI_TEST_SIGNING_KEY"));
    std::fs::write(&env_config, body).unwrap();
    let env_out = run(
        &[
            "intake",
            "--config",
            env_config.to_str().unwrap(),
            "--aggregation",
            "x",
        ],
        &trace,
    );
    assert!(env_out.contains("DIVVI_TEST_SIGNING_KEY"), "{env_out}");
    outputs.push(env_out);

    // The detector itself finds a key where there is one.
    let planted = format!("log line with {} inside", keys[0].1.trim());
    assert!(fingerprints(&keys[0].1)
        .iter()
        .any(|f| planted.contains(f.as_str())));

    let mut leaks = Vec::new();
    for (path, secret) in &keys {
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        for f in fingerprints(secret) {
            if let Some(o) = outputs.iter().find(|o| o.contains(&f)) {
                leaks.push(format!("{name}: {f:?} in: {}", &o[..o.len().min(300)]));
                break;
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "key material in output:\n{}",
        leaks.join("\n")
    );
}

/// A fresh deployment by `divvi keygen` in `dir/d`; returns its folder.
fn keygen_in(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("d");
    assert!(divvi(&["keygen", "--out", d.to_str().unwrap()])
        .status
        .success());
    d
}

/// Whether any 16-character window of `secret` (as text, hex or URL-safe base64) is in
/// `output`.
fn shows(output: &str, secret: &str) -> bool {
    fingerprints(secret)
        .iter()
        .any(|f| output.contains(f.as_str()))
}

/// A key pasted into a config by mistake, in each way a hurried operator might: the
/// config is refused naming the file (and line or field), and `divvi check` never prints
/// the key.
#[test]
fn a_key_pasted_into_a_config_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = keygen_in(dir.path());
    let config = std::fs::read_to_string(d.join("server0.toml")).unwrap();
    let key = std::fs::read_to_string(d.join("keys/server0-signing.key")).unwrap();
    let key = key.trim();
    let table = "[signing_key.secret]\nfile = \"keys/server0-signing.key\"";
    let signing = format!("[signing_key]\nid = \"server0-signing\"\n\n{table}\n");
    let stash = "[stash_key]\nfile = \"keys/server0-stash.key\"\n";
    assert!(config.contains(&signing) && config.contains(stash));
    let paste = |from: &str, to: &str| config.replacen(from, to, 1);
    // A top-level field in place of its table.
    let at_top = |table: &str, field: &str| {
        paste(table, "").replacen(
            "server_index = 0",
            &format!("{field} = \"{key}\"\nserver_index = 0"),
            1,
        )
    };
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{key}\n-----END PRIVATE KEY-----");
    let pastings = [
        (
            "inline string",
            paste(table, &format!("secret = \"{key}\"")),
            "never inline",
        ),
        (
            "inline PEM",
            paste(table, &format!("secret = \"\"\"\n{pem}\"\"\"")),
            "never inline",
        ),
        (
            "stash key inline",
            at_top(stash, "stash_key"),
            "never inline",
        ),
        (
            "an unknown field",
            paste(table, &format!("private_key = \"{key}\"\n\n{table}")),
            "unknown field `private_key`",
        ),
        (
            "a table as a string",
            at_top(&signing, "signing_key"),
            "invalid type: string",
        ),
        (
            "a line of its own",
            paste("[signing_key]", &format!("{key}\n[signing_key]")),
            "line 14",
        ),
        (
            "a file name",
            paste(
                "file = \"keys/server0-signing.key\"",
                &format!("file = \"{key}\""),
            ),
            "looks like key material",
        ),
        (
            "a variable name",
            paste(
                "file = \"keys/server0-signing.key\"",
                &format!("env = \"{key}\""),
            ),
            "looks like key material",
        ),
    ];
    for (how, text, reason) in pastings {
        let path = d.join("pasted.toml");
        std::fs::write(&path, text).unwrap();
        let out = divvi(&["check", "--config", path.to_str().unwrap()]);
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{how}: loaded");
        assert!(
            shown.contains("pasted.toml") && shown.contains(reason),
            "{how}: {shown}"
        );
        assert!(!shows(&shown, key), "{how}: the key is shown: {shown}");
    }
}

/// The ingestor's key open to others draws a warning naming the file and its mode; a
/// server's is refused (the bad-input corpus checks the refusal).
#[test]
fn an_open_ingestor_key_draws_a_warning_without_its_content() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = keygen_in(dir.path());
    let key_file = d.join("keys/ingestor-signing.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = d.join("ingestor.toml");
    let out = divvi(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--as",
        "ingestor",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("WARN") && log.contains("ingestor-signing.key") && log.contains("644"),
        "{log}"
    );
    assert!(log.contains("chmod 600"), "{log}");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(!shows(&log, &key), "{log}");
}
