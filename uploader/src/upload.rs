//! Uploading one recording's files to Dropbox through upload sessions, resumably and checked.
//!
//! Every acknowledged step is written to `progress.json` in the bucket before the next one, so a
//! restarted uploader continues the same session; an offset the server moved past (the response
//! was lost) is corrected from `incorrect_offset`'s `correct_offset`.
//!
//! What reaches Dropbox is checked: the object's size must be the manifest's before anything is
//! sent, the bytes are hashed as they stream (Dropbox's `content_hash`, 4 MiB blocks), and the
//! committed file must have that size and hash. The commit path is chosen free beforehand and
//! recorded, so a `finish` whose answer was lost is resolved by looking at that one path.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use edgemeet_protocol::job::{FileProgress, RecordingFile, RecordingManifest, UploadProgress};
use tokio::sync::watch;

use crate::clock::{Clock, utc_date};
use crate::content_hash::{BLOCK, blocks_covering, content_hash, hash_from_store, tee};
use crate::dropbox::{Attempts, DropboxClient, DropboxError, FileMeta, Token};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::store::Store;

/// What one recording's delivery needs from the worker.
pub(crate) struct Ctx {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The recording's retention ends here: stop uploading, the purge takes over.
    pub deadline: SystemTime,
    pub shutdown: watch::Receiver<bool>,
    pub progress_key: String,
}

impl Ctx {
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

    /// The object must be exactly as long as the manifest says: a shorter manifest would deliver
    /// a truncated file and then delete the rest from storage.
    pub async fn check_object(&self, file: &RecordingFile) -> Result<(), Error> {
        match self.store.size_of(&file.key).await? {
            Some(n) if n == file.size => Ok(()),
            Some(n) => Err(Error::StorageMismatch(format!(
                "{}: the manifest says {} bytes, storage holds {n}",
                file.name, file.size
            ))),
            None => Err(Error::StorageMismatch(format!(
                "{}: not in storage",
                file.name
            ))),
        }
    }
}

/// Gives `progress` exactly one entry per manifest file, in manifest order, keeping recorded state.
pub(crate) fn align_progress(manifest: &RecordingManifest, progress: &mut UploadProgress) {
    let mut old = std::mem::take(&mut progress.files);
    for f in &manifest.files {
        let entry = match old.iter().position(|p| p.name == f.name) {
            Some(i) => old.swap_remove(i),
            None => FileProgress::new(f.name.clone()),
        };
        progress.files.push(entry);
    }
}

/// Destination path of a file: `{root}/{YYYY-MM-DD}/{name}`, dated by the recording's start.
pub(crate) fn dropbox_path(
    root: &str,
    manifest: &RecordingManifest,
    file: &RecordingFile,
) -> String {
    format!("{root}/{}/{}", utc_date(manifest.started_at_ms), file.name)
}

/// `a.webm` -> `a (n).webm` (Dropbox's autorename shape), for `n` >= 1.
pub(crate) fn numbered(name: &str, n: u32) -> String {
    let (dir, base) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    format!("{dir}{stem} ({n}){ext}")
}

/// Uploads every file not yet done.
pub(crate) async fn upload_recording(
    ctx: &Ctx,
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
        ctx.check_object(file).await?;
        let path = dropbox_path(root, manifest, file);
        upload_file(ctx, dbx, chunk_size, file, &path, token, progress, i).await?;
        ctx.metrics.files_uploaded.fetch_add(1, Relaxed);
    }
    Ok(())
}

/// Forgets a file's session: the next step starts a new one from byte 0.
fn restart(p: &mut FileProgress) {
    p.session_id = None;
    p.offset = 0;
    p.finishing = false;
    p.commit_path = None;
    p.block_hashes.clear();
}

