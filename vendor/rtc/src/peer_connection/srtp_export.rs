//! edgemeet patch (not upstream): hands a connection's local SRTP master key to the application
//! when its DTLS handshake completes, so an SFU can encrypt forwarded RTP in its own send loop
//! instead of passing every packet through the connection's handler chain.
//!
//! The async `webrtc` layer offers no way to reach a connection's DTLS state, hence one
//! process-wide observer. The keys are named by the fingerprint of the connection's own
//! certificate (as its SDP announces it): each connection generates its own certificate unless
//! given one, so the application can tell which of its connections they belong to.

use std::sync::OnceLock;

use crypto::RTCCrypto;
use srtp::config::SessionKeys;
use srtp::protection_profile::ProtectionProfile;

use crate::peer_connection::certificate::RTCCertificate;

/// The keys this side encrypts with (SRTP and SRTCP), and whose they are.
#[derive(Debug, Clone)]
pub struct ExportedSrtpKeys {
    /// Fingerprints (`algorithm`, `value` as in SDP `a=fingerprint`) of the local certificate.
    pub local_fingerprints: Vec<(String, String)>,
    /// The negotiated protection profile.
    pub profile: ProtectionProfile,
    /// This side's master key.
    pub local_master_key: Vec<u8>,
    /// This side's master salt.
    pub local_master_salt: Vec<u8>,
}

static OBSERVER: OnceLock<fn(ExportedSrtpKeys)> = OnceLock::new();

/// Sets the process-wide observer of completed handshakes; false if one is set already.
pub fn set_observer(f: fn(ExportedSrtpKeys)) -> bool {
    OBSERVER.set(f).is_ok()
}

pub(crate) fn publish(
    certificates: &[RTCCertificate],
    crypto: &dyn RTCCrypto,
    profile: ProtectionProfile,
    keys: &SessionKeys,
) {
    let Some(f) = OBSERVER.get() else { return };
    let local_fingerprints = certificates
        .iter()
        .filter_map(|c| c.get_fingerprints(crypto).ok())
        .flatten()
        .map(|fp| (fp.algorithm, fp.value))
        .collect();
    f(ExportedSrtpKeys {
        local_fingerprints,
        profile,
        local_master_key: keys.local_master_key.clone(),
        local_master_salt: keys.local_master_salt.clone(),
    });
}
