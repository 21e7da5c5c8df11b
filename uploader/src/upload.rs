//! Uploading one recording's files to Dropbox through upload sessions, resumably.
//!
//! Every acknowledged step is written to `progress.json` in the bucket before the next one, so a
//! restarted uploader continues the same session; an offset the server moved past (the response
//! was lost) is corrected from `incorrect_offset`'s `correct_offset`.

use std::time::SystemTime;

use edgemeet_protocol::job::{RecordingFile, RecordingManifest, UploadProgress};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::dropbox::{Attempts, DropboxClient, DropboxError, Token};
use crate::error::Error;
use crate::job::dropbox_path;
use crate::metrics::Metrics;
use crate::store::Store;

/// What one recording's upload needs from the worker.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub metrics: &'a Metrics,
    /// The recording's retention ends here: stop uploading, the purge takes over.
    pub deadline: SystemTime,
    pub shutdown: watch::Receiver<bool>,
    pub progress_key: String,
}

impl Ctx<'_> {
    pub fn check(&self) -> Result<(), Error> {
        if *self.shutdown.borrow() {
            return Err(Error::Shutdown);
        }
        if self.clock.now() >= self.deadline {
            return Err(Error::RetentionPassed);
        }
        Ok(())
    }

    pub async fn save(&self, progress: &UploadProgress) -> Result<(), Error> {
        let body = serde_json::to_vec(progress).expect("progress serializes");
        self.store
            .put_small(&self.progress_key, body, "application/json")
            .await
    }
}

/// Uploads every file not yet done.
pub(crate) async fn upload_recording(
    ctx: &Ctx<'_>,
    dbx: &DropboxClient,
    root: &str,
    chunk_size: u64,
    manifest: &RecordingManifest,
    token: &mut Token,
    progress: &mut UploadProgress,
) -> Result<(), Error> {
    for (i, file) in manifest.files.iter().enumerate() {
        if progress.files[i].done_path.is_some() {
            continue;
        }
        let path = dropbox_path(root, manifest, file);
        upload_file(ctx, dbx, chunk_size, file, &path, token, progress, i).await?;
        ctx.metrics
            .files_uploaded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn upload_file(
    ctx: &Ctx<'_>,
    dbx: &DropboxClient,
    chunk_size: u64,
    file: &RecordingFile,
    path: &str,
    token: &mut Token,
    progress: &mut UploadProgress,
    i: usize,
) -> Result<(), Error> {
    let size = file.size;
    let mut attempts = Attempts::default();
    loop {
        ctx.check()?;
        let p = &progress.files[i];
        if p.done_path.is_some() {
            return Ok(());
        }
        let Some(session_id) = p.session_id.clone() else {
            match dbx.start_session(token).await {
                Ok(id) => {
                    let p = &mut progress.files[i];
                    p.session_id = Some(id);
                    p.offset = 0;
                    p.finishing = false;
                    ctx.save(progress).await?;
                    tracing::debug!(file = %file.name, "upload session started");
                }
                Err(e) => dbx.recover(e, token, &mut attempts).await?,
            }
            continue;
        };
        let offset = p.offset;
        if offset < size {
            let len = chunk_size.min(size - offset);
            let close = offset + len == size;
            let stream = ctx.store.get_range(&file.key, offset, offset + len).await?;
            let result = dbx
                .append(
                    token,
                    &session_id,
                    offset,
                    reqwest::Body::wrap_stream(stream),
                    len,
                    close,
                )
                .await;
            match result {
                Ok(()) => {
                    progress.files[i].offset = offset + len;
                    ctx.metrics
                        .bytes_uploaded
                        .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                    ctx.save(progress).await?;
                    attempts = Attempts::default();
                    tracing::info!(file = %file.name, offset = offset + len, size, "chunk uploaded");
                }
                Err(e) => {
                    on_session_error(ctx, dbx, e, file, token, progress, i, &mut attempts).await?
                }
            }
        } else {
            if !progress.files[i].finishing {
                progress.files[i].finishing = true;
                ctx.save(progress).await?;
            }
            match dbx.finish(token, &session_id, size, path).await {
                Ok(meta) => {
                    progress.files[i].done_path = Some(meta.path_display.clone());
                    ctx.save(progress).await?;
                    tracing::info!(file = %file.name, dest = %meta.path_display, size, "file committed");
                }
                Err(e) if e.summary_starts_with("lookup_failed/not_found") => {
                    // The session is gone: either our earlier finish went through (its response was
                    // lost) or the session expired. Look before uploading again, so no duplicate.
                    let existing = loop {
                        match dbx.get_metadata(token, path).await {
                            Ok(m) => break m,
                            Err(e) => dbx.recover(e, token, &mut attempts).await?,
                        }
                    };
                    let p = &mut progress.files[i];
                    match existing {
                        Some(m) if m.size == size => {
                            tracing::info!(file = %file.name, "file was already committed before a restart");
                            p.done_path = Some(m.path_display);
                        }
                        _ => {
                            tracing::warn!(file = %file.name, "upload session expired, starting over");
                            p.session_id = None;
                            p.offset = 0;
                            p.finishing = false;
                        }
                    }
                    ctx.save(progress).await?;
                }
                Err(e) => {
                    on_session_error(ctx, dbx, e, file, token, progress, i, &mut attempts).await?
                }
            }
        }
    }
}

/// Session errors that move the cursor; everything else goes to `recover`.
#[allow(clippy::too_many_arguments)]
async fn on_session_error(
    ctx: &Ctx<'_>,
    dbx: &DropboxClient,
    e: DropboxError,
    file: &RecordingFile,
    token: &mut Token,
    progress: &mut UploadProgress,
    i: usize,
    attempts: &mut Attempts,
) -> Result<(), Error> {
    let p = &mut progress.files[i];
    if let Some(correct) = e.correct_offset() {
        if correct > file.size {
            return Err(e.into());
        }
        tracing::info!(file = %file.name, from = p.offset, to = correct, "resuming at the server's offset");
        p.offset = correct;
        p.finishing = false;
    } else if e.summary_starts_with("closed") {
        // Only the final append closes: all bytes are in.
        p.offset = file.size;
    } else if e.summary_starts_with("not_found") || e.summary_starts_with("lookup_failed/not_found")
    {
        tracing::warn!(file = %file.name, "upload session not found, starting over");
        p.session_id = None;
        p.offset = 0;
        p.finishing = false;
    } else {
        return Ok(dbx.recover(e, token, attempts).await?);
    }
    ctx.save(progress).await
}
