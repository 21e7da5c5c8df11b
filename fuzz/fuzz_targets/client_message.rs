#![no_main]
//! Browser -> edge text frames, read by `parse_client` exactly as the room does for every frame.
//! Whatever it accepts must come back unchanged through `to_wire` (what a browser sends).

use edgemeet_protocol::parse_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(msg) = parse_client(text) {
        let wire = msg.to_wire();
        match parse_client(&wire) {
            Ok(again) => assert_eq!(again, msg, "{wire}"),
            Err(e) => panic!("accepted {text:?} but refused its own encoding {wire}: {e:?}"),
        }
    }
});
