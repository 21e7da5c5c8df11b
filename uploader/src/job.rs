//! How the uploader reads a recording it found in the bucket: the manifest (parsed and validated
//! by [`RecordingManifest::from_json`]), checked against its place in the bucket, and the resume
//! state stored beside it. Both are bytes from storage, which a node, a crash or anyone with
//! write access to the bucket may have left in any shape: each reader here refuses or repairs,
//! never panics (the fuzz target `recording_manifest` calls them as the worker does).

use edgemeet_protocol::job::{ManifestError, RecordingFile, RecordingManifest, UploadProgress};

/// The manifest found under `{prefix}{id}/` may only name its own recording, and its files only
/// keys inside that recording's `files/` (parsed, not prefix-matched: no `..`, no absolute key,
/// no other bucket): no uploading, then deleting, someone else's objects. Returns the prefix.
pub fn check_place(
    prefix: &str,
    id: &str,
    manifest: &RecordingManifest,
) -> Result<String, ManifestError> {
    if manifest.recording_id != id {
        return Err(ManifestError::Field("recording_id"));
    }
    manifest.check_keys(prefix)?;
    Ok(format!("{prefix}{id}/"))
}

/// The resume state for `manifest` from the stored `progress.json`, if any: unreadable state is
/// started over, and the result has exactly one entry per manifest file.
pub fn read_progress(manifest: &RecordingManifest, stored: Option<&[u8]>) -> UploadProgress {
    let mut progress: UploadProgress = stored
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    crate::upload::align_progress(manifest, &mut progress);
    progress
}

/// Destination path of a file: `{root}/{YYYY-MM-DD}/{name}`, dated by the recording's start.
pub fn dropbox_path(root: &str, manifest: &RecordingManifest, file: &RecordingFile) -> String {
    crate::upload::dropbox_path(root, manifest, file)
}
