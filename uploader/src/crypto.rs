//! Sealing the recorder's Dropbox credentials into a manifest (AES-256-GCM).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use edgemeet_protocol::job::{DropboxCredentials, RecordingManifest, SealedDropboxToken};

/// Why a token could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key must be 32 bytes in standard base64")]
    BadKey,
    #[error("manifest carries no Dropbox token")]
    Missing,
    #[error("sealed token is malformed")]
    Malformed,
    #[error("sealed token does not open with this key for this recording")]
    Open,
    #[error("random source failed")]
    Random,
}

/// The AES-256-GCM key from the uploader's config. Its Debug output hides the key.
#[derive(Clone)]
pub struct TokenKey(Aes256Gcm);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// From 32 bytes in standard base64 (as in the config file).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(text.trim()).map_err(|_| CryptoError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self(
            Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::BadKey)?,
        ))
    }

    /// A fresh random key and its base64 form (for `edgemeet-uploader gen-key` and tests).
    pub fn generate() -> Result<(Self, String), CryptoError> {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).map_err(|_| CryptoError::Random)?;
        Ok((Self::from_bytes(&k)?, B64.encode(k)))
    }

    /// Seals `creds` for one recording (the media node or edge calls this when recording starts).
    pub fn seal(
        &self,
        recording_id: &str,
        meeting_id: &str,
        app_key: &str,
        creds: &DropboxCredentials,
    ) -> Result<SealedDropboxToken, CryptoError> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|_| CryptoError::Random)?;
        let plain = serde_json::to_vec(creds).map_err(|_| CryptoError::Malformed)?;
        let aad = SealedDropboxToken::associated_data(recording_id, meeting_id);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Malformed)?;
        Ok(SealedDropboxToken {
            alg: "A256GCM".into(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
            app_key: app_key.into(),
        })
    }

    /// Opens the credentials sealed in a manifest.
    pub fn open(&self, manifest: &RecordingManifest) -> Result<DropboxCredentials, CryptoError> {
        let sealed = manifest.dropbox.as_ref().ok_or(CryptoError::Missing)?;
        self.open_sealed(&manifest.recording_id, &manifest.meeting_id, sealed)
    }

    /// Opens credentials sealed for `recording_id` of `meeting_id` (fails for any other).
    pub fn open_sealed(
        &self,
        recording_id: &str,
        meeting_id: &str,
        sealed: &SealedDropboxToken,
    ) -> Result<DropboxCredentials, CryptoError> {
        let nonce = B64
            .decode(&sealed.nonce)
            .map_err(|_| CryptoError::Malformed)?;
        let ct = B64
            .decode(&sealed.ciphertext)
            .map_err(|_| CryptoError::Malformed)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        let aad = SealedDropboxToken::associated_data(recording_id, meeting_id);
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgemeet_protocol::job::MANIFEST_VERSION;

    fn manifest(rec: &str) -> RecordingManifest {
        RecordingManifest {
            v: MANIFEST_VERSION,
            recording_id: rec.into(),
            meeting_id: "m".into(),
            started_at_ms: 0,
            ended_at_ms: 0,
            files: vec![],
            dropbox: None,
        }
    }

    #[test]
    fn seal_open_and_bind_to_recording() {
        let (key, _) = TokenKey::generate().unwrap();
        let creds = DropboxCredentials {
            access_token: "sl.abc".into(),
            refresh_token: Some("r".into()),
        };
        let mut m = manifest("r1");
        m.dropbox = Some(key.seal("r1", "m", "app", &creds).unwrap());
        assert!(!serde_json::to_string(&m).unwrap().contains("sl.abc"));
        assert!(key.open(&m).unwrap() == creds);
        // Moved to another recording: refused.
        let mut other = m.clone();
        other.recording_id = "r2".into();
        assert!(matches!(key.open(&other), Err(CryptoError::Open)));
        // Another key: refused.
        let (k2, _) = TokenKey::generate().unwrap();
        assert!(matches!(k2.open(&m), Err(CryptoError::Open)));
        assert!(TokenKey::from_base64("AAAA").is_err());
    }
}
