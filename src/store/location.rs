//! Where a location is and how to reach it. In a config a location is either a plain
//! URL (`./dir`, `/abs/dir`, `file:///abs/dir`, `s3://bucket/prefix`) or a table with
//! connection settings for S3-compatible stores:
//!
//! ```toml
//! [locations.peer_outbox]
//! url = "s3://facilitator-inbox/pha"
//! region = "us-west-2"
//! endpoint = "https://storage.googleapis.com"  # GCS interoperability, Garage, SeaweedFS…
//! path_style = true
//! profile = "granted-by-facilitator"          # AWS shared-config profile for this location
//! role_arn = "arn:aws:iam::123456789012:role/pha-writes-inbox"  # assumed for this location
//! ```
//!
//! Credentials come from the standard AWS chain (environment, profile, web identity /
//! IRSA, container and instance metadata), narrowed by `profile` and/or `role_arn`, so a
//! server can write into its peer's bucket with credentials the peer granted.

#[cfg(feature = "s3")]
use super::s3::{runtime, S3Store};
use super::{LocalStore, ObjectStore};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocationConfig {
    Url(String),
    Detailed(LocationSettings),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSettings {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_style: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl From<String> for LocationConfig {
    fn from(url: String) -> Self {
        LocationConfig::Url(url)
    }
}

impl From<&str> for LocationConfig {
    fn from(url: &str) -> Self {
        LocationConfig::Url(url.to_string())
    }
}

impl LocationConfig {
    pub fn settings(&self) -> LocationSettings {
        match self {
            LocationConfig::Url(url) => LocationSettings {
                url: url.clone(),
                ..Default::default()
            },
            LocationConfig::Detailed(s) => s.clone(),
        }
    }
}

/// Opens a location. Relative folders are taken relative to `base` (the config's folder).
pub fn open_location(
    location: &LocationConfig,
    base: &Path,
) -> Result<Box<dyn ObjectStore>, String> {
    let s = location.settings();
    if let Some(rest) = s.url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("location {}: no bucket", s.url));
        }
        return open_s3(&s, bucket, prefix);
    }
    if s.region.is_some()
        || s.endpoint.is_some()
        || s.path_style
        || s.profile.is_some()
        || s.role_arn.is_some()
    {
        return Err(format!(
            "location {}: connection settings apply to s3:// locations only",
            s.url
        ));
    }
    let path = s.url.strip_prefix("file://").unwrap_or(&s.url);
    if path.is_empty() {
        return Err("empty location".into());
    }
    let path = Path::new(path);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    Ok(Box::new(LocalStore::new(full)))
}

#[cfg(feature = "s3")]
fn open_s3(
    s: &LocationSettings,
    bucket: &str,
    prefix: &str,
) -> Result<Box<dyn ObjectStore>, String> {
    let client = runtime()
        .map_err(|e| format!("location {}: starting the S3 runtime: {e}", s.url))?
        .block_on(s3_client(s));
    Ok(Box::new(S3Store::new(
        client,
        bucket.to_string(),
        prefix.to_string(),
    )))
}

/// Builds without the `s3` feature (fuzzing) know local folders only.
#[cfg(not(feature = "s3"))]
fn open_s3(
    s: &LocationSettings,
    _bucket: &str,
    _prefix: &str,
) -> Result<Box<dyn ObjectStore>, String> {
    Err(format!(
        "location {}: this divvi was built without the s3 feature",
        s.url
    ))
}

#[cfg(feature = "s3")]
async fn s3_client(s: &LocationSettings) -> aws_sdk_s3::Client {
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};

    let region = RegionProviderChain::first_try(s.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::new("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        // Standard mode: exponential backoff with jitter on 5xx, throttling, timeouts and
        // connection errors; 4xx are not retried.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &s.profile {
        // This location's credentials come from its profile only: environment credentials
        // must not silently stand in for what a peer granted.
        loader = loader.profile_name(profile).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    if let Some(endpoint) = &s.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(s.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(role) = &s.role_arn {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("divvi")
            .configure(&shared)
            .build()
            .await;
        config = config.credentials_provider(provider);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_text_or_table() {
        #[derive(Deserialize)]
        struct C {
            a: LocationConfig,
            b: LocationConfig,
        }
        let c: C = toml::from_str(
            "a = \"s3://bucket/prefix\"\n[b]\nurl = \"s3://other\"\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:8333\"\npath_style = true\nprofile = \"p\"\n",
        )
        .unwrap();
        assert_eq!(c.a.settings().url, "s3://bucket/prefix");
        let b = c.b.settings();
        assert_eq!(
            (b.region.as_deref(), b.path_style, b.profile.as_deref()),
            (Some("eu-west-1"), true, Some("p"))
        );
        let bad: Result<C, _> = toml::from_str("a = \"x\"\n[b]\nurl = \"s3://o\"\nsurprise = 1\n");
        assert!(bad.is_err(), "unknown settings are refused");
    }

    #[test]
    fn local_locations_refuse_s3_settings_and_s3_needs_a_bucket() {
        let base = Path::new("/tmp");
        let local = LocationConfig::Detailed(LocationSettings {
            url: "dir".into(),
            profile: Some("p".into()),
            ..Default::default()
        });
        assert!(open_location(&local, base)
            .err()
            .unwrap()
            .contains("s3:// locations only"));
        assert!(open_location(&"s3:///x".into(), base)
            .err()
            .unwrap()
            .contains("no bucket"));
        let store = open_location(&"rel/dir".into(), base).unwrap();
        assert_eq!(store.describe("k"), "file:///tmp/rel/dir/k");
    }
}