/// Makes the block digests cover exactly the acknowledged bytes, hashing from storage what is
/// missing. `false` if the offset is not on a block boundary (then the file must start over).
async fn cover_hashes(
    ctx: &Ctx,
    file: &RecordingFile,
    p: &mut FileProgress,
) -> Result<bool, Error> {
    if p.offset < file.size && !p.offset.is_multiple_of(BLOCK) {
        return Ok(false);
    }
    let want = blocks_covering(p.offset, file.size);
    p.block_hashes.truncate(want);
    let have = p.block_hashes.len();
    if have < want {
        let start = have as u64 * BLOCK;
        let end = (want as u64 * BLOCK).min(file.size);
        tracing::info!(file = %file.name, from = start, to = end, "hashing bytes Dropbox took unacknowledged");
        let more = hash_from_store(&ctx.store, &file.key, start, end).await?;
        p.block_hashes.extend(more);
    }
    Ok(p.block_hashes.len() == want)
}

enum Chosen {
    Free(String),
    /// The very file (size and content hash) is already there.
    AlreadyThere(FileMeta),
}

/// The first free name among `path`, `path (1)`, ... (Dropbox's autorename shape, chosen by us
/// so the commit goes to a known path).
async fn choose_path(
    dbx: &DropboxClient,
    token: &mut Token,
    path: &str,
    size: u64,
    hash: &str,
    attempts: &mut Attempts,
) -> Result<Chosen, Error> {
    for n in 0..1000 {
        let candidate = if n == 0 {
            path.to_owned()
        } else {
            numbered(path, n)
        };
        let meta = metadata(dbx, token, &candidate, attempts).await?;
        match meta {
            None => return Ok(Chosen::Free(candidate)),
            Some(m) if m.holds(size, hash) => return Ok(Chosen::AlreadyThere(m)),
            Some(_) => {}
        }
    }
    Err(Error::Dropbox(DropboxError::Transport(
        "no free file name after 1000 tries".into(),
    )))
}

