//! Test support for the edgemeet workspace, never shipped: production crates take it as a
//! dev-dependency only, so no test helper or test feature is compiled into a release binary.
//!
//! - [`node_client`]: a webrtc-rs participant of the media node (publishes checkable synthetic
//!   RTP, pulls tracks through the node's HTTP API, counts keyframe requests).
//! - [`media`]: real VP8 and Opus encoded by ffmpeg, sent in real time on a client's tracks.
//! - [`media_files`]: what a viewer of a produced file would notice (codecs, duration, the
//!   picture at a moment, loudness), and a log capture.
//! - [`rtmp_server`]: ffmpeg as an RTMP server (a livestream's ingest), writing what it receives.
//! - [`shaped_link`]: a UDP relay with a downlink cap and a bounded queue, between a client and
//!   the node (bandwidth estimation tests).
//! - [`s3s_fs`]: the s3s-fs server (a real S3-compatible server) as a child process.
//! - [`dropbox_emulator`]: a strict local Dropbox HTTP API v2 (the only emulated service).
//!
//! Binaries: `edgemeet-media-bench` (tests/bench/media-node.sh) and `dropbox-emulator` (the
//! emulator as a process, for the browser tests).
//!
//! It depends on no edgemeet crate but `edgemeet-protocol` (the wire types every client speaks),
//! so the media node and the uploader can use it in their own tests without a dependency cycle.

pub mod dropbox_emulator;
pub mod media;
pub mod media_files;
pub mod node_client;
mod rtcp_to_app;
pub mod rtmp_server;
pub mod s3s_fs;
pub mod shaped_link;
