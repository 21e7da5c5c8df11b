//! crates.io `rtc-ice` 0.21.1 plus `rtc-ice-0.21.1.patch` (see ../patched_crate.rs).

const NAME: &str = "rtc-ice";
const VERSION: &str = "0.21.1";
/// `cksum` of rtc-ice 0.21.1 in the crates.io index (https://index.crates.io/rt/c-/rtc-ice).
const SHA256: &str = "099984f1be120b2e5692f232f8cbb82e53f6b4261c5c2eeda5be6223ba1adaa9";
/// A path to `rtc-ice-0.21.1.crate`, for builds with no network and no cargo cache of it.
const CRATE_ENV: &str = "EDGEMEET_RTC_ICE_CRATE";

include!("../patched_crate.rs");
