//! Secrets stay secret: key files are owner-only, and no command's output, error or log
//! (at trace level, text and JSON) carries key material, in any encoding we write.

mod common;

use base64::Engine;
use common::divvi;
use std::path::Path;

/// Every 16-character window (step 4) of a secret, as its text and as hex of its bytes.
fn fingerprints(secret_text: &str) -> Vec<String> {
    let mut forms = vec![secret_text.trim().to_string()];
    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(secret_text.trim()) {
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
    let ok = divvi(&["keygen", "--out", dp, "--min-clients", "1"]);
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
    assert_eq!(keys.len(), 7);

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
