//! What a joined participant can do: chat, profile and media state, moderation, media signalling,
//! speaker stats.

use edgemeet_protocol::node::session_belongs_to;
use edgemeet_protocol::server::LeaveReason;
use edgemeet_protocol::{ClientMessage, ErrorCode, ProtocolError, RecordingFiles, ServerMessage};

use super::join::with_token_fields;
use super::password::password_hash;
use super::{ConnId, Effect, Env, Out, Room, close};

const MAX_TRACKS: usize = 16;
const MAX_ID_CHARS: usize = 128;
const MAX_PASSWORD_CHARS: usize = 128;

impl Room {
    pub(super) fn on_member_message(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
        msg: ClientMessage,
    ) -> Result<(), ProtocolError> {
        match msg {
            ClientMessage::Chat { text, to } => self.chat(env, out, id, text, to),
            ClientMessage::UpdateProfile { profile } => {
                let typed = crate::profile::validate(&profile)?;
                let hosts = &env.config.avatar_hosts;
                self.update_member(out, id, |m| {
                    // A token's identity is the identity: its fields stay.
                    let profile = with_token_fields(&m.token_profile, typed);
                    m.profile = crate::profile::allow_avatar(profile, hosts);
                });
                Ok(())
            }
            ClientMessage::MediaState(state) => {
                self.update_member(out, id, |m| m.media = state);
                if state.e2ee && self.is_recording() {
                    // Encrypted frames cannot be recorded: stop rather than record nothing.
                    let _ = self.stop_recording(env, out, None);
                }
                if state.e2ee && self.is_live() {
                    // Nor composed: stop rather than stream a black picture.
                    let _ = self.stop_livestream(env, out, None);
                }
                Ok(())
            }
            ClientMessage::StartRecording {
                dropbox,
                composite,
                files,
            } => self.start_recording(
                env,
                out,
                id,
                dropbox,
                RecordingFiles::resolve(files, composite),
            ),
            ClientMessage::StopRecording => {
                self.require_moderator(id)?;
                self.stop_recording(env, out, Some(id))
            }
            ClientMessage::StartLivestream { url, stream_key } => {
                self.start_livestream(env, out, id, url, stream_key)
            }
            ClientMessage::StopLivestream => {
                self.require_moderator(id)?;
                self.stop_livestream(env, out, Some(id))
            }
            ClientMessage::Mute { target, kind } => {
                self.require_moderator(id)?;
                let conn = self.member_conn(&target)?;
                out.send(
                    conn,
                    &ServerMessage::Muted {
                        kind,
                        by: id.to_string(),
                    },
                );
                Ok(())
            }
            ClientMessage::MuteAll { kind } => {
                self.require_moderator(id)?;
                let me = self.member_conn(id)?;
                let others: Vec<ConnId> = self
                    .member_conns()
                    .into_iter()
                    .filter(|c| *c != me)
                    .collect();
                out.send_many(
                    others,
                    &ServerMessage::Muted {
                        kind,
                        by: id.to_string(),
                    },
                );
                Ok(())
            }
            ClientMessage::Kick { target } => {
                self.require_moderator(id)?;
                if target == id {
                    return Err(ProtocolError::new(
                        ErrorCode::InvalidMessage,
                        "use leave to leave",
                    ));
                }
                let conn = self.member_conn(&target)?;
                out.send(conn, &ServerMessage::Kicked { by: id.to_string() });
                out.0.push(Effect::Close {
                    conn,
                    code: close::KICKED,
                    reason: "kicked by a moderator".into(),
                });
                self.conns.remove(&conn);
                self.remove_member(env, out, &target, LeaveReason::Kicked);
                Ok(())
            }
            ClientMessage::SetPassword { password } => self.set_password(out, id, password),
            ClientMessage::Signal { to, payload } => self.relay_signal(out, id, &to, payload),
            ClientMessage::E2eeKey { to, blob } => self.relay_e2ee_key(out, id, &to, blob),
            ClientMessage::Tracks { session_id, tracks } => {
                self.on_node()?;
                let too_long = |s: &str| s.is_empty() || s.chars().count() > MAX_ID_CHARS;
                if too_long(&session_id)
                    || tracks.len() > MAX_TRACKS
                    || tracks.iter().any(|t| too_long(&t.name))
                {
                    return Err(ProtocolError::new(
                        ErrorCode::InvalidMessage,
                        "session id and track names are 1-128 characters, 16 tracks at most",
                    ));
                }
                let meeting = self.meeting.as_mut().expect("on a node");
                // Only the sender's own session: its id carries a MAC of the meeting and the
                // participant under the node secret (`edgemeet_protocol::node::session_id`).
                let secret = env.config.node_secret.as_deref().unwrap_or_default();
                if !session_belongs_to(secret, &session_id, &meeting.id, id) {
                    return Err(ProtocolError::new(
                        ErrorCode::NotYourSession,
                        "that media-node session is not yours",
                    ));
                }
                let member = meeting.members.get_mut(id).expect("joined");
                member.tracks = Some((session_id, tracks));
                let announce = Self::tracks_of(id, member).expect("just set");
                let me = member.conn;
                let others: Vec<ConnId> = self
                    .member_conns()
                    .into_iter()
                    .filter(|c| *c != me)
                    .collect();
                out.send_many(others, &ServerMessage::Tracks(announce));
                Ok(())
            }
            ClientMessage::RefreshNodeGrant => self.refresh_grant(env, out, id),
            ClientMessage::SpeakerStats => {
                let meeting = self.meeting.as_ref().expect("joined");
                let stats = meeting.speakers.report(meeting.order.iter(), env.now_ms);
                out.send(
                    meeting.members[id].conn,
                    &ServerMessage::SpeakerStats { stats },
                );
                Ok(())
            }
            ClientMessage::SetLobby { enabled } => self.set_lobby(env, out, id, enabled),
            ClientMessage::SetCompositionLayout { grid } => {
                self.require_moderator(id)?;
                // The node gets the new scene after this input (`sync_composition_scene`).
                if let Some(m) = self.meeting.as_mut() {
                    m.composition_grid = grid;
                }
                Ok(())
            }
            ClientMessage::Admit { target } => {
                self.require_moderator(id)?;
                self.admit_knockers(env, out, Some(&target))
            }
            ClientMessage::AdmitAll => {
                self.require_moderator(id)?;
                self.admit_knockers(env, out, None)
            }
            ClientMessage::Refuse { target } => {
                self.require_moderator(id)?;
                self.refuse_knockers(out, Some(&target))
            }
            ClientMessage::RefuseAll => {
                self.require_moderator(id)?;
                self.refuse_knockers(out, None)
            }
            ClientMessage::SetModerator { target, moderator } => {
                self.set_moderator(env, out, id, &target, moderator)
            }
            ClientMessage::EndMeeting => self.end_for_all(env, out, id),
            ClientMessage::NodeUnreachable { node_id } => self.node_unreachable(env, out, &node_id),
            ClientMessage::DirectFailed => self.direct_failed(env, out, id),
            ClientMessage::React { reaction } => {
                // Relayed, never kept: not in the room's state, not in any snapshot.
                let msg = ServerMessage::Reaction {
                    from: id.to_string(),
                    reaction,
                };
                out.send_many(self.member_conns(), &msg);
                Ok(())
            }
            ClientMessage::RaiseHand { raised } => {
                let now = env.now_ms;
                // Raising again keeps one's place in the queue.
                self.update_member(out, id, |m| {
                    m.hand = if raised { m.hand.or(Some(now)) } else { None };
                });
                Ok(())
            }
            ClientMessage::Join(_)
            | ClientMessage::Leave
            | ClientMessage::Ping
            | ClientMessage::Resume { .. } => Ok(()),
        }
    }

