//! edgemeet uploader: moves finished recordings from S3-compatible storage to the recorder's
//! Dropbox (or a local folder), deletes them, and purges anything older than the retention
//! (24 h) whether uploaded or not.
//!
//! S3 is the queue: a recording is "finished" when its `manifest.json` exists; the uploader keeps
//! its resume state in `progress.json` and the recorder's delivery status in `status.json`
//! beside it. See `docs/uploader.md`.
//!
//! Embedding (the all-in-one server):
//!
//! ```no_run
//! # async fn f() -> Result<(), edgemeet_uploader::Error> {
//! let config = edgemeet_uploader::Config::from_toml_str("...")?;
//! let handle = edgemeet_uploader::start(config).await?;
//! // ...
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

pub mod clock;
pub mod config;
pub mod content_hash;
pub mod crypto;
pub mod dropbox;
pub mod embedded_s3;
pub mod error;
pub mod job;
pub mod journal;
pub mod local;
pub mod logging;
pub mod metrics;
mod purge;
pub mod status;
pub mod store;
mod upload;
pub mod worker;
pub mod writer;

pub use clock::{Clock, OffsetClock, SystemClock};
pub use config::{Config, ConfigError, Destination, DropboxConfig, S3Config};
pub use crypto::TokenKey;
pub use edgemeet_protocol::job::{DropboxCredentials, RecordingFile, RecordingManifest};
pub use embedded_s3::{EmbeddedS3, start_embedded_s3};
pub use error::Error;
pub use metrics::MetricsSnapshot;
pub use store::Store;
pub use worker::{UploaderHandle, start, start_with_clock};
pub use writer::{FileWriter, RecordingWriter};

/// Installs ring as the process-wide rustls provider (reqwest is built without one).
/// Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
