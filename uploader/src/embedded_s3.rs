//! An S3-compatible server inside the process (s3s + s3s-fs), for the all-in-one: the writer and
//! the uploader then use the very same aws-sdk-s3 code path as against a real bucket.

use std::net::SocketAddr;
use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Result, s3_error};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;

/// Signed requests only, and object keys as S3 means them: s3s-fs maps a key to a file path, so
/// a `..` segment would reach another recording's files or another bucket's folder.
struct CleanKeys;

fn clean(key: &str) -> S3Result<()> {
    edgemeet_protocol::job::key_segments(key)
        .map(|_| ())
        .map_err(|_| {
            s3_error!(
                InvalidArgument,
                "object key has an empty, '.' or '..' segment"
            )
        })
}

fn clean_source(source: &CopySource) -> S3Result<()> {
    match source {
        CopySource::Bucket { key, .. } => clean(key),
        _ => Err(s3_error!(NotImplemented)),
    }
}

#[async_trait::async_trait]
impl S3Access for CleanKeys {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        match cx.s3_path() {
            S3Path::Object { key, .. } => clean(key),
            _ => Ok(()),
        }
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        clean_source(&req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        clean_source(&req.input.copy_source)
    }
}

/// A running embedded S3 server.
pub struct EmbeddedS3 {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EmbeddedS3 {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `s3.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

/// Serves the folder `root` (one sub-folder per bucket) as S3 on `bind` (use `127.0.0.1:0`),
/// requiring signatures with the given key pair.
pub async fn start_embedded_s3(
    root: impl Into<PathBuf>,
    access_key: &str,
    secret_key: &str,
    bind: SocketAddr,
) -> Result<EmbeddedS3, Error> {
    let root = root.into();
    tokio::fs::create_dir_all(&root).await?;
    let fs = s3s_fs::FileSystem::new(&root)
        .map_err(|e| Error::Storage(format!("embedded s3 root: {e:?}")))?;
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(access_key, secret_key));
        b.set_access(CleanKeys);
        b.build()
    };
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => { tracing::warn!(error = %e, "embedded s3: accept failed"); continue; }
                },
                _ = &mut rx => break,
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    tracing::info!(%addr, "embedded S3 storage up");
    Ok(EmbeddedS3 {
        addr,
        stop: Some(tx),
        task,
    })
}
