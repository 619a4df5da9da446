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
use std::path::{Component, Path, PathBuf};
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

/// The forms a location may take, for errors about one that is none of them.
const ACCEPTED_FORMS: &str = "a location is s3://bucket/prefix, file:///absolute/folder, \
     or a folder path (absolute, or relative to the config's folder)";

/// Where a location's objects are, as its URL says (folders joined to the config's folder).
enum Target<'a> {
    Folder(PathBuf),
    S3 { bucket: &'a str, prefix: &'a str },
}

/// A location reduced to what decides which objects it holds, so that two locations
/// written differently (`dir/`, `./dir`, `file:///abs/dir`; `s3://b/p`, `s3://b/p/`)
/// compare equal when they are the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// An absolute folder, `.`, `..` and repeated or trailing slashes resolved (lexically:
    /// symbolic links are not followed).
    Folder(PathBuf),
    S3 {
        endpoint: Option<String>,
        bucket: String,
        /// Empty or ending in `/`, as the store uses it.
        prefix: String,
    },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Folder(path) => write!(f, "file://{}", path.display()),
            Place::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                write!(f, "s3://{bucket}/{prefix}")?;
                match endpoint {
                    Some(endpoint) => write!(f, " at {endpoint}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl LocationConfig {
    /// The place this location names, or why its URL names none. Touches no storage.
    pub fn place(&self, base: &Path) -> Result<Place, String> {
        let s = self.settings();
        Ok(match target(&s, base)? {
            Target::Folder(path) => Place::Folder(normalise_folder(&path)),
            Target::S3 { bucket, prefix } => Place::S3 {
                endpoint: s
                    .endpoint
                    .as_ref()
                    .map(|e| e.trim_end_matches('/').to_string()),
                bucket: bucket.to_string(),
                prefix: store_prefix(prefix),
            },
        })
    }
}

/// Opens a location. Relative folders are taken relative to `base` (the config's folder).
pub fn open_location(
    location: &LocationConfig,
    base: &Path,
) -> Result<Box<dyn ObjectStore>, String> {
    let s = location.settings();
    match target(&s, base)? {
        Target::S3 { bucket, prefix } => open_s3(&s, bucket, prefix),
        Target::Folder(path) => Ok(Box::new(LocalStore::new(path))),
    }
}

/// Parses a location's URL: `s3://`, `file://`, or a folder path; anything else that
/// starts like a URL (`s3:/b`, `S3://b`, `http://…`) is a mistake, refused.
fn target<'a>(s: &'a LocationSettings, base: &Path) -> Result<Target<'a>, String> {
    if let Some(rest) = s.url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("location {}: no bucket", s.url));
        }
        return Ok(Target::S3 { bucket, prefix });
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
    let path = match s.url.strip_prefix("file://") {
        Some(rest) => file_url_path(rest).map_err(|e| format!("location {}: {e}", s.url))?,
        None => plain_path(&s.url)?,
    };
    Ok(Target::Folder(base.join(path)))
}

/// A location written without a scheme: a folder path.
fn plain_path(url: &str) -> Result<PathBuf, String> {
    if url.is_empty() {
        return Err("empty location".into());
    }
    if let Some(scheme) = url_scheme(url) {
        return Err(format!(
            "location {url:?} starts with \"{scheme}:\", which is neither s3:// nor file:// \
             (mistyped?); {ACCEPTED_FORMS}; write ./{scheme}:... for a folder whose name has \
             a colon"
        ));
    }
    Ok(PathBuf::from(url))
}

/// The scheme of a text that starts like a URL (`name:`), if it does. A path with a
/// slash before its first colon (`buckets/a:b`, `./a:b`, `/a:b`) has none.
fn url_scheme(url: &str) -> Option<&str> {
    let (head, _) = url.split_once(':')?;
    let mut chars = head.chars();
    let starts_with_letter = chars.next()?.is_ascii_alphabetic();
    let scheme_chars = chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    (starts_with_letter && scheme_chars).then_some(head)
}

/// The folder of a `file://` URL (what follows `file://`): an absolute path, on no host
/// but `localhost`, percent-decoded.
fn file_url_path(rest: &str) -> Result<PathBuf, String> {
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(format!(
            "a file:// URL takes an absolute path (file:///absolute/folder) and no host; \
             {ACCEPTED_FORMS}"
        ));
    }
    percent_decode(path)
}

/// Decodes `%XX` escapes (`my%20dir` is `my dir`). A `%` without two hex digits after it,
/// or an escaped NUL, is refused.
fn percent_decode(text: &str) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = text.get(i + 1..i + 3).unwrap_or("");
        let byte = u8::from_str_radix(escape, 16)
            .ok()
            .filter(|_| escape.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                format!("bad percent escape at byte {i}: % must be followed by two hex digits")
            })?;
        if byte == 0 {
            return Err(format!(
                "bad percent escape at byte {i}: %00 (NUL) is not a path"
            ));
        }
        out.push(byte);
        i += 3;
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// An absolute form of a folder, resolved lexically: `.` and `..` components, repeated
/// and trailing slashes dropped.
fn normalise_folder(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An S3 key prefix as the store uses it: empty, or ending in `/`.
pub(super) fn store_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
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

    fn place(url: &str) -> Result<Place, String> {
        LocationConfig::from(url).place(Path::new("/cfg"))
    }

    #[test]
    fn one_place_however_it_is_written() {
        let dir = place("/cfg/dir").unwrap();
        for same in [
            "dir",
            "dir/",
            "./dir//",
            "sub/../dir",
            "file:///cfg/dir",
            "file://localhost/cfg/dir/",
        ] {
            assert_eq!(place(same).unwrap(), dir, "{same}");
        }
        assert_ne!(place("dir/sub").unwrap(), dir);
        let bucket = place("s3://b/p").unwrap();
        assert_eq!(place("s3://b/p/").unwrap(), bucket);
        assert_ne!(place("s3://b").unwrap(), bucket);
        assert_ne!(place("s3://b/p//").unwrap(), bucket);
        let elsewhere = LocationConfig::Detailed(LocationSettings {
            url: "s3://b/p".into(),
            endpoint: Some("http://127.0.0.1:8333".into()),
            ..Default::default()
        });
        assert_ne!(elsewhere.place(Path::new("/cfg")).unwrap(), bucket);
    }

    #[test]
    fn file_urls_are_percent_decoded_and_bad_escapes_refused() {
        assert_eq!(
            place("file:///tmp/my%20dir").unwrap(),
            Place::Folder("/tmp/my dir".into())
        );
        assert_eq!(
            place("file:///tmp/%C3%A9t%c3%a9").unwrap(),
            Place::Folder("/tmp/été".into())
        );
        for bad in [
            "file:///a%zz",
            "file:///a%4",
            "file:///a%",
            "file:///a%+1",
            "file:///a%00",
        ] {
            let e = place(bad).unwrap_err();
            assert!(
                e.contains("bad percent escape") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        let e = place("file://host/dir").unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
    }

    #[test]
    fn mistyped_urls_are_refused_naming_the_accepted_forms() {
        for bad in [
            "s3:/bucket",
            "s3:bucket",
            "S3://bucket",
            "file:/x",
            "http://h/x",
            "gs://b",
            "c:\\x",
        ] {
            let e = place(bad).unwrap_err();
            assert!(
                e.contains("neither s3:// nor file://") && e.contains("file:///absolute/folder"),
                "{bad}: {e}"
            );
        }
        for fine in ["buckets/x:y", "./a:b", "/abs/a:b", "dir", "../up"] {
            assert!(place(fine).is_ok(), "{fine}");
        }
    }
}
