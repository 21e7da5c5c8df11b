//! Recording: a moderator (with the `recording` feature in jwt modes) starts it with their Dropbox
//! grant; the room moves to its media node (even with two) and the node records. Refused while any
//! participant has E2EE on; turning E2EE on stops it.

use edgemeet_protocol::client::{DropboxGrant, RecordingFiles};
use edgemeet_protocol::{ErrorCode, ParticipantId, ProtocolError, ServerMessage};
use serde::{Deserialize, Serialize};

use super::{Effect, Env, Out, RecordStart, Room, StatusToken};
use crate::config::AuthMode;

const MAX_TOKEN_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Recording {
    by: ParticipantId,
    /// Held while the recording runs, in memory only (never part of a stored snapshot): for the
    /// node the room has, and for the next one if the room moves (a further file there).
    #[serde(skip)]
    pending: Option<DropboxGrant>,
    started_on_node: bool,
    /// The recording's id on the node that records it now (from the node's answer): kept in
    /// the stored snapshot (an id, no secret) so that a move carries the recording on even when
    /// the grant above is gone (a Worker's room that hibernated).
    #[serde(default)]
    on_node: Option<String>,
    /// Also one composed video of the meeting (the node composes it; the scene follows).
    #[serde(default)]
    pub(super) composite: bool,
    /// A file per person (off: only the composed video).
    #[serde(default = "yes")]
    per_person: bool,
    /// The room moved to another node for a composer once for this recording: a second
    /// refusal ends it.
    #[serde(default)]
    moved_for_composer: bool,
}

impl Recording {
    /// A node refused to compose the recording: whether the room may move for it (once), and
    /// the recording is to start on the node the room gets.
    pub(super) fn refused_for_composer(&mut self) -> bool {
        self.started_on_node = false;
        !std::mem::replace(&mut self.moved_for_composer, true)
    }

    /// A composed recording waiting for a node with a composer.
    pub(super) fn awaits_composer(&self) -> bool {
        self.composite && !self.started_on_node
    }
}