    fn chat(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
        text: String,
        to: Option<String>,
    ) -> Result<(), ProtocolError> {
        if text.trim().is_empty() {
            return Err(ProtocolError::new(ErrorCode::ChatEmpty, "nothing to send"));
        }
        let max = env.config.limits.max_chat_chars;
        if text.chars().count() > max {
            return Err(ProtocolError::new(
                ErrorCode::ChatTooLong,
                format!("chat messages are limited to {max} characters"),
            ));
        }
        let me = self.member_conn(id)?;
        let msg = ServerMessage::Chat {
            from: id.to_string(),
            text,
            to: to.clone(),
            at: env.now_ms,
        };
        match to {
            Some(target) => {
                let conn = self.member_conn(&target)?;
                out.send_many(if conn == me { vec![me] } else { vec![conn, me] }, &msg);
            }
            None => out.send_many(self.member_conns(), &msg),
        }
        Ok(())
    }

    fn set_password(
        &mut self,
        out: &mut Out,
        id: &str,
        password: Option<String>,
    ) -> Result<(), ProtocolError> {
        self.require_moderator(id)?;
        if let Some(p) = &password
            && (p.is_empty() || p.chars().count() > MAX_PASSWORD_CHARS)
        {
            return Err(ProtocolError::new(
                ErrorCode::InvalidPassword,
                "a password is 1-128 characters",
            ));
        }
        let meeting = self.meeting.as_mut().expect("joined");
        meeting.password = password.map(|p| password_hash(&meeting.id, &p));
        // Guesses at the old password told nothing about a new one: the room's budget is full
        // again (who guessed is still remembered).
        meeting.guessing.new_password();
        let msg = ServerMessage::RoomLocked {
            locked: meeting.password.is_some(),
            by: id.to_string(),
        };
        out.send_many(self.member_conns(), &msg);
        Ok(())
    }

