//! Surviving a dropped socket: a participant whose connection is lost is *away*, not gone, for
//! `limits.resume_window_ms` after it was last heard from, and comes back on a new socket with the
//! resume secret its last `welcome` gave: same id, role, tracks, no password. Sockets not heard
//! from for `limits.idle_timeout_ms` are dropped (a suspended laptop leaves no ghost).

use edgemeet_protocol::client::ResumeSecret;
use edgemeet_protocol::server::{LeaveReason, ResumeGrant};
use edgemeet_protocol::{ErrorCode, ParticipantId, ProtocolError, ServerMessage};
use sha2::{Digest, Sha256};

use super::{ConnId, ConnState, Effect, Env, Out, Room, close};
use crate::EdgeConfig;
use crate::crypto::{constant_time_eq, random_hex};

/// What the room keeps of a resume secret: its SHA-256 (the secret has 128 random bits, so a
/// plain hash is enough), so a stored snapshot (the Worker's) cannot be used to resume.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn refused() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::ResumeFailed,
        "cannot resume: join the room again",
    )
}

impl Room {
    /// A fresh one-use resume secret for `id`; the one before stops working.
    pub(super) fn new_resume_secret(&mut self, env: &mut Env, id: &str) -> Option<ResumeGrant> {
        let secret = random_hex(env.rng, 16);
        let member = self.meeting.as_mut()?.members.get_mut(id)?;
        member.resume_hash = Some(secret_hash(&secret));
        Some(ResumeGrant {
            secret: ResumeSecret(secret),
            window_ms: env.config.limits.resume_window_ms,
        })
    }

    /// The host answered a ping for this socket on its own.
    pub(super) fn heard(&mut self, conn: ConnId, at_ms: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_heard_ms = c.last_heard_ms.max(at_ms);
        }
    }

    /// A socket dropped without a close frame (or went silent): its participant is away; a
    /// socket that had not joined simply goes.
    pub(super) fn lose_conn(&mut self, env: &mut Env, out: &mut Out, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ConnState::Joined { id } = c.state.clone() else {
            self.remove_conn(env, out, conn, LeaveReason::Disconnected);
            return;
        };
        let since = c.last_heard_ms;
        self.conns.remove(&conn);
        self.set_away(out, &id, Some(since));
    }

    /// Mark `id` away (or back) and tell the others: a roster change, not a leave or join.
    fn set_away(&mut self, out: &mut Out, id: &str, since: Option<u64>) {
        let Some(member) = self.meeting.as_mut().and_then(|m| m.members.get_mut(id)) else {
            return;
        };
        member.away_since = since;
        let own = member.conn;
        let participant = Self::participant(id, member);
        let others = self.member_conns().into_iter().filter(|c| *c != own);
        out.send_many(others, &ServerMessage::ParticipantUpdated { participant });
    }

    /// `resume` on a socket that has not joined: take participant `id`'s place if the secret is
    /// its current one and its window is open.
    pub(super) fn resume(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        id: &ParticipantId,
        secret: &ResumeSecret,
    ) -> Result<(), ProtocolError> {
        let window = env.config.limits.resume_window_ms;
        let member = self.meeting.as_ref().and_then(|m| m.members.get(id));
        // Compared even when there is no such participant: the answer's timing tells nothing.
        let stored = member
            .and_then(|m| m.resume_hash.clone())
            .unwrap_or_default();
        let matches = constant_time_eq(secret_hash(&secret.0).as_bytes(), stored.as_bytes());
        let Some(member) = member.filter(|_| matches && !stored.is_empty()) else {
            return Err(refused());
        };
        if member
            .away_since
            .is_some_and(|since| env.now_ms >= since + window)
        {
            return Err(refused());
        }
        let (old, was_away) = (member.conn, member.away_since.is_some());
        if !was_away && self.conns.remove(&old).is_some() {
            // The page saw its socket die before the edge did: the old one goes quietly.
            out.0.push(Effect::Close {
                conn: old,
                code: close::REPLACED,
                reason: "resumed on another socket".into(),
            });
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Joined { id: id.clone() };
            c.join_by_ms = None;
        }
        if let Some(m) = self.meeting.as_mut().and_then(|m| m.members.get_mut(id)) {
            m.conn = conn;
        }
        if was_away {
            self.set_away(out, id, None);
        }
        self.send_welcome(env, out, id);
        Ok(())
    }

    /// The earliest time a socket turns silent or an away participant's window closes.
    pub(super) fn recovery_deadline(&self, config: &EdgeConfig) -> Option<u64> {
        let limits = &config.limits;
        let silent = self
            .conns
            .values()
            .map(|c| c.last_heard_ms + limits.idle_timeout_ms)
            .min();
        let away = self.meeting.as_ref().and_then(|m| {
            m.members
                .values()
                .filter_map(|p| p.away_since)
                .map(|t| t + limits.resume_window_ms)
                .min()
        });
        silent.into_iter().chain(away).min()
    }

    /// Drop silent sockets (their participants turn away), and let those away too long go.
    pub(super) fn on_recovery_alarm(&mut self, env: &mut Env, out: &mut Out) {
        let limits = &env.config.limits;
        let (idle, window, now) = (limits.idle_timeout_ms, limits.resume_window_ms, env.now_ms);
        let silent: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.last_heard_ms + idle <= now)
            .map(|(id, _)| *id)
            .collect();
        for conn in silent {
            out.0.push(Effect::Close {
                conn,
                code: close::SILENT,
                reason: "silent too long".into(),
            });
            self.lose_conn(env, out, conn);
        }
        let gone: Vec<ParticipantId> = self.meeting.as_ref().map_or_else(Vec::new, |m| {
            m.members
                .iter()
                .filter(|(_, p)| p.away_since.is_some_and(|t| t + window <= now))
                .map(|(id, _)| id.clone())
                .collect()
        });
        for id in gone {
            self.remove_member(env, out, &id, LeaveReason::Disconnected);
        }
    }
}
