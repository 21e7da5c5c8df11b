//! The S3-compatible bucket: the uploader's queue and the recording writer's target.
//!
//! Lean client: aws-sdk-s3 with static credentials, path-style addressing and a ring-based rustls
//! HTTP client; no aws-config.

use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use bytes::Bytes;
use futures_util::Stream;

use crate::config::S3Config;
use crate::error::Error;

/// One object as listed.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// A multipart upload in progress, as listed.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// A bucket (and key prefix) on an S3-compatible server.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    bucket: String,
    prefix: String,
}

fn s3_err<E: std::error::Error + 'static>(what: &str, e: E) -> Error {
    Error::Storage(format!("{what}: {}", DisplayErrorContext(e)))
}

impl Store {
    /// A client for `cfg` (no I/O yet).
    pub fn new(cfg: &S3Config) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let creds = Credentials::new(
            &cfg.access_key_id,
            &cfg.secret_access_key,
            None,
            None,
            "edgemeet-config",
        );
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(&cfg.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            // Checksums only where the API demands them: S3-compatible servers differ in support
            // and ranged reads cannot be validated anyway.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .http_client(http)
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix of recordings (ends in `/` or is empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The underlying SDK client (same code path for writer, uploader and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> Result<(), Error> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(s3_err("create bucket", e)),
        }
    }

    /// Sets a 1-day expiry (and abort of incomplete multipart uploads) on the prefix: a second
    /// guard behind the purge sweep. Returns false where the server does not support lifecycle.
    pub async fn set_lifecycle_one_day(&self) -> bool {
        let rule = LifecycleRule::builder()
            .id("edgemeet-recordings-24h")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(&self.prefix).build())
            .expiration(LifecycleExpiration::builder().days(1).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build();
        let Ok(rule) = rule else { return false };
        let Ok(conf) = BucketLifecycleConfiguration::builder().rules(rule).build() else {
            return false;
        };
        match self
            .client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(conf)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(
                    code = e.code().unwrap_or("-"),
                    "bucket lifecycle rule not supported by this server; purge sweep only"
                );
                false
            }
        }
    }

    /// Every object under the prefix.
    pub async fn list(&self) -> Result<Vec<ObjectInfo>, Error> {
        self.list_under(&self.prefix).await
    }

    /// Every object whose key starts with `prefix`.
    pub async fn list_under(&self, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_err("list", e))?;
            for o in resp.contents() {
                let Some(key) = o.key() else { continue };
                let last_modified = o
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(ObjectInfo {
                    key: key.to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified,
                });
            }
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Multipart uploads in progress under the prefix; `None` where the server does not
    /// implement `ListMultipartUploads` (s3s-fs): the writer's markers cover those.
    pub async fn list_uploads(&self) -> Result<Option<Vec<UploadInfo>>, Error> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let resp = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
            {
                Ok(r) => r,
                Err(e)
                    if e.code() == Some("NotImplemented")
                        || e.raw_response().is_some_and(|r| r.status().as_u16() == 501) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(s3_err("list multipart uploads", e)),
            };
            for u in resp.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                out.push(UploadInfo {
                    key: key.to_owned(),
                    upload_id: id.to_owned(),
                    initiated: u
                        .initiated()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
            match (resp.next_key_marker(), resp.next_upload_id_marker()) {
                (Some(k), id) if resp.is_truncated() == Some(true) => {
                    key_marker = Some(k.to_owned());
                    id_marker = id.map(str::to_owned);
                }
                _ => break,
            }
        }
        Ok(Some(out))
    }

    /// Aborts a multipart upload, freeing its parts (one already gone is fine).
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(s3_err("abort multipart upload", e)),
        }
    }

    /// The size of an object; `None` if it does not exist.
    pub async fn size_of(&self, key: &str) -> Result<Option<u64>, Error> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(r) => Ok(Some(r.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(s3_err("head", e)),
        }
    }

    /// A small object in full (manifests, progress); `None` if it does not exist.
    pub async fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(r) => {
                let body = r.body.collect().await.map_err(|e| s3_err("read", e))?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(s3_err("get", e)),
        }
    }

    /// Writes a small object in one request.
    pub async fn put_small(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_err("put", e))?;
        Ok(())
    }

    /// Bytes `[start, end)` of an object as a stream: memory use is the SDK's read buffer, not
    /// the range length.
    pub async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static, Error>
    {
        debug_assert!(end > start);
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(|e| s3_err("ranged get", e))?;
        Ok(byte_stream(resp.body))
    }

    /// Deletes one object (missing objects are fine: deletes are retried after crashes).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(s3_err("delete", e)),
        }
    }
}

/// Adapts the SDK's body to a `Stream` of `Bytes`.
pub(crate) fn byte_stream(
    body: ByteStream,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    futures_util::stream::unfold(body, |mut body| async move {
        match body.next().await {
            None => None,
            Some(Ok(b)) => Some((Ok(b), body)),
            Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), body)),
        }
    })
}
