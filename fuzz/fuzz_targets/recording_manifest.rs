#![no_main]
//! Recording manifests and the resume state beside them, read from the bucket as the uploader
//! reads them: `RecordingManifest::from_json`, then `job::check_place` against the prefix it was
//! found under, `job::read_progress` on whatever `progress.json` holds, the sealed Dropbox grant
//! opened (`TokenKey::open`) and each file's destination path (`job::dropbox_path`).

use edgemeet_protocol::job::RecordingManifest;
use edgemeet_uploader::TokenKey;
use edgemeet_uploader::job::{check_place, dropbox_path, read_progress};
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "recordings/";
const ROOT: &str = "/edgemeet";

/// What the uploader found: the manifest, then (after a NUL byte, which JSON never holds) the
/// stored `progress.json`, then (after another) the recording id the listing grouped it under.
/// Plain files, so seeds are too (fuzz/seeds/recording_manifest).
fn split(data: &[u8]) -> (&[u8], Option<&[u8]>, Option<&str>) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let manifest = parts.next().unwrap_or_default();
    let progress = parts.next();
    let listed_as = parts.next().and_then(|b| std::str::from_utf8(b).ok());
    (manifest, progress, listed_as)
}

fuzz_target!(|data: &[u8]| {
    let (manifest, stored_progress, listed_as) = split(data);
    let Ok(m) = RecordingManifest::from_json(manifest) else {
        return;
    };
    // What was accepted is valid, and reads back the same when the node writes it again.
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(RecordingManifest::from_json(&m.to_json()), Ok(m.clone()));

    let id = listed_as.unwrap_or(&m.recording_id);
    let Ok(own) = check_place(PREFIX, id, &m) else {
        return;
    };
    assert!(m.files.iter().all(|f| f.key.starts_with(&own)));

    let progress = read_progress(&m, stored_progress);
    assert_eq!(progress.files.len(), m.files.len());
    for (p, f) in progress.files.iter().zip(&m.files) {
        assert_eq!(p.name, f.name);
        // One dated folder under the root, then the file: a name never climbs out.
        let path = dropbox_path(ROOT, &m, f);
        let rest = path.strip_prefix(ROOT).expect("under the root");
        assert_eq!(rest.matches('/').count(), 2, "{path}");
    }

    let key = TokenKey::from_bytes(&[7; 32]).unwrap();
    let _ = key.open(&m);
});
