//! The composer: one picture and one sound of a whole meeting, for livestreams (RTMP) and
//! composite recordings (MP4). Design and status: `docs/composer-design.md`.
//!
//! - [`layout`], [`frame`], [`text`], [`mixer`], [`compositor`]: pure (pictures, sound and scene
//!   in; a canvas and 20 ms of sound out), tested without ffmpeg.
//! - [`decoder`]: a participant's track (live WebM) decoded by ffmpeg into the composition.
//! - [`composition`]: the host: a clock thread, ffmpeg ([`encoder`]) as a supervised process,
//!   and the output (an RTMP session of our own, [`rtmp`] over [`flv`] tags, or a writer).

pub mod composition;
pub mod compositor;
pub mod decoder;
pub mod encoder;
pub mod flv;
pub mod frame;
pub mod layout;
pub mod mixer;
pub mod mp4;
pub mod rtmp;
pub mod text;

pub use composition::{Composition, Feeder, Output, Report, Settings};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad RTMP target: {0}")]
    BadTarget(&'static str),
    #[error("RTMP connection: {0}")]
    Rtmp(#[source] std::io::Error),
    #[error("RTMP: {0}")]
    RtmpProtocol(String),
    /// `rtmps://`: the TLS session failed (the server's certificate is not trusted, no roots).
    #[error("RTMPS: {0}")]
    RtmpTls(String),
    #[error("encoder: {0}")]
    Encoder(String),
    #[error("output: {0}")]
    Output(#[source] std::io::Error),
}
