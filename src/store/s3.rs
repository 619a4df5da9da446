//! S3 (and S3-compatible stores) through aws-sdk-s3. The SDK is async; this backend keeps
//! one tokio runtime for the process and blocks on it, so callers stay synchronous.
//!
//! - get streams the body; a read that breaks mid-object resumes with a range request.
//! - put is atomic: one PutObject for small objects, else a multipart upload of 8 MiB
//!   parts (memory stays at one part) that is completed on commit and aborted if dropped.
//! - The SDK's standard retry mode handles transient failures (5xx, throttling, timeouts,
//!   connection errors) with exponential backoff and jitter; 4xx errors such as
//!   AccessDenied or NoSuchBucket fail at once.
//! - Checksums are sent only where S3 requires them: several S3-compatible servers reject
//!   the SDK's default CRC32 trailers on uploads.

use super::{ObjectStore, ObjectWriter, StoreError, StoreErrorKind};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use std::io::{self, Read, Write};
use std::sync::OnceLock;
use std::time::Duration;

/// Multipart part size; objects below it go up in one PutObject.
const PART_SIZE: usize = 8 << 20;
/// Attempts to resume a broken download.
const READ_RETRIES: u32 = 4;

/// The process's runtime for S3 calls (two workers: IO, not computation, runs there).
pub(crate) fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("divvi-s3")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Key prefix inside the bucket, empty or ending in '/'.
    prefix: String,
}

/// The error an SDK call returned: its S3 error code and message, or, where the response
/// had no body (HEAD), what its HTTP status means.
fn service_error<E>(op: &'static str, object: String, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = match (err.code(), status) {
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StoreErrorKind::NotFound,
        (Some(code), _) => StoreErrorKind::Service(format!(
            "{code}{}",
            err.message().map(|m| format!(": {m}")).unwrap_or_default()
        )),
        (None, Some(403)) => StoreErrorKind::Service("AccessDenied (HTTP 403)".into()),
        (None, Some(status)) => StoreErrorKind::Service(format!("HTTP {status}")),
        (None, None) => {
            StoreErrorKind::Service(aws_sdk_s3::error::DisplayErrorContext(&err).to_string())
        }
    };
    StoreError { op, object, kind }
}

impl S3Store {
    pub fn new(client: Client, bucket: String, prefix: String) -> Self {
        let prefix = super::location::store_prefix(&prefix);
        S3Store {
            client,
            bucket,
            prefix,
        }
    }

    fn full_key(&self, op: &'static str, key: &str) -> Result<String, StoreError> {
        super::validate_key(key).map_err(|reason| StoreError {
            op,
            object: self.describe(key),
            kind: StoreErrorKind::BadKey(reason),
        })?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn block_on<F: std::future::Future>(
        &self,
        op: &'static str,
        key: &str,
        f: F,
    ) -> Result<F::Output, StoreError> {
        let rt = runtime().map_err(|e| StoreError {
            op,
            object: self.describe(key),
            kind: StoreErrorKind::Io(e),
        })?;
        Ok(rt.block_on(f))
    }

    /// Starts a GetObject at `offset` and returns its body.
    fn open_body(&self, key: &str, full: &str, offset: u64) -> Result<ByteStream, StoreError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(full);
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        let out = self
            .block_on("reading", key, req.send())?
            .map_err(|e| service_error("reading", self.describe(key), e))?;
        Ok(out.body)
    }
}

impl ObjectStore for S3Store {
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let full = self.full_key("reading", key)?;
        let body = self.open_body(key, &full, 0)?;
        Ok(Box::new(S3Reader {
            store: self.clone(),
            key: key.to_string(),
            full,
            body,
            chunk: bytes::Bytes::new(),
            offset: 0,
        }))
    }

    fn put(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let full = self.full_key("writing", key)?;
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            full,
            buffer: Vec::new(),
            upload: None,
            committed: false,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        let result: Result<(), StoreError> = self.block_on("listing", prefix, async {
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| service_error("listing", self.describe(prefix), e))?;
                for object in page.contents() {
                    if let Some(k) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                        keys.push(k.to_string());
                    }
                }
            }
            Ok(())
        })?;
        result?;
        keys.sort();
        Ok(keys)
    }

    fn discard(&self, key: &str) -> Result<(), StoreError> {
        // The bucket's lifecycle rule for the key's prefix expires it (terraform/:
        // `rounds/` in each server's own bucket); the job's role may not delete.
        self.full_key("discarding", key).map(|_| ())
    }

    fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let full = self.full_key("creating", key)?;
        let mut attempt = 0;
        loop {
            // S3 conditional write: 412 if the key exists; 409 while a racing write of it
            // is in flight, after which a retry learns who won.
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .if_none_match("*")
                .body(ByteStream::from(bytes.to_vec()))
                .send();
            let err = match self.block_on("creating", key, req)? {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            match err.raw_response().map(|r| r.status().as_u16()) {
                Some(412) => return Ok(false),
                Some(409) if attempt < 5 => {
                    attempt += 1;
                    std::thread::sleep(backoff(attempt));
                }
                _ => return Err(service_error("creating", self.describe(key), err)),
            }
        }
    }

    fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let full = self.full_key("checking", key)?;
        let req = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send();
        match self.block_on("checking", key, req)? {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => {
                let err = service_error("checking", self.describe(key), e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// One page of a delimited listing: the top-level prefixes, not every key.
    fn top_level_names(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .delimiter("/")
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .send();
        let page = self
            .block_on("listing", "", req)?
            .map_err(|e| service_error("listing", self.describe(""), e))?;
        let mut names: Vec<String> = page
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .chain(page.contents().iter().filter_map(|o| o.key()))
            .filter_map(|k| k.strip_prefix(&self.prefix))
            .map(|k| k.trim_end_matches('/').to_string())
            .collect();
        names.sort();
        names.truncate(limit);
        Ok(names)
    }
}

/// A streamed object body that resumes where it broke off.
struct S3Reader {
    store: S3Store,
    key: String,
    full: String,
    body: ByteStream,
    chunk: bytes::Bytes,
    offset: u64,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut attempt = 0;
        while self.chunk.is_empty() {
            let next = self
                .store
                .block_on("reading", &self.key, self.body.next())
                .map_err(io::Error::other)?;
            match next {
                None => return Ok(0),
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(e)) if attempt < READ_RETRIES => {
                    attempt += 1;
                    tracing::warn!(object = %self.store.describe(&self.key), offset = self.offset, error = %e, attempt, "download broke off; resuming");
                    std::thread::sleep(backoff(attempt));
                    self.body = self
                        .store
                        .open_body(&self.key, &self.full, self.offset)
                        .map_err(io::Error::other)?;
                }
                Some(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "reading {}: {e} (after {READ_RETRIES} resumptions)",
                        self.store.describe(&self.key)
                    )))
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.offset += n as u64;
        Ok(n)
    }
}

