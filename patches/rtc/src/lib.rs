//! crates.io `rtc` 0.21.1 with `rtc-0.21.1.patch` applied (see `build.rs`, and the comment above
//! `[patch.crates-io]` in the workspace's Cargo.toml for why each change is there).
//!
//! Upstream's `src/lib.rs` opens with `#![warn(rust_2018_idioms)]`, `#![warn(missing_docs)]`,
//! `#![allow(dead_code)]` and a `#![doc(html_logo_url)]`; inner attributes cannot come through
//! `include!`, so they are here. Like any crates.io dependency, its warnings are not ours to fix
//! (cargo caps registry crates' lints; this one is a path crate, so it says so itself).
#![allow(warnings, clippy::all, clippy::pedantic, clippy::nursery)]

include!(concat!(env!("OUT_DIR"), "/lib_body.rs"));