impl Room {
    pub(super) fn start_recording(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
        grant: Option<DropboxGrant>,
        files: RecordingFiles,
    ) -> Result<(), ProtocolError> {
        self.may_take_media_out(
            env,
            id,
            "recording",
            ProtocolError::new(
                ErrorCode::RecordingNotAllowed,
                "only moderators allowed to record can start a recording",
            ),
            ProtocolError::new(
                ErrorCode::RecordingE2ee,
                "recording is off while anyone uses end-to-end encryption",
            ),
        )?;
        let meeting = self.meeting.as_mut().expect("joined");
        if meeting.recording.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::RecordingActive,
                "the meeting is already being recorded",
            ));
        }
        let bad = |s: &str| s.is_empty() || s.len() > MAX_TOKEN_CHARS;
        if let Some(grant) = &grant
            && (bad(&grant.access_token)
                || bad(&grant.app_key)
                || grant.refresh_token.as_deref().is_some_and(bad))
        {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                "the Dropbox grant is malformed",
            ));
        }
        meeting.recording = Some(Recording {
            by: id.to_string(),
            pending: grant,
            started_on_node: false,
            on_node: None,
            composite: files.composite(),
            per_person: files.per_person(),
            moved_for_composer: false,
        });
        out.send_many(
            self.member_conns(),
            &ServerMessage::Recording {
                active: true,
                by: Some(id.to_string()),
                restarting: false,
            },
        );
        self.update_media(env, out);
        self.start_recording_on_node(env, out);
        Ok(())
    }

    /// Once the room has a node, hand it the grant.
    pub(super) fn start_recording_on_node(&mut self, env: &mut Env, out: &mut Out) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let (Some(node), Some(rec)) = (meeting.media.node.clone(), meeting.recording.as_ref())
        else {
            return;
        };
        if rec.started_on_node {
            return;
        }
        let meeting_id = meeting.id.clone();
        let Some(token) = self.node_token(env, &node, &meeting_id, "edge") else {
            return;
        };
        let scene = rec.composite.then(|| self.scene_sent());
        let rec = self
            .meeting
            .as_mut()
            .and_then(|m| m.recording.as_mut())
            .expect("checked above");
        let start = rec.pending.clone();
        rec.started_on_node = true;
        let recorder = rec.by.clone();
        let per_person = rec.per_person;
        let continue_from = rec.on_node.take();
        out.0.push(Effect::RecordOnNode {
            node,
            meeting_id,
            token,
            start: Some(RecordStart {
                dropbox: start,
                recorder,
                continue_from,
                scene,
                per_person,
            }),
        });
    }

    /// Stop the recording (`by` a moderator, or `None` when it stops by itself).
    pub(super) fn stop_recording(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        by: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let meeting = self.meeting.as_mut().expect("joined");
        let rec = meeting.recording.take().ok_or_else(|| {
            ProtocolError::new(ErrorCode::NotRecording, "nothing is being recorded")
        })?;
        if rec.started_on_node
            && let Some(node) = meeting.media.node.clone()
        {
            let meeting_id = meeting.id.clone();
            if let Some(token) = self.node_token(env, &node, &meeting_id, "edge") {
                out.0.push(Effect::RecordOnNode {
                    node,
                    meeting_id,
                    token,
                    start: None,
                });
            }
        }
        out.send_many(
            self.member_conns(),
            &ServerMessage::Recording {
                active: false,
                by: by.map(str::to_string),
                restarting: false,
            },
        );
        self.update_media(env, out);
        Ok(())
    }

    pub(super) fn on_recording_failed(&mut self, env: &mut Env, out: &mut Out, meeting_id: &str) {
        self.end_failed_recording(
            env,
            out,
            meeting_id,
            "the recording could not be started on the media node",
        );
    }

    /// The recording ends, and everyone hears why.
    pub(super) fn end_failed_recording(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        meeting_id: &str,
        why: &str,
    ) {
        let matches = self
            .meeting
            .as_ref()
            .is_some_and(|m| m.id == meeting_id && m.recording.is_some());
        if matches && self.stop_recording(env, out, None).is_ok() {
            let err = ServerMessage::Error {
                code: ErrorCode::RecordingFailed,
                message: why.into(),
                request: Some("start_recording".into()),
            };
            out.send_many(self.member_conns(), &err);
        }
    }

    /// The composer of the meeting's recorded video stopped on its own: the node started it
    /// again into a further file (everyone is told), or could not (the recording ends, saying
    /// why: its files so far are delivered).
    pub(super) fn on_composite_recording_dropped(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        meeting_id: &str,
        restarted: bool,
    ) {
        let composite = self
            .meeting
            .as_ref()
            .filter(|m| m.id == meeting_id)
            .and_then(|m| m.recording.as_ref())
            .is_some_and(|r| r.composite && r.started_on_node);
        if !composite {
            return;
        }
        if restarted {
            out.send_many(
                self.member_conns(),
                &ServerMessage::Recording {
                    active: true,
                    by: None,
                    restarting: true,
                },
            );
        } else {
            self.end_failed_recording(
                env,
                out,
                meeting_id,
                "the meeting's video stopped and could not be started again",
            );
        }
    }

    /// The node started `recorder`'s recording: its delivery-status link goes to their socket
    /// alone. Nothing of it is kept here (not in memory, not in a stored snapshot): the page
    /// holds it. Sent even if the recording stopped meanwhile (its files exist all the same),
    /// and dropped if the recorder left or the meeting ended.
    pub(super) fn on_recording_started(
        &mut self,
        out: &mut Out,
        meeting_id: &str,
        recorder: &str,
        token: StatusToken,
        recording_id: Option<String>,
    ) {
        if let Some(rec) = self
            .meeting
            .as_mut()
            .filter(|m| m.id == meeting_id)
            .and_then(|m| m.recording.as_mut())
            .filter(|r| r.started_on_node && r.by == recorder)
        {
            rec.on_node = recording_id;
        }
        // What the uploader accepts (32 lowercase hex digits); anything else is not a link.
        let well_formed = token.0.len() == 32
            && token
                .0
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let Some(meeting) = self.meeting.as_ref().filter(|m| m.id == meeting_id) else {
            return;
        };
        let Some(member) = meeting.members.get(recorder) else {
            return;
        };
        if well_formed {
            out.send(
                member.conn,
                &ServerMessage::RecordingStatusLink { token: token.0 },
            );
        }
    }

    /// The room left its node: the recording starts again on the next one, as a further file
    /// (the old node's file ends where the node stopped).
    pub(super) fn recording_needs_new_node(&mut self) {
        if let Some(rec) = self.meeting.as_mut().and_then(|m| m.recording.as_mut()) {
            rec.started_on_node = false;
        }
    }

    /// A composed video of the meeting is being recorded on the node.
    pub(super) fn records_composite(&self) -> bool {
        self.meeting
            .as_ref()
            .and_then(|m| m.recording.as_ref())
            .is_some_and(|r| r.composite && r.started_on_node)
    }

    /// Whether `id` may start taking the meeting's media out of it (a recording, a livestream):
    /// a moderator, in jwt modes one whose token grants `feature`, and never while anyone has
    /// E2EE on (encrypted media can be neither recorded nor composed).
    pub(super) fn may_take_media_out(
        &self,
        env: &Env,
        id: &str,
        feature: &str,
        not_allowed: ProtocolError,
        e2ee: ProtocolError,
    ) -> Result<(), ProtocolError> {
        let open = env
            .config
            .tenant(&self.address.tenant)
            .is_none_or(|t| t.auth == AuthMode::Open);
        let meeting = self.meeting.as_ref().expect("joined");
        let member = &meeting.members[id];
        if !member.moderator || (!open && !member.features.iter().any(|f| f == feature)) {
            return Err(not_allowed);
        }
        if meeting.members.values().any(|m| m.media.e2ee) {
            return Err(e2ee);
        }
        Ok(())
    }

    pub(super) fn is_recording(&self) -> bool {
        self.meeting.as_ref().is_some_and(|m| m.recording.is_some())
    }
}

fn yes() -> bool {
    true
}
