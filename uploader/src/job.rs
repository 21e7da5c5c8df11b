//! How the uploader reads a recording it found in the bucket: the manifest (parsed and validated
//! by [`RecordingManifest::from_json`]), checked against its place in the bucket, and the resume
//! state stored beside it. Both are bytes from storage, which a node, a crash or anyone with
//! write access to the bucket may have left in any shape: each reader here refuses or repairs,
//! never panics (the fuzz target `recording_manifest` calls them as the worker does).

use edgemeet_protocol::job::{
    FileProgress, ManifestError, RecordingFile, RecordingManifest, UploadProgress,
};

use crate::clock::utc_date;

/// The manifest found under `{prefix}{id}/` may only name its own recording and point inside
/// its own prefix: no uploading, then deleting, someone else's objects. Returns that prefix.
pub fn check_place(
    prefix: &str,
    id: &str,
    manifest: &RecordingManifest,
) -> Result<String, ManifestError> {
    let own = format!("{prefix}{id}/");
    if manifest.recording_id != id || manifest.files.iter().any(|f| !f.key.starts_with(&own)) {
        return Err(ManifestError::Field("files.key"));
    }
    Ok(own)
}

/// The resume state for `manifest` from the stored `progress.json`, if any: unreadable state is
/// started over, and the result has exactly one entry per manifest file.
pub fn read_progress(manifest: &RecordingManifest, stored: Option<&[u8]>) -> UploadProgress {
    let mut progress: UploadProgress = stored
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    align_progress(manifest, &mut progress);
    progress
}

/// Gives `progress` exactly one entry per manifest file, in manifest order, keeping recorded state.
fn align_progress(manifest: &RecordingManifest, progress: &mut UploadProgress) {
    let mut old = std::mem::take(&mut progress.files);
    for f in &manifest.files {
        let entry = match old.iter().position(|p| p.name == f.name) {
            Some(i) => old.swap_remove(i),
            None => FileProgress {
                name: f.name.clone(),
                session_id: None,
                offset: 0,
                finishing: false,
                done_path: None,
            },
        };
        progress.files.push(entry);
    }
}

/// Destination path of a file: `{root}/{YYYY-MM-DD}/{name}`, dated by the recording's start.
pub fn dropbox_path(root: &str, manifest: &RecordingManifest, file: &RecordingFile) -> String {
    format!("{root}/{}/{}", utc_date(manifest.started_at_ms), file.name)
}
