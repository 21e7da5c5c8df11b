//! The media node's side: writing a finished recording into the bucket.
//!
//! Files go up as S3 multipart uploads from a bounded buffer (one part in memory at a time; a
//! `write` waits while a full part uploads, which is the back-pressure). The manifest is written
//! last: its presence is what tells the uploader the recording is finished.

use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use edgemeet_protocol::job::{
    FILES_DIR, MANIFEST_FILE, MANIFEST_VERSION, RecordingFile, RecordingManifest,
    SealedDropboxToken, UPLOADS_DIR,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::clock::unix_ms;
use crate::error::Error;
use crate::store::Store;

/// Default multipart part size (S3's minimum for all but the last part is 5 MiB).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

fn storage(what: &str, e: impl std::error::Error + 'static) -> Error {
    Error::Storage(format!(
        "{what}: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}

/// `{prefix}{recording_id}/uploads/{name}`: names a multipart upload in progress, so the
/// uploader can abort it (and free its parts) if the writer dies before finishing: not every
/// S3-compatible server lists multipart uploads (s3s-fs does not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadMarker {
    pub key: String,
    pub upload_id: String,
}

/// A fresh random id (hex, 128 bits) for recordings.
pub fn new_recording_id() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("OS random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One recording being written.
pub struct RecordingWriter {
    store: Store,
    recording_id: String,
    meeting_id: String,
    started_at_ms: u64,
    part_size: usize,
    files: Vec<RecordingFile>,
}

impl RecordingWriter {
    /// `recording_id` and `meeting_id`: `[A-Za-z0-9_-]{1,64}`, random (never a room name).
    pub fn new(
        store: Store,
        recording_id: impl Into<String>,
        meeting_id: impl Into<String>,
        started_at: SystemTime,
    ) -> Self {
        Self {
            store,
            recording_id: recording_id.into(),
            meeting_id: meeting_id.into(),
            started_at_ms: unix_ms(started_at),
            part_size: DEFAULT_PART_SIZE,
            files: Vec::new(),
        }
    }

    /// Bytes held in memory per open file (at least 5 MiB).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// `{prefix}{recording_id}/`.
    pub fn prefix(&self) -> String {
        format!("{}{}/", self.store.prefix(), self.recording_id)
    }

    pub fn recording_id(&self) -> &str {
        &self.recording_id
    }

    /// Opens a file of this recording for streaming writes.
    pub async fn create_file(&self, name: &str, content_type: &str) -> Result<FileWriter, Error> {
        let key = format!("{}{FILES_DIR}{name}", self.prefix());
        let resp = self
            .store
            .client()
            .create_multipart_upload()
            .bucket(self.store.bucket())
            .key(&key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| storage("create multipart upload", e))?;
        let upload_id = resp
            .upload_id()
            .ok_or_else(|| Error::Storage("no upload id".into()))?
            .to_owned();
        let marker_key = format!("{}{UPLOADS_DIR}{name}", self.prefix());
        let marker = UploadMarker {
            key: key.clone(),
            upload_id: upload_id.clone(),
        };
        let body = serde_json::to_vec(&marker).expect("marker serializes");
        if let Err(e) = self
            .store
            .put_small(&marker_key, body, "application/json")
            .await
        {
            let _ = self.store.abort_upload(&key, &upload_id).await;
            return Err(e);
        }
        Ok(FileWriter {
            marker_key,
            store: self.store.clone(),
            key,
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            upload_id,
            buf: Vec::with_capacity(self.part_size),
            part_size: self.part_size,
            parts: Vec::new(),
            size: 0,
            first_held: false,
        })
    }

    /// Adds a finished file to the manifest.
    pub fn add_file(&mut self, file: RecordingFile) {
        self.files.push(file);
    }

    /// Streams `reader` into a new file of this recording and adds it.
    pub async fn write_file_from<R: AsyncRead + Unpin>(
        &mut self,
        name: &str,
        content_type: &str,
        mut reader: R,
    ) -> Result<RecordingFile, Error> {
        let mut w = self.create_file(name, content_type).await?;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            if let Err(e) = w.write(&chunk[..n]).await {
                w.abort().await;
                return Err(e);
            }
        }
        let f = w.finish().await?;
        self.add_file(f.clone());
        Ok(f)
    }

    /// Writes the manifest (last), which hands the recording to the uploader.
    pub async fn finish(
        self,
        ended_at: SystemTime,
        dropbox: Option<SealedDropboxToken>,
    ) -> Result<RecordingManifest, Error> {
        let manifest = RecordingManifest {
            v: MANIFEST_VERSION,
            recording_id: self.recording_id.clone(),
            meeting_id: self.meeting_id.clone(),
            started_at_ms: self.started_at_ms,
            ended_at_ms: unix_ms(ended_at).max(self.started_at_ms),
            files: self.files,
            dropbox,
        };
        manifest.validate()?;
        let key = format!(
            "{}{}/{MANIFEST_FILE}",
            self.store.prefix(),
            self.recording_id
        );
        self.store
            .put_small(&key, manifest.to_json(), "application/json")
            .await?;
        Ok(manifest)
    }
}

/// One file being written: a multipart upload fed from a one-part buffer.
pub struct FileWriter {
    store: Store,
    marker_key: String,
    key: String,
    name: String,
    content_type: String,
    upload_id: String,
    buf: Vec<u8>,
    part_size: usize,
    parts: Vec<CompletedPart>,
    size: u64,
    /// Part 1 is kept back by the caller and given at [`FileWriter::finish_with_first_part`].
    first_held: bool,
}

impl FileWriter {
    /// Writes from part 2 on: the caller keeps the file's first part and hands it over at the
    /// end ([`FileWriter::finish_with_first_part`]), when what it starts with is known (a media
    /// file's header with its final duration and size). Call before the first `write`.
    pub fn hold_first_part(&mut self) {
        debug_assert!(self.parts.is_empty() && self.buf.is_empty());
        self.first_held = true;
    }

    /// Bytes written so far (not counting a held first part).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends bytes; uploads a part whenever the buffer is full (and waits for it).
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let room = self.part_size - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.size += n as u64;
            if self.buf.len() == self.part_size {
                self.flush_part().await?;
            }
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<(), Error> {
        let number = self.parts.len() as i32 + 1 + i32::from(self.first_held);
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        self.upload_part(number, body).await
    }

    async fn upload_part(&mut self, number: i32, body: Vec<u8>) -> Result<(), Error> {
        let resp = self
            .store
            .client()
            .upload_part()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| storage("upload part", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(resp.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Completes the upload; the file is then readable in the bucket.
    pub async fn finish(mut self) -> Result<RecordingFile, Error> {
        if self.first_held {
            return Err(Error::Storage(
                "the first part was held: finish with finish_with_first_part".into(),
            ));
        }
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush_part().await?;
        }
        self.complete().await
    }

    /// Completes an upload started with [`FileWriter::hold_first_part`]: `first` becomes part 1
    /// (the file's first bytes). Unless nothing else was written, it must be at least 5 MiB (S3's
    /// minimum for every part but the last).
    pub async fn finish_with_first_part(mut self, first: Vec<u8>) -> Result<RecordingFile, Error> {
        if !self.first_held {
            return Err(Error::Storage("no first part was held".into()));
        }
        let later = !self.buf.is_empty() || !self.parts.is_empty();
        if later && first.len() < MIN_PART_SIZE {
            return Err(Error::Storage(format!(
                "the first part is {} bytes, under S3's 5 MiB minimum",
                first.len()
            )));
        }
        if !self.buf.is_empty() {
            self.flush_part().await?;
        }
        self.size += first.len() as u64;
        self.upload_part(1, first).await?;
        // Parts must be listed in ascending order: part 1 was uploaded last.
        self.parts.sort_by_key(|p| p.part_number());
        self.complete().await
    }

    async fn complete(mut self) -> Result<RecordingFile, Error> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.parts)))
            .build();
        self.store
            .client()
            .complete_multipart_upload()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(done)
            .send()
            .await
            .map_err(|e| storage("complete multipart upload", e))?;
        // Best effort: a marker left behind names a finished upload, which aborts as a no-op.
        let _ = self.store.delete(&self.marker_key).await;
        Ok(RecordingFile {
            key: self.key,
            name: self.name,
            size: self.size,
            content_type: self.content_type,
        })
    }

    /// Abandons the upload (the parts are freed by the server).
    pub async fn abort(self) {
        if self
            .store
            .abort_upload(&self.key, &self.upload_id)
            .await
            .is_ok()
        {
            let _ = self.store.delete(&self.marker_key).await;
        }
    }
}