    pub(super) fn on_dominant_speaker(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        meeting_id: &str,
        participant: &str,
    ) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        if meeting.id != meeting_id || !meeting.members.contains_key(participant) {
            return;
        }
        if meeting.speakers.dominant(participant, env.now_ms) {
            let conns = self.member_conns();
            out.send_many(
                conns,
                &ServerMessage::DominantSpeaker {
                    id: participant.to_string(),
                },
            );
        }
    }

    pub(super) fn on_video_paused(
        &mut self,
        out: &mut Out,
        meeting_id: &str,
        viewer: &str,
        publisher: String,
        track: String,
        paused: bool,
    ) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        if !meeting.members.contains_key(&publisher) {
            return;
        }
        let Some(conn) = self.present_conn(meeting_id, viewer) else {
            return;
        };
        out.send(
            conn,
            &ServerMessage::VideoPaused {
                id: publisher,
                track,
                paused,
            },
        );
    }

    pub(super) fn on_layers_needed(
        &mut self,
        out: &mut Out,
        meeting_id: &str,
        publisher: &str,
        track: String,
        rids: Vec<String>,
    ) {
        // Away: its page hears it again within the node's retelling.
        if let Some(conn) = self.present_conn(meeting_id, publisher) {
            out.send(conn, &ServerMessage::SendLayers { track, rids });
        }
    }

    /// The connection of member `id` of meeting `meeting_id`, while the meeting runs and the
    /// member is present (not away): where a node's event about them is told.
    fn present_conn(&self, meeting_id: &str, id: &str) -> Option<ConnId> {
        let meeting = self.meeting.as_ref().filter(|m| m.id == meeting_id)?;
        let member = meeting.members.get(id).filter(|m| m.away_since.is_none())?;
        Some(member.conn)
    }

    pub(super) fn update_member(
        &mut self,
        out: &mut Out,
        id: &str,
        change: impl FnOnce(&mut super::Member),
    ) {
        let meeting = self.meeting.as_mut().expect("joined");
        let member = meeting.members.get_mut(id).expect("joined");
        change(member);
        let participant = Self::participant(id, member);
        out.send_many(
            self.member_conns(),
            &ServerMessage::ParticipantUpdated { participant },
        );
    }

    pub(super) fn is_moderator(&self, id: &str) -> bool {
        self.meeting
            .as_ref()
            .and_then(|m| m.members.get(id))
            .is_some_and(|m| m.moderator)
    }

    pub(super) fn require_moderator(&self, id: &str) -> Result<(), ProtocolError> {
        if self.is_moderator(id) {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::NotModerator,
                "only moderators can do that",
            ))
        }
    }

    pub(super) fn member_conn(&self, id: &str) -> Result<ConnId, ProtocolError> {
        self.meeting
            .as_ref()
            .and_then(|m| m.members.get(id))
            .map(|m| m.conn)
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::UnknownParticipant,
                    "no such participant in this meeting",
                )
            })
    }
}
