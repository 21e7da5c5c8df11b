//! Grouping the bucket by recording, and the retention sweep.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use edgemeet_protocol::job::{MANIFEST_FILE, PROGRESS_FILE};

use crate::store::{ObjectInfo, Store};

/// Every object of one recording prefix (`{prefix}{id}/...`), or one loose object.
#[derive(Debug, Default)]
pub(crate) struct Group {
    pub objects: Vec<ObjectInfo>,
    pub manifest_key: Option<String>,
    pub progress_key: Option<String>,
}

impl Group {
    pub fn oldest(&self) -> SystemTime {
        self.objects
            .iter()
            .map(|o| o.last_modified)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// True if only the uploader's own progress file is left (a crash between deletes).
    pub fn only_progress(&self) -> bool {
        self.manifest_key.is_none() && self.progress_key.is_some() && self.objects.len() == 1
    }
}

/// Groups listed objects by recording id (the first path segment after the prefix).
pub(crate) fn group(prefix: &str, objects: Vec<ObjectInfo>) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for o in objects {
        let rest = o.key.strip_prefix(prefix).unwrap_or(&o.key);
        let (id, tail) = match rest.split_once('/') {
            Some((id, tail)) => (id.to_owned(), tail.to_owned()),
            None => (rest.to_owned(), String::new()),
        };
        let g = groups.entry(id).or_default();
        if tail == MANIFEST_FILE {
            g.manifest_key = Some(o.key.clone());
        } else if tail == PROGRESS_FILE {
            g.progress_key = Some(o.key.clone());
        }
        g.objects.push(o);
    }
    groups
}

/// Whether a recording whose earliest known time is `since` is past retention at `now`.
pub(crate) fn expired(since: SystemTime, now: SystemTime, retention: Duration) -> bool {
    now.duration_since(since)
        .map(|age| age >= retention)
        .unwrap_or(false)
}

/// Deletes every object of a group, the manifest (and so the sealed token) included. Returns how
/// many objects were deleted.
pub(crate) async fn delete_group(store: &Store, g: &Group) -> Result<u64, crate::Error> {
    let mut n = 0;
    // Media first, manifest and progress last: a crash midway leaves a recognizable leftover.
    let mut keys: Vec<&str> = g.objects.iter().map(|o| o.key.as_str()).collect();
    keys.sort_by_key(|k| {
        (
            Some(*k) == g.manifest_key.as_deref(),
            Some(*k) == g.progress_key.as_deref(),
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
                obj("recordings/loose", 1),
            ],
        );
        assert_eq!(g.len(), 3);
        assert_eq!(
            g["a"].manifest_key.as_deref(),
            Some("recordings/a/manifest.json")
        );
        assert!(g["b"].only_progress());
        assert!(g["a"].oldest() < g["b"].oldest());
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
