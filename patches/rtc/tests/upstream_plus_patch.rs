//! The `rtc` this workspace builds is exactly crates.io rtc 0.21.1 plus `rtc-0.21.1.patch`.

const NAME: &str = "rtc";
const VERSION: &str = "0.21.1";
const CRATES_IO_SHA256: &str = "4e2ca201de5ccc83aa3c08d49a2f08d7ed0aeeb2052fb1ccc517a8b77a6927ce";
/// Upstream lib.rs's inner attributes (first lines), which src/lib.rs carries.
const INNER_ATTRIBUTES: &[&str] = &[
    "#![doc(",
    "#![warn(rust_2018_idioms)]",
    "#![warn(missing_docs)]",
    "#![allow(dead_code)]",
];

include!("../../patched_crate_test.rs");
