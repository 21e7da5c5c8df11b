//! An S3-compatible server inside the process (s3s + s3s-fs), for the all-in-one: the writer and
//! the uploader then use the very same aws-sdk-s3 code path as against a real bucket.

use std::net::SocketAddr;
use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;

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
