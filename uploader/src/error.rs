//! The uploader's error type.

use edgemeet_protocol::job::DeliveryProblem;

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
    /// The stored object is not what the manifest describes (missing, or another size).
    #[error("storage holds something else than the manifest says: {0}")]
    StorageMismatch(String),
    /// What the destination holds after a commit is not what was sent.
    #[error("delivered file differs from the stored one: {0}")]
    DeliveryMismatch(String),
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

impl Error {
    /// What the recorder's status says, and whether another attempt can help (`false`: the
    /// recording waits for the purge without more attempts).
    pub fn problem(&self) -> (DeliveryProblem, bool) {
        match self {
            Error::Dropbox(e) => e.problem(),
            Error::Storage(_) => (DeliveryProblem::StorageUnreachable, true),
            Error::StorageMismatch(_) => (DeliveryProblem::StorageMismatch, false),
            Error::DeliveryMismatch(_) => (DeliveryProblem::DeliveryMismatch, true),
            Error::Crypto(_) | Error::Manifest(_) => (DeliveryProblem::InvalidManifest, false),
            Error::Io(_) => (DeliveryProblem::LocalFolder, true),
            // Not outcomes of a delivery attempt (the worker handles them before asking).
            Error::Config(_) | Error::RetentionPassed | Error::Shutdown => {
                (DeliveryProblem::DropboxRefused, true)
            }
        }
    }
}
