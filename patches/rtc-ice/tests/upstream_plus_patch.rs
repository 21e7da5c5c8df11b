//! The `rtc-ice` this workspace builds is exactly crates.io rtc-ice 0.21.1 plus
//! `rtc-ice-0.21.1.patch`.

const NAME: &str = "rtc-ice";
const VERSION: &str = "0.21.1";
const CRATES_IO_SHA256: &str = "099984f1be120b2e5692f232f8cbb82e53f6b4261c5c2eeda5be6223ba1adaa9";
/// Upstream lib.rs's inner attributes (first lines), which src/lib.rs carries.
const INNER_ATTRIBUTES: &[&str] = &[
    "#![warn(rust_2018_idioms)]",
    "#![warn(missing_docs)]",
    "#![allow(dead_code)]",
];

include!("../../patched_crate_test.rs");
