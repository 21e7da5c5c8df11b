//! The local-folder destination (all-in-one server): `{folder}/{YYYY-MM-DD}/{file}`.

use std::path::{Path, PathBuf};

use edgemeet_protocol::job::{RecordingManifest, UploadProgress};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::clock::utc_date;
use crate::error::Error;
use crate::upload::Ctx;

/// First free name: `a.webm`, `a (1).webm`, `a (2).webm`, ... (Dropbox's autorename shape).
pub fn free_name(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let mut candidate = dir.join(name);
    let mut n = 1;
    while candidate.exists() {
        candidate = dir.join(format!("{stem} ({n}){ext}"));
        n += 1;
    }
    candidate
}

/// Copies every file not yet done, streaming from storage to a temporary file, then renaming.
pub(crate) async fn copy_recording(
    ctx: &Ctx,
    folder: &Path,
    manifest: &RecordingManifest,
    progress: &mut UploadProgress,
) -> Result<(), Error> {
    let dir = folder.join(utc_date(manifest.started_at_ms));
    tokio::fs::create_dir_all(&dir).await?;
    for (i, file) in manifest.files.iter().enumerate() {
        if progress.files[i].done_path.is_some() {
            continue;
        }
        ctx.check()?;
        ctx.check_object(file).await?;
        let tmp = dir.join(format!(".{}.{}.part", manifest.recording_id, file.name));
        let mut out = tokio::fs::File::create(&tmp).await?;
        if file.size > 0 {
            let mut stream = std::pin::pin!(ctx.store.get_range(&file.key, 0, file.size).await?);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                out.write_all(&chunk).await?;
                ctx.metrics
                    .bytes_uploaded
                    .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        out.sync_all().await?;
        drop(out);
        let written = tokio::fs::metadata(&tmp).await?.len();
        if written != file.size {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::Storage(format!(
                "{}: read {written} bytes, manifest says {}",
                file.name, file.size
            )));
        }
        let dest = free_name(&dir, &file.name);
        tokio::fs::rename(&tmp, &dest).await?;
        progress.files[i].offset = file.size;
        progress.files[i].done_path = Some(dest.display().to_string());
        ctx.save(progress).await?;
        ctx.metrics
            .files_uploaded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(file = %file.name, dest = %dest.display(), "file copied to the local folder");
    }
    Ok(())
}