async fn metadata(
    dbx: &DropboxClient,
    token: &mut Token,
    path: &str,
    attempts: &mut Attempts,
) -> Result<Option<FileMeta>, Error> {
    loop {
        match dbx.get_metadata(token, path).await {
            Ok(m) => return Ok(m),
            Err(e) => dbx.recover(e, token, attempts).await?,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_file(
    ctx: &Ctx,
    dbx: &DropboxClient,
    chunk_size: u64,
    file: &RecordingFile,
    default_path: &str,
    token: &mut Token,
    progress: &mut UploadProgress,
    i: usize,
) -> Result<(), Error> {
    let size = file.size;
    let mut attempts = Attempts::default();
    loop {
        ctx.check()?;
        if progress.files[i].done_path.is_some() {
            return Ok(());
        }
        let Some(session_id) = progress.files[i].session_id.clone() else {
            match dbx.start_session(token).await {
                Ok(id) => {
                    let p = &mut progress.files[i];
                    restart(p);
                    p.session_id = Some(id);
                    ctx.save(progress).await?;
                    tracing::debug!(file = %file.name, "upload session started");
                }
                Err(e) => dbx.recover(e, token, &mut attempts).await?,
            }
            continue;
        };
        if !cover_hashes(ctx, file, &mut progress.files[i]).await? {
            tracing::warn!(file = %file.name, "offset off a 4 MiB boundary; starting the file over");
            restart(&mut progress.files[i]);
            ctx.save(progress).await?;
            continue;
        }
        let offset = progress.files[i].offset;
        if offset < size {
            let len = chunk_size.min(size - offset);
            let close = offset + len == size;
            let stream = ctx.store.get_range(&file.key, offset, offset + len).await?;
            // Every byte sent counts, resent ones included; digests are kept once acknowledged.
            let metrics = ctx.metrics.clone();
            let (body, mut digests) = tee(stream, len, move |n| {
                metrics.bytes_uploaded.fetch_add(n, Relaxed);
            });
            // Trace: one line per append call (where a stalled upload stands, at the finest level).
            tracing::trace!(file = %file.name, offset, len, close, "appending to the upload session");
            let result = dbx
                .append(
                    token,
                    &session_id,
                    offset,
                    reqwest::Body::wrap_stream(body),
                    len,
                    close,
                )
                .await;
            match result {
                Ok(()) => {
                    let p = &mut progress.files[i];
                    p.offset = offset + len;
                    // Missing digests (should not happen) are read back from storage next step.
                    if let Ok(blocks) = digests.try_recv() {
                        p.block_hashes.extend(blocks);
                    }
                    ctx.save(progress).await?;
                    attempts = Attempts::default();
                    tracing::info!(file = %file.name, offset = offset + len, size, "chunk uploaded");
                }
                Err(e) => {
                    on_session_error(ctx, dbx, e, file, token, progress, i, &mut attempts).await?
                }
            }
            continue;
        }

        // All bytes are in the session: commit at a known free path, then check what Dropbox holds.
        let Some(expected) = content_hash(&progress.files[i].block_hashes) else {
            restart(&mut progress.files[i]);
            ctx.save(progress).await?;
            continue;
        };
        if progress.files[i].commit_path.is_none() {
            if progress.files[i].finishing {
                // Progress from before commit paths were recorded: finish went to the dated path.
                progress.files[i].commit_path = Some(default_path.to_owned());
            } else {
                match choose_path(dbx, token, default_path, size, &expected, &mut attempts).await? {
                    Chosen::Free(path) => progress.files[i].commit_path = Some(path),
                    Chosen::AlreadyThere(meta) => {
                        tracing::info!(file = %file.name, "identical file already at the destination");
                        progress.files[i].done_path = Some(meta.path_display);
                        ctx.save(progress).await?;
                        return Ok(());
                    }
                }
            }
        }
        let path = progress.files[i].commit_path.clone().expect("set above");
        if !progress.files[i].finishing {
            progress.files[i].finishing = true;
        }
        ctx.save(progress).await?;
        match dbx.finish(token, &session_id, size, &path).await {
            Ok(meta) if meta.holds(size, &expected) => {
                progress.files[i].done_path = Some(meta.path_display.clone());
                ctx.save(progress).await?;
                tracing::info!(file = %file.name, size, "file committed and checked");
            }
            Ok(meta) => {
                // Dropbox holds something other than what was sent: an error, never "done".
                restart(&mut progress.files[i]);
                ctx.save(progress).await?;
                return Err(Error::DeliveryMismatch(format!(
                    "{}: Dropbox holds {} bytes (content hash {}), sent {size} ({expected})",
                    file.name,
                    meta.size,
                    meta.content_hash.as_deref().unwrap_or("none"),
                )));
            }
            Err(e)
                if e.summary_starts_with("lookup_failed/closed")
                    || e.summary_starts_with("lookup_failed/not_found") =>
            {
                // Committed earlier (its answer lost), or the session is gone: the path says which.
                let existing = metadata(dbx, token, &path, &mut attempts).await?;
                let p = &mut progress.files[i];
                match existing {
                    Some(m) if m.holds(size, &expected) => {
                        tracing::info!(file = %file.name, "file was committed; its answer had been lost");
                        p.done_path = Some(m.path_display);
                    }
                    _ => {
                        tracing::warn!(file = %file.name, "upload session gone and file not there; starting over");
                        restart(p);
                    }
                }
                ctx.save(progress).await?;
            }
            Err(e) if e.summary_starts_with("path/conflict") => {
                // Taken since we looked: Dropbox keeps the session, pick another name.
                let p = &mut progress.files[i];
                p.commit_path = None;
                p.finishing = false;
                ctx.save(progress).await?;
            }
            Err(e) => {
                on_session_error(ctx, dbx, e, file, token, progress, i, &mut attempts).await?
            }
        }
    }
}

/// Session errors that move the cursor; everything else goes to `recover`.
#[allow(clippy::too_many_arguments)]
async fn on_session_error(
    ctx: &Ctx,
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
    } else if e.summary_starts_with("not_found") {
        tracing::warn!(file = %file.name, "upload session not found, starting over");
        restart(p);
    } else {
        return Ok(dbx.recover(e, token, attempts).await?);
    }
    ctx.save(progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(
            numbered("/r/2026-01-01/a.webm", 1),
            "/r/2026-01-01/a (1).webm"
        );
        assert_eq!(numbered("/r/x", 2), "/r/x (2)");
        assert_eq!(numbered("/r/.hidden", 3), "/r/.hidden (3)");
    }
}
