//! The uploader's error type.

use crate::config::ConfigError;
use crate::crypto::CryptoError;
use crate::dropbox::DropboxError;

/// Anything that can stop an operation of the uploader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("storage: {0}")]
    Storage(String),
    #[error("dropbox: {0}")]
    Dropbox(#[from] DropboxError),
    #[error("token: {0}")]
    Crypto(#[from] CryptoError),
    #[error("manifest: {0}")]
    Manifest(#[from] edgemeet_protocol::job::ManifestError),
    #[error("local folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("recording passed its retention during upload")]
    RetentionPassed,
    #[error("shutting down")]
    Shutdown,
}
