//! The lobby: newcomers knock, moderators let them in or turn them away.
//!
//! Someone knocking is a socket in [`ConnState::Waiting`]: they are in no meeting, see nobody and
//! are seen only by the meeting's moderators (a knock id and the name they typed). Two things make
//! a newcomer knock: a moderator turned the meeting's lobby on, or (`jwt-host`) no host is in the
//! meeting yet. Early guests of a `jwt-host` room are not let in when the host comes: they knock
//! like everyone else. The lobby is part of the meeting and ends with it.

use edgemeet_protocol::client::Profile;
use edgemeet_protocol::lobby::{Knocker, RefuseReason};
use edgemeet_protocol::server::WaitReason;
use edgemeet_protocol::{ErrorCode, ProtocolError, ServerMessage};

use super::join::Admission;
use super::{ConnId, ConnState, Effect, Env, Out, Room, close};
use crate::config::AuthMode;

impl Room {
    /// Hold `conn` as someone knocking, and show them to the moderators.
    pub(super) fn knock(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        who: Admission,
        reason: WaitReason,
    ) -> Result<(), ProtocolError> {
        if self.knocking().len() >= env.config.limits.max_waiting {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                "too many people are waiting",
            ));
        }
        // Not a participant id: it names a knock, means nothing once they are in or gone.
        let knock_id = crate::crypto::random_hex(env.rng, 8);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Waiting {
                profile: who.profile,
                features: who.features,
                knock_id,
                knocked_at: env.now_ms,
                token: who.token,
                token_profile: who.token_profile,
            };
        }
        out.send(conn, &ServerMessage::Waiting { reason });
        self.send_lobby(out, false);
        Ok(())
    }

    /// Everyone knocking, first knock first.
    pub(super) fn knocking(&self) -> Vec<(ConnId, Knocker)> {
        let mut list: Vec<(u64, ConnId, Knocker)> = self
            .conns
            .iter()
            .filter_map(|(conn, c)| match &c.state {
                ConnState::Waiting {
                    profile,
                    knock_id,
                    knocked_at,
                    ..
                } => Some((
                    *knocked_at,
                    *conn,
                    Knocker {
                        id: knock_id.clone(),
                        name: profile.name.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        list.sort_by_key(|(at, conn, _)| (*at, *conn));
        list.into_iter().map(|(_, c, k)| (c, k)).collect()
    }

    /// Tell the lobby's state: moderators get who knocks, the others only whether it is on
    /// (`to_everyone`; else moderators only).
    pub(super) fn send_lobby(&self, out: &mut Out, to_everyone: bool) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let knocking: Vec<Knocker> = self.knocking().into_iter().map(|(_, k)| k).collect();
        let (mods, others): (Vec<_>, Vec<_>) = meeting
            .order
            .iter()
            .filter_map(|id| meeting.members.get(id))
            .partition(|m| m.moderator);
        out.send_many(
            mods.into_iter().map(|m| m.conn),
            &ServerMessage::Lobby {
                enabled: meeting.lobby,
                knocking,
            },
        );
        if to_everyone {
            out.send_many(
                others.into_iter().map(|m| m.conn),
                &ServerMessage::Lobby {
                    enabled: meeting.lobby,
                    knocking: Vec::new(),
                },
            );
        }
    }

    /// A moderator turns the lobby on or off. Off lets in everyone knocking: newcomers come
    /// straight in from now on, and those who knocked should not wait behind them.
    pub(super) fn set_lobby(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
        enabled: bool,
    ) -> Result<(), ProtocolError> {
        self.require_moderator(id)?;
        let meeting = self.meeting.as_mut().expect("joined");
        let was = std::mem::replace(&mut meeting.lobby, enabled);
        self.send_lobby(out, true);
        if was && !enabled {
            self.admit_knockers(env, out, None)?;
        }
        Ok(())
    }

    /// A moderator lets in one person knocking (`Some(knock id)`) or everyone knocking.
    pub(super) fn admit_knockers(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        target: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let chosen = self.chosen_knockers(target)?;
        let mut full = false;
        for conn in chosen {
            if self.participant_count() >= env.config.limits.room_capacity {
                full = true;
                break;
            }
            let Some(ConnState::Waiting {
                profile,
                features,
                token,
                token_profile,
                ..
            }) = self.conns.get(&conn).map(|c| c.state.clone())
            else {
                continue;
            };
            let who = self.admission_of_knocker(env, profile, features, token, token_profile);
            self.admit(env, out, conn, who);
        }
        self.send_lobby(out, false);
        if full {
            return Err(ProtocolError::new(ErrorCode::RoomFull, "the room is full"));
        }
        Ok(())
    }

    /// A moderator turns away one person knocking (`Some(knock id)`) or everyone knocking.
    pub(super) fn refuse_knockers(
        &mut self,
        out: &mut Out,
        target: Option<&str>,
    ) -> Result<(), ProtocolError> {
        for conn in self.chosen_knockers(target)? {
            self.turn_away(out, conn, RefuseReason::Moderator);
        }
        self.send_lobby(out, false);
        Ok(())
    }

    /// The meeting ended (its last participant left) with people knocking: they are told. In
    /// `jwt-host` rooms they wait on for the next host, as early guests of the next meeting.
    pub(super) fn on_meeting_gone(&mut self, env: &Env, out: &mut Out) {
        let host_room = env
            .config
            .tenant(&self.address.tenant)
            .is_some_and(|t| t.auth == AuthMode::JwtHost);
        let knocking: Vec<ConnId> = self.knocking().into_iter().map(|(c, _)| c).collect();
        if host_room {
            out.send_many(
                knocking,
                &ServerMessage::Waiting {
                    reason: WaitReason::HostAbsent,
                },
            );
            return;
        }
        for conn in knocking {
            self.turn_away(out, conn, RefuseReason::MeetingEnded);
        }
    }

    /// A host came to a `jwt-host` room where nobody held the role: those who waited for one
    /// now knock at the host's door.
    pub(super) fn host_arrived(&mut self, out: &mut Out) {
        let knocking: Vec<ConnId> = self.knocking().into_iter().map(|(c, _)| c).collect();
        out.send_many(
            knocking,
            &ServerMessage::Waiting {
                reason: WaitReason::Lobby,
            },
        );
    }

    fn turn_away(&mut self, out: &mut Out, conn: ConnId, reason: RefuseReason) {
        out.send(conn, &ServerMessage::Refused { reason });
        let (code, why) = match reason {
            RefuseReason::Moderator => (close::REFUSED, "refused"),
            RefuseReason::MeetingEnded => (close::MEETING_ENDED, "meeting ended"),
        };
        out.0.push(Effect::Close {
            conn,
            code,
            reason: why.into(),
        });
        self.conns.remove(&conn);
    }

    fn chosen_knockers(&self, target: Option<&str>) -> Result<Vec<ConnId>, ProtocolError> {
        let all = self.knocking();
        let chosen: Vec<ConnId> = all
            .into_iter()
            .filter(|(_, k)| target.is_none_or(|t| t == k.id))
            .map(|(c, _)| c)
            .collect();
        if target.is_some() && chosen.is_empty() {
            return Err(ProtocolError::new(
                ErrorCode::UnknownParticipant,
                "nobody with that knock id is waiting",
            ));
        }
        Ok(chosen)
    }

    /// Someone let in from the lobby: a guest of a token room, or anyone of an open room
    /// (whose role the room's moderation setting decides at admission).
    fn admission_of_knocker(
        &self,
        env: &Env,
        profile: Profile,
        features: Vec<String>,
        token: bool,
        token_profile: Profile,
    ) -> Admission {
        let open = env
            .config
            .tenant(&self.address.tenant)
            .is_some_and(|t| t.auth == AuthMode::Open);
        Admission {
            profile,
            moderator: open,
            host: false,
            token,
            features,
            token_profile,
        }
    }
}
