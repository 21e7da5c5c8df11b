//! Grouping the bucket by recording, and deleting a recording: its objects, and its multipart
//! uploads still in progress (a node that died mid-recording leaves those, parts and all).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use edgemeet_protocol::job::{
    FILES_DIR, MANIFEST_FILE, PROGRESS_FILE, STATUS_FILE, UPLOADS_DIR, key_within,
};

use crate::store::{ObjectInfo, Store, UploadInfo};
use crate::writer::UploadMarker;

/// Every object (and listed multipart upload) of one recording prefix (`{prefix}{id}/...`), or
/// one loose object.
#[derive(Debug, Default, Clone)]
pub(crate) struct Group {
    pub objects: Vec<ObjectInfo>,
    pub manifest_key: Option<String>,
    pub progress_key: Option<String>,
    pub status_key: Option<String>,
    /// Listed multipart uploads (servers with `ListMultipartUploads`).
    pub uploads: Vec<UploadInfo>,
}

/// What to keep when deleting a delivered recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Nothing,
    /// The status stays (it says "delivered") until the retention ends.
    Status,
}

impl Group {
    /// The earliest time known from storage alone.
    pub fn oldest(&self) -> SystemTime {
        self.objects
            .iter()
            .map(|o| o.last_modified)
            .chain(self.uploads.iter().map(|u| u.initiated))
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// True if only the uploader's own files are left, the progress file among them (a crash
    /// between the deletes after a delivery).
    pub fn only_progress(&self) -> bool {
        self.manifest_key.is_none()
            && self.progress_key.is_some()
            && self.uploads.is_empty()
            && self.objects.iter().all(|o| {
                Some(&o.key) == self.progress_key.as_ref()
                    || Some(&o.key) == self.status_key.as_ref()
            })
    }
}

/// Groups listed objects and uploads by recording id (the first path segment after the prefix).
pub(crate) fn group(
    prefix: &str,
    objects: Vec<ObjectInfo>,
    uploads: Vec<UploadInfo>,
) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let id_of = |key: &str| -> (String, String) {
        let rest = key.strip_prefix(prefix).unwrap_or(key);
        match rest.split_once('/') {
            Some((id, tail)) => (id.to_owned(), tail.to_owned()),
            None => (rest.to_owned(), String::new()),
        }
    };
    for o in objects {
        let (id, tail) = id_of(&o.key);
        let g = groups.entry(id).or_default();
        match tail.as_str() {
            MANIFEST_FILE => g.manifest_key = Some(o.key.clone()),
            PROGRESS_FILE => g.progress_key = Some(o.key.clone()),
            STATUS_FILE => g.status_key = Some(o.key.clone()),
            _ => {}
        }
        g.objects.push(o);
    }
    for u in uploads {
        let (id, _) = id_of(&u.key);
        groups.entry(id).or_default().uploads.push(u);
    }
    groups
}

/// Whether a recording whose earliest known time is `since` is past retention at `now`.
pub(crate) fn expired(since: SystemTime, now: SystemTime, retention: Duration) -> bool {
    now.duration_since(since)
        .map(|age| age >= retention)
        .unwrap_or(false)
}

/// Deletes a recording: aborts its multipart uploads (listed, and named by the writer's markers,
/// which must point into the recording's own `files/`), then deletes media, markers, manifest
/// (and so the sealed token), progress and, unless kept, status. Returns the objects deleted.
pub(crate) async fn delete_group(
    store: &Store,
    id: &str,
    g: &Group,
    keep: Keep,
) -> Result<u64, crate::Error> {
    let markers_dir = format!("{}{id}/{UPLOADS_DIR}", store.prefix());
    // An abort that fails must not keep the rest from going: servers answer a finished upload
    // differently (AWS `NoSuchUpload`, s3s-fs `AccessDenied`), and the lifecycle rule is a
    // second guard for parts.
    for u in &g.uploads {
        if let Err(e) = store.abort_upload(&u.key, &u.upload_id).await {
            tracing::warn!(recording = %id, error = %e, "multipart upload not aborted");
        }
    }
    for o in g.objects.iter().filter(|o| o.key.starts_with(&markers_dir)) {
        let Some(body) = store.get_small(&o.key).await? else {
            continue;
        };
        match serde_json::from_slice::<UploadMarker>(&body) {
            Ok(m) if key_within(&m.key, store.prefix(), id, FILES_DIR).is_ok() => {
                match store.abort_upload(&m.key, &m.upload_id).await {
                    Ok(()) => tracing::info!(recording = %id, "multipart upload aborted"),
                    Err(e) => {
                        tracing::info!(recording = %id, error = %e, "multipart upload not aborted (finished already?)")
                    }
                }
            }
            _ => tracing::warn!(recording = %id, "malformed upload marker; deleted"),
        }
    }
    let mut n = 0;
    // Media first, then manifest, progress and status last: a crash midway leaves a
    // recognizable leftover.
    let mut keys: Vec<&str> = g
        .objects
        .iter()
        .map(|o| o.key.as_str())
        .filter(|k| !(keep == Keep::Status && Some(*k) == g.status_key.as_deref()))
        .collect();
    keys.sort_by_key(|k| {
        (
            Some(*k) == g.manifest_key.as_deref(),
            Some(*k) == g.progress_key.as_deref(),
            Some(*k) == g.status_key.as_deref(),
        )
    });
    for k in keys {
        store.delete(k).await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, secs_ago: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: 1,
            last_modified: SystemTime::now() - Duration::from_secs(secs_ago),
        }
    }

    #[test]
    fn groups_by_recording() {
        let g = group(
            "recordings/",
            vec![
                obj("recordings/a/files/x.webm", 10),
                obj("recordings/a/manifest.json", 5),
                obj("recordings/b/progress.json", 1),
                obj("recordings/b/status.json", 1),
                obj("recordings/c/status.json", 1),
                obj("recordings/loose", 1),
            ],
            vec![UploadInfo {
                key: "recordings/d/files/y.webm".into(),
                upload_id: "u".into(),
                initiated: SystemTime::now() - Duration::from_secs(100),
            }],
        );
        assert_eq!(g.len(), 5);
        assert_eq!(
            g["a"].manifest_key.as_deref(),
            Some("recordings/a/manifest.json")
        );
        assert!(g["b"].only_progress());
        assert!(!g["c"].only_progress() && g["c"].status_key.is_some());
        assert!(g["a"].oldest() < g["b"].oldest());
        // A listed upload alone makes a group, dated by its start.
        assert!(g["d"].oldest() < g["a"].oldest());
    }

    #[test]
    fn retention() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86400);
        assert!(!expired(now - Duration::from_secs(3600), now, day));
        assert!(expired(now - day, now, day));
        assert!(!expired(now + day, now, day));
    }
}
