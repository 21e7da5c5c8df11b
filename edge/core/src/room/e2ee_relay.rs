//! Automatic E2EE: pass a key blob from one participant to one other, unread.
//!
//! The blobs are public keys and media keys sealed for their recipient (`docs/e2ee.md`). The room
//! checks only that both ends are in this meeting: it keeps no blob, logs none, and never sends one
//! to anybody but the participant it names, so a key sealed for those still present never reaches
//! someone who left or was kicked (their id is gone from the roster at once).

use edgemeet_protocol::e2ee::KeyBlob;
use edgemeet_protocol::{ErrorCode, ProtocolError, ServerMessage};

use super::{Out, Room};

impl Room {
    pub(super) fn relay_e2ee_key(
        &self,
        out: &mut Out,
        from: &str,
        to: &str,
        blob: KeyBlob,
    ) -> Result<(), ProtocolError> {
        let meeting = self.meeting.as_ref().ok_or_else(unknown)?;
        if to == from {
            return Err(ProtocolError::new(
                ErrorCode::UnknownParticipant,
                "key blobs go to another participant",
            ));
        }
        let conn = meeting.members.get(to).ok_or_else(unknown)?.conn;
        out.send(
            conn,
            &ServerMessage::E2eeKey {
                from: from.to_string(),
                blob,
            },
        );
        Ok(())
    }
}

fn unknown() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownParticipant,
        "no such participant in this meeting",
    )
}