/// Exponential backoff with jitter: 100 ms, 200 ms, 400 ms ... plus up to as much again.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.min(6);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

struct Upload {
    id: String,
    parts: Vec<CompletedPart>,
}

struct S3Writer {
    store: S3Store,
    key: String,
    full: String,
    buffer: Vec<u8>,
    upload: Option<Upload>,
    committed: bool,
}

impl S3Writer {
    fn object(&self) -> String {
        self.store.describe(&self.key)
    }

    /// Sends the buffer as the next part, starting the multipart upload if needed.
    fn send_part(&mut self) -> Result<(), StoreError> {
        let s = &self.store;
        if self.upload.is_none() {
            let req = s
                .client
                .create_multipart_upload()
                .bucket(&s.bucket)
                .key(&self.full)
                .send();
            let out = s
                .block_on("writing", &self.key, req)?
                .map_err(|e| service_error("writing", self.object(), e))?;
            let id = out
                .upload_id()
                .ok_or_else(|| StoreError {
                    op: "writing",
                    object: self.object(),
                    kind: StoreErrorKind::Service(
                        "multipart upload started without an upload id".into(),
                    ),
                })?
                .to_string();
            self.upload = Some(Upload {
                id,
                parts: Vec::new(),
            });
        }
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        let number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let body = ByteStream::from(std::mem::take(&mut self.buffer));
        let req = s
            .client
            .upload_part()
            .bucket(&s.bucket)
            .key(&self.full)
            .upload_id(&upload.id)
            .part_number(number)
            .body(body)
            .send();
        let out = s
            .block_on("writing", &self.key, req)?
            .map_err(|e| service_error("writing", s.describe(&self.key), e))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        self.buffer.reserve(PART_SIZE);
        Ok(())
    }
}

impl Write for S3Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = PART_SIZE - self.buffer.len();
        let n = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() >= PART_SIZE {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let s = self.store.clone();
        match self.upload.is_some() {
            false => {
                let body = ByteStream::from(std::mem::take(&mut self.buffer));
                let req = s
                    .client
                    .put_object()
                    .bucket(&s.bucket)
                    .key(&self.full)
                    .body(body)
                    .send();
                s.block_on("writing", &self.key, req)?
                    .map_err(|e| service_error("writing", self.object(), e))?;
            }
            true => {
                if !self.buffer.is_empty() {
                    self.send_part()?;
                }
                let Some(upload) = self.upload.as_ref() else {
                    return Ok(());
                };
                let done = CompletedMultipartUpload::builder()
                    .set_parts(Some(upload.parts.clone()))
                    .build();
                let req = s
                    .client
                    .complete_multipart_upload()
                    .bucket(&s.bucket)
                    .key(&self.full)
                    .upload_id(&upload.id)
                    .multipart_upload(done)
                    .send();
                s.block_on("writing", &self.key, req)?
                    .map_err(|e| service_error("writing", self.object(), e))?;
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Not committed: abort the multipart upload so no parts linger (best effort; an
        // uncompleted upload is never visible as an object either way).
        if let (false, Some(upload)) = (self.committed, &self.upload) {
            let s = &self.store;
            let req = s
                .client
                .abort_multipart_upload()
                .bucket(&s.bucket)
                .key(&self.full)
                .upload_id(&upload.id)
                .send();
            if let Ok(Err(e)) = s.block_on("aborting", &self.key, req) {
                tracing::warn!(object = %s.describe(&self.key), error = %aws_sdk_s3::error::DisplayErrorContext(&e), "could not abort multipart upload");
            }
        }
    }
}
