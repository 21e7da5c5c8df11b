//! crates.io `rtc-ice` 0.21.1 with `rtc-ice-0.21.1.patch` applied (see `build.rs`, and the
//! comment above `[patch.crates-io]` in the workspace's Cargo.toml for why).
//!
//! Upstream's `src/lib.rs` opens with `#![warn(rust_2018_idioms)]`, `#![warn(missing_docs)]` and
//! `#![allow(dead_code)]`; inner attributes cannot come through `include!`, so they are here.
//! Like any crates.io dependency, its warnings are not ours to fix (cargo caps registry crates'
//! lints; this one is a path crate, so it says so itself).
#![allow(warnings, clippy::all, clippy::pedantic, clippy::nursery)]

include!(concat!(env!("OUT_DIR"), "/lib_body.rs"));
