//! Dropbox's `content_hash`: SHA-256 of the concatenated SHA-256 digests of each 4 MiB block.
//! The uploader hashes the bytes it streams from storage block by block, keeps the block digests
//! in `progress.json`, and compares the result with what Dropbox reports for the committed file.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::store::Store;

/// Dropbox's hashing block.
pub const BLOCK: u64 = 4 * 1024 * 1024;

/// Hashes a byte run that starts on a block boundary, block by block.
#[derive(Default, Clone)]
pub struct BlockHasher {
    current: Sha256,
    in_block: u64,
    blocks: Vec<String>,
}

impl BlockHasher {
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (BLOCK - self.in_block) as usize;
            let n = room.min(data.len());
            self.current.update(&data[..n]);
            self.in_block += n as u64;
            data = &data[n..];
            if self.in_block == BLOCK {
                self.close_block();
            }
        }
    }

    fn close_block(&mut self) {
        let digest = std::mem::take(&mut self.current).finalize();
        self.blocks.push(hex::encode(digest));
        self.in_block = 0;
    }

    /// The digests of every block, the last partial one included.
    pub fn finish(mut self) -> Vec<String> {
        if self.in_block > 0 {
            self.close_block();
        }
        self.blocks
    }
}

/// The `content_hash` of a file from its block digests (hex). `None` if one is malformed.
pub fn content_hash(block_hashes: &[String]) -> Option<String> {
    let mut overall = Sha256::new();
    for b in block_hashes {
        let raw = hex::decode(b).ok().filter(|r| r.len() == 32)?;
        overall.update(&raw);
    }
    Some(hex::encode(overall.finalize()))
}

/// The `content_hash` of bytes in memory (tests, small files).
pub fn content_hash_of(data: &[u8]) -> String {
    let mut h = BlockHasher::default();
    h.update(data);
    content_hash(&h.finish()).expect("own digests are well formed")
}

/// How many block digests cover the first `offset` bytes of a `size`-byte file: whole blocks
/// only, plus the last partial block once the whole file is covered.
pub fn blocks_covering(offset: u64, size: u64) -> usize {
    if offset >= size {
        size.div_ceil(BLOCK) as usize
    } else {
        (offset / BLOCK) as usize
    }
}

/// Digests of the blocks of `key` in `[start, end)` read from storage (`start` on a block
/// boundary): for bytes Dropbox took whose acknowledgement was lost, or an older progress file.
pub(crate) async fn hash_from_store(
    store: &Store,
    key: &str,
    start: u64,
    end: u64,
) -> Result<Vec<String>, Error> {
    debug_assert!(start.is_multiple_of(BLOCK));
    let mut h = BlockHasher::default();
    if end > start {
        let mut stream = std::pin::pin!(store.get_range(key, start, end).await?);
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Storage(format!("read: {e}")))?;
            read += chunk.len() as u64;
            h.update(&chunk);
        }
        if read != end - start {
            return Err(Error::Storage(format!(
                "ranged read gave {read} bytes, expected {}",
                end - start
            )));
        }
    }
    Ok(h.finish())
}

/// Passes a chunk's bytes through unchanged while hashing them and counting them as sent.
/// The block digests arrive on the returned receiver once all `len` bytes went through.
pub(crate) fn tee<S>(
    inner: S,
    len: u64,
    sent: impl Fn(u64) + Send + Sync + 'static,
) -> (
    impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
    tokio::sync::oneshot::Receiver<Vec<String>>,
)
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let state = (
        Box::pin(inner),
        Some(BlockHasher::default()),
        0u64,
        Some(tx),
        sent,
    );
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        let item = st.0.next().await?;
        if let Ok(chunk) = &item {
            (st.4)(chunk.len() as u64);
            st.2 += chunk.len() as u64;
            if let Some(h) = st.1.as_mut() {
                h.update(chunk);
            }
            // The HTTP client may stop polling once Content-Length bytes are out: hand the
            // digests over with the last byte, not at end of stream.
            if st.2 == len
                && let (Some(h), Some(tx)) = (st.1.take(), st.3.take())
            {
                let _ = tx.send(h.finish());
            }
        }
        Some((item, st))
    });
    (stream, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dropbox_definition() {
        // Dropbox: concatenate SHA-256 of each 4 MiB block, then SHA-256 of that.
        let data: Vec<u8> = (0..(2 * BLOCK + 123)).map(|i| (i % 251) as u8).collect();
        let mut concat = Vec::new();
        for block in data.chunks(BLOCK as usize) {
            concat.extend_from_slice(&Sha256::digest(block));
        }
        let expected = hex::encode(Sha256::digest(&concat));
        assert_eq!(content_hash_of(&data), expected);
        // Fed in odd pieces, the same.
        let mut h = BlockHasher::default();
        for piece in data.chunks(1_000_003) {
            h.update(piece);
        }
        assert_eq!(content_hash(&h.finish()).unwrap(), expected);
        // The empty file: SHA-256 of nothing.
        assert_eq!(
            content_hash_of(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(content_hash(&["zz".into()]).is_none());
    }

    #[test]
    fn coverage() {
        assert_eq!(blocks_covering(0, 10), 0);
        assert_eq!(blocks_covering(BLOCK, 3 * BLOCK + 1), 1);
        assert_eq!(blocks_covering(3 * BLOCK + 1, 3 * BLOCK + 1), 4);
        assert_eq!(blocks_covering(0, 0), 0);
    }

    #[tokio::test]
    async fn tee_hashes_counts_and_passes_bytes_through() {
        let data: Vec<u8> = (0..(BLOCK + 10)).map(|i| (i % 7) as u8).collect();
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(65_536)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c2 = counted.clone();
        let (s, rx) = tee(
            futures_util::stream::iter(chunks),
            data.len() as u64,
            move |n| {
                c2.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
        );
        let out: Vec<u8> = s
            .map(|c| c.unwrap().to_vec())
            .collect::<Vec<_>>()
            .await
            .concat();
        assert_eq!(out, data);
        assert_eq!(
            counted.load(std::sync::atomic::Ordering::Relaxed),
            data.len() as u64
        );
        assert_eq!(
            content_hash(&rx.await.unwrap()).unwrap(),
            content_hash_of(&data)
        );
    }
}
