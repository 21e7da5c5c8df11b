//! The recording journal: what lets a recording outlive the node that writes it.
//!
//! A file's multipart upload cannot be read back before it completes, and the media node holds
//! the file's first part (and its head) in memory until the end: a node killed mid-recording
//! leaves nothing playable. So while it records, the node also writes, per file, small
//! journal objects every few seconds (the clusters closed since the last one) and the file's
//! current head (unknown size, no duration), plus `pending.json` (meeting id, start, sealed
//! Dropbox token) at start and every [`PENDING_REFRESH`] as a sign of life. A finished recording
//! (manifest written) deletes its journal. A recording that has a journal but no manifest and
//! whose newest object is older than the uploader's `salvage_after` is salvaged by the uploader
//! ([`salvage`]): each file's head and chunks, in order, become the file; the node's unfinished
//! multipart uploads are aborted; the manifest is written with the token from `pending.json`; and
//! the usual delivery takes over. The journal lives under the recording's prefix, so the 24 h
//! purge removes it like everything else.
//!
//! ```text
//! {prefix}{id}/pending.json               written by the node at start, refreshed
//! {prefix}{id}/journal/{name}/head        the file's head, rewritten when its tracks change
//! {prefix}{id}/journal/{name}/{seq:08}    bytes that follow, in order
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use edgemeet_protocol::job::{SealedDropboxToken, UPLOADS_DIR, key_segments};
use serde::{Deserialize, Serialize};

use crate::clock::unix_ms;
use crate::error::Error;
use crate::store::{ObjectInfo, Store};
use crate::writer::{RecordingWriter, UploadMarker};

/// `{prefix}{id}/pending.json`.
pub const PENDING_FILE: &str = "pending.json";
/// `{prefix}{id}/journal/`.
pub const JOURNAL_DIR: &str = "journal/";
/// How often a recording node rewrites `pending.json` while it records (its sign of life).
pub const PENDING_REFRESH: Duration = Duration::from_secs(5);

/// `pending.json`: what a salvage needs to write the manifest the node never wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub v: u32,
    pub meeting_id: String,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropbox: Option<SealedDropboxToken>,
}

fn pending_key(store: &Store, id: &str) -> String {
    format!("{}{id}/{PENDING_FILE}", store.prefix())
}

/// Writes (or refreshes) a recording's `pending.json`.
pub async fn write_pending(
    store: &Store,
    id: &str,
    meeting_id: &str,
    started_at: SystemTime,
    dropbox: Option<&SealedDropboxToken>,
) -> Result<(), Error> {
    let p = Pending {
        v: 1,
        meeting_id: meeting_id.to_owned(),
        started_at_ms: unix_ms(started_at),
        dropbox: dropbox.cloned(),
    };
    let body = serde_json::to_vec(&p).expect("pending serializes");
    store
        .put_small(&pending_key(store, id), body, "application/json")
        .await
}

/// One file's journal, written by the node as the file grows.
pub struct JournalWriter {
    store: Store,
    dir: String,
    seq: u64,
}

impl JournalWriter {
    pub fn new(store: Store, recording_id: &str, name: &str) -> Self {
        let dir = format!("{}{recording_id}/{JOURNAL_DIR}{name}/", store.prefix());
        Self { store, dir, seq: 0 }
    }

    /// The file's head as it stands (written again when it changes).
    pub async fn put_head(&self, head: Vec<u8>) -> Result<(), Error> {
        let key = format!("{}head", self.dir);
        self.store
            .put_small(&key, head, "application/octet-stream")
            .await
    }

    /// The next bytes of the file.
    pub async fn append(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        let key = format!("{}{:08}", self.dir, self.seq);
        self.store
            .put_small(&key, bytes, "application/octet-stream")
            .await?;
        self.seq += 1;
        Ok(())
    }
}

/// The sealed token of recording `id`, from its `pending.json` (still recording, or its node
/// died and it is not salvaged yet) or its manifest (salvaged or finished, not yet delivered).
/// `Ok(None)`: neither is there, or it holds no token.
pub async fn sealed_token(store: &Store, id: &str) -> Result<Option<SealedDropboxToken>, Error> {
    if let Some(b) = store.get_small(&pending_key(store, id)).await?
        && let Ok(p) = serde_json::from_slice::<Pending>(&b)
    {
        return Ok(p.dropbox);
    }
    let manifest = format!(
        "{}{id}/{}",
        store.prefix(),
        edgemeet_protocol::job::MANIFEST_FILE
    );
    Ok(store
        .get_small(&manifest)
        .await?
        .and_then(|b| edgemeet_protocol::job::RecordingManifest::from_json(&b).ok())
        .and_then(|m| m.dropbox))
}

