//! Roles: who moderates, granting and taking back the role, and ending the meeting for everyone.
//!
//! Open rooms follow the tenant's `moderation`: everyone (soft moderation), or the first to arrive,
//! who may grant the role to others and take it back. Token rooms follow the token, and their
//! moderators may grant and take back the role too. A room with roles always keeps a moderator
//! while anyone is in: the last one cannot give the role up, and when they leave an open
//! `first` room the earliest of those still in takes it over.

use edgemeet_protocol::{ErrorCode, ParticipantId, ProtocolError, ServerMessage};

use super::{ConnId, ConnState, Effect, Env, Out, Room, close};
use crate::config::{AuthMode, Moderation};

impl Room {
    /// An open room where everyone moderates: roles cannot change.
    pub(super) fn everyone_moderates(&self, env: &Env) -> bool {
        env.config
            .tenant(&self.address.tenant)
            .is_some_and(|t| t.auth == AuthMode::Open && t.moderation == Moderation::Everyone)
    }

    fn first_moderates(&self, env: &Env) -> bool {
        env.config
            .tenant(&self.address.tenant)
            .is_some_and(|t| t.auth == AuthMode::Open && t.moderation == Moderation::First)
    }

    /// Whether someone admitted now moderates, given what auth said (`by_auth`): in an open
    /// `first` room only while nobody does.
    pub(super) fn moderator_on_arrival(&self, env: &Env, by_auth: bool) -> bool {
        if !self.first_moderates(env) {
            return by_auth;
        }
        !self
            .meeting
            .as_ref()
            .is_some_and(|m| m.members.values().any(|p| p.moderator))
    }

    pub(super) fn set_moderator(
        &mut self,
        env: &Env,
        out: &mut Out,
        id: &str,
        target: &str,
        moderator: bool,
    ) -> Result<(), ProtocolError> {
        self.require_moderator(id)?;
        if self.everyone_moderates(env) {
            return Err(ProtocolError::new(
                ErrorCode::RolesFixed,
                "everyone moderates in this room",
            ));
        }
        self.member_conn(target)?;
        let meeting = self.meeting.as_ref().expect("joined");
        let moderators = meeting.members.values().filter(|m| m.moderator).count();
        let target_is = meeting.members[target].moderator;
        if target_is == moderator {
            return Ok(());
        }
        if !moderator && moderators <= 1 {
            return Err(ProtocolError::new(
                ErrorCode::RolesFixed,
                "the last moderator keeps the role: grant it to someone else first",
            ));
        }
        self.update_member(out, target, |m| m.moderator = moderator);
        if moderator {
            self.send_lobby_to(out, target);
        }
        Ok(())
    }

    /// After a leave: an open `first` room without a moderator gives the role to the earliest
    /// of those still in.
    pub(super) fn hand_over_moderation(&mut self, env: &Env, out: &mut Out) {
        if !self.first_moderates(env) {
            return;
        }
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        if meeting.members.values().any(|m| m.moderator) {
            return;
        }
        let Some(next) = meeting.order.first().cloned() else {
            return;
        };
        self.update_member(out, &next, |m| m.moderator = true);
        self.send_lobby_to(out, &next);
    }

    /// A new moderator sees the lobby, if there is anything to see.
    fn send_lobby_to(&self, out: &mut Out, id: &str) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let knocking: Vec<_> = self.knocking().into_iter().map(|(_, k)| k).collect();
        if !meeting.lobby && knocking.is_empty() {
            return;
        }
        if let Some(m) = meeting.members.get(id) {
            out.send(
                m.conn,
                &ServerMessage::Lobby {
                    enabled: meeting.lobby,
                    knocking,
                },
            );
        }
    }

    /// A moderator ends the meeting: everyone in it and everyone knocking is told and closed.
    pub(super) fn end_for_all(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
    ) -> Result<(), ProtocolError> {
        self.require_moderator(id)?;
        let everyone: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(
                    c.state,
                    ConnState::Joined { .. } | ConnState::Waiting { .. }
                )
            })
            .map(|(conn, _)| *conn)
            .collect();
        out.send_many(
            everyone.iter().copied(),
            &ServerMessage::MeetingEnded {
                by: ParticipantId::from(id),
            },
        );
        for conn in everyone {
            out.0.push(Effect::Close {
                conn,
                code: close::MEETING_ENDED,
                reason: "meeting ended".into(),
            });
            self.conns.remove(&conn);
        }
        self.end_meeting(env, out);
        Ok(())
    }

    /// A moderator's view after the welcome: the lobby, when it is on or someone knocks.
    pub(super) fn welcome_lobby(&self, out: &mut Out, id: &str) {
        if self.is_moderator(id) {
            self.send_lobby_to(out, id);
        }
    }
}
