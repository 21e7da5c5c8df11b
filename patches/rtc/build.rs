//! crates.io `rtc` 0.21.1 plus `rtc-0.21.1.patch` (see ../patched_crate.rs).

const NAME: &str = "rtc";
const VERSION: &str = "0.21.1";
/// `cksum` of rtc 0.21.1 in the crates.io index (https://index.crates.io/3/r/rtc).
const SHA256: &str = "4e2ca201de5ccc83aa3c08d49a2f08d7ed0aeeb2052fb1ccc517a8b77a6927ce";
/// A path to `rtc-0.21.1.crate`, for builds with no network and no cargo cache of it.
const CRATE_ENV: &str = "EDGEMEET_RTC_CRATE";

include!("../patched_crate.rs");