/// Deletes a finished recording's journal and `pending.json` (its manifest is written).
pub async fn clear(store: &Store, id: &str) -> Result<(), Error> {
    let dir = format!("{}{id}/{JOURNAL_DIR}", store.prefix());
    for o in store.list_under(&dir).await? {
        store.delete(&o.key).await?;
    }
    store.delete(&pending_key(store, id)).await
}

/// A journal's file: its head and its numbered chunks.
#[derive(Default)]
struct JournalFile {
    head: Option<String>,
    chunks: BTreeMap<u64, String>,
}

/// Whether `objects` (one recording's) hold a journal or `pending.json`, and the newest time
/// any of them was written.
pub(crate) fn journal_state(prefix: &str, id: &str, objects: &[ObjectInfo]) -> Option<SystemTime> {
    let own = format!("{prefix}{id}/");
    let journaled = objects.iter().any(|o| {
        o.key
            .strip_prefix(&own)
            .is_some_and(|t| t == PENDING_FILE || t.starts_with(JOURNAL_DIR))
    });
    journaled.then(|| {
        objects
            .iter()
            .map(|o| o.last_modified)
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    })
}

/// What a salvage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salvaged {
    /// A manifest with this many files is written: the recording is delivered as usual.
    Files(usize),
    /// Nothing playable was left: the recording is deleted.
    Nothing,
}

/// Turns the journal of a recording whose node died into finished files and a manifest.
pub async fn salvage(store: &Store, id: &str) -> Result<Salvaged, Error> {
    let own = format!("{}{id}/", store.prefix());
    let objects = store.list_under(&own).await?;
    // The node's own multipart uploads are dead: abort them (their parts go) before the
    // salvaged files take the same keys.
    let markers = format!("{own}{UPLOADS_DIR}");
    for o in objects.iter().filter(|o| o.key.starts_with(&markers)) {
        if let Some(body) = store.get_small(&o.key).await?
            && let Ok(m) = serde_json::from_slice::<UploadMarker>(&body)
            && m.key.starts_with(&own)
            && let Err(e) = store.abort_upload(&m.key, &m.upload_id).await
        {
            tracing::info!(recording = %id, error = %e, "multipart upload not aborted");
        }
        store.delete(&o.key).await?;
    }
    let pending: Option<Pending> = store
        .get_small(&pending_key(store, id))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let journal = format!("{own}{JOURNAL_DIR}");
    let mut files: BTreeMap<String, JournalFile> = BTreeMap::new();
    let mut ended = SystemTime::UNIX_EPOCH;
    for o in objects.iter() {
        let Some(tail) = o.key.strip_prefix(&journal) else {
            continue;
        };
        // `{name}/head` or `{name}/{seq}`, each a clean segment; anything else is ignored
        // (and purged with the rest).
        let Ok(segments) = key_segments(tail) else {
            continue;
        };
        let [name, part] = segments[..] else { continue };
        let f = files.entry(name.to_owned()).or_default();
        if part == "head" {
            f.head = Some(o.key.clone());
        } else if let Ok(n) = part.parse::<u64>() {
            f.chunks.insert(n, o.key.clone());
            ended = ended.max(o.last_modified);
        }
    }
    let mut done = 0;
    if let Some(p) = &pending {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(p.started_at_ms);
        let mut w = RecordingWriter::new(store.clone(), id, p.meeting_id.clone(), started);
        for (name, f) in &files {
            let Some(head) = &f.head else { continue };
            if f.chunks.is_empty() {
                continue;
            }
            let mut fw = w.create_file(name, "video/webm").await?;
            let mut bytes = store.get_small(head).await?.unwrap_or_default();
            for key in f.chunks.values() {
                if let Some(b) = store.get_small(key).await? {
                    bytes.extend_from_slice(&b);
                }
                // Memory stays about one part: write as it fills.
                if bytes.len() >= crate::writer::DEFAULT_PART_SIZE {
                    fw.write(&std::mem::take(&mut bytes)).await?;
                }
            }
            fw.write(&bytes).await?;
            let file = fw.finish().await?;
            tracing::info!(recording = %id, file = %file.name, size = file.size, "salvaged from the journal");
            w.add_file(file);
            done += 1;
        }
        if done > 0 {
            w.finish(ended.max(started), p.dropbox.clone()).await?;
        }
    }
    // The journal has served (or there was nothing playable): it goes, and `pending.json`
    // with the sealed token (the manifest holds it now, if anything is to be delivered).
    for o in objects.iter().filter(|o| o.key.starts_with(&journal)) {
        store.delete(&o.key).await?;
    }
    store.delete(&pending_key(store, id)).await?;
    if done == 0 {
        // Like a recording stopped with no media: its status link goes too.
        let status = format!("{own}{}", edgemeet_protocol::job::STATUS_FILE);
        store.delete(&status).await?;
    }
    Ok(if done > 0 {
        Salvaged::Files(done)
    } else {
        Salvaged::Nothing
    })
}
