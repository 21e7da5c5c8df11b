//! Media mode: P2P for exactly two, the room's media node for three or more, back to P2P a while
//! after the room returns to two. Also the node grants (tokens) and the P2P signal relay.
//!
//! A pair in P2P already has the room's node as a standby: each browser holds a connection to it
//! with its tracks pushed but not sending, so a third join only turns senders on instead of
//! connecting everyone from scratch. No media reaches the node while the room is P2P.

use edgemeet_protocol::node::{NODE_TOKEN_ISSUER, NodeTokenClaims};
use edgemeet_protocol::server::{MediaMode, NodeGrant, ParticipantTracks};
use edgemeet_protocol::{ErrorCode, ParticipantId, ProtocolError, ServerMessage};
use serde::{Deserialize, Serialize};

use super::{Effect, Env, Member, NodeScope, Out, Room};
use crate::registry::{Need, NodeInfo};

/// The room's media mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[default]
    None,
    /// `initiator` sends the first offer (the newer of the two).
    P2p {
        other: ParticipantId,
        initiator: ParticipantId,
    },
    Sfu,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct MediaState {
    pub(super) mode: Mode,
    pub(super) node: Option<NodeInfo>,
    pub(super) node_requested: bool,
    /// When the room, back to two, returns to P2P.
    return_at: Option<u64>,
    /// Nodes this meeting used before its current one (a pair without standby lets its node
    /// go): grants for them may still be alive, so a leave revokes there too.
    #[serde(default)]
    pub(super) former_nodes: Vec<NodeInfo>,
    /// The room is moving off its node for this reason: the next node assigned is announced
    /// with `node_moved` (`room/failover.rs`).
    #[serde(default)]
    pub(super) moving: Option<edgemeet_protocol::server::MoveReason>,
    /// When the room last asked the host to check its node after a page's report.
    #[serde(default)]
    pub(super) probed_at: Option<u64>,
    /// A pair whose direct path failed (`direct_failed`): while those two are the room, it stays
    /// on its node instead of returning to P2P.
    #[serde(default)]
    pub(super) direct_failed: Option<(ParticipantId, ParticipantId)>,
    /// No node was free: when to ask again, and how many times it was refused
    /// (`room/node_retry.rs`).
    #[serde(default)]
    pub(super) node_retry: Option<(u64, u32)>,
    /// The node asked for must have a composer free (`room/composer_move.rs`).
    #[serde(default)]
    pub(super) composer_wanted: bool,
    /// A node the room left for a composer, still working: when to close the meeting there (once
    /// the pages have switched), and the node.
    #[serde(default)]
    pub(super) release_old: Option<(u64, NodeInfo)>,
}

impl MediaState {
    pub(super) fn return_at(&self) -> Option<u64> {
        self.return_at
    }
}

pub(super) enum NodeScopeFor {
    Participant(ParticipantId),
    Meeting,
}

impl Room {
    /// Recompute the mode after a join or leave (or when the return alarm fires with `returning`).
    /// Returns whether it changed; the caller announces it.
    pub(super) fn plan_media(&mut self, env: &mut Env, out: &mut Out, returning: bool) -> bool {
        let delay = env.config.p2p_return_delay_ms;
        let now = env.now_ms;
        let Some(meeting) = self.meeting.as_mut() else {
            return false;
        };
        let media = &mut meeting.media;
        let n = meeting.order.len();
        // A failed direct path counts only while both of that pair are here.
        if let Some((a, b)) = &media.direct_failed
            && !(meeting.members.contains_key(a) && meeting.members.contains_key(b))
        {
            media.direct_failed = None;
        }
        // A recording or a livestream keeps the room on its node, whatever the count; so does a
        // pair that could not connect directly.
        let want_sfu = n >= 3
            || (n >= 1 && (meeting.recording.is_some() || meeting.livestream.is_some()))
            || (n == 2 && media.direct_failed.is_some());
        let target = match (n, &media.mode) {
            (0, _) => Mode::None,
            _ if want_sfu => Mode::Sfu,
            (1, _) => Mode::None,
            (2, Mode::Sfu) if !returning => {
                if media.return_at.is_none() {
                    media.return_at = Some(now + delay);
                }
                Mode::Sfu
            }
            (2, Mode::P2p { .. }) => media.mode.clone(),
            _ => Mode::P2p {
                other: meeting.order[0].clone(),
                initiator: meeting.order[1].clone(),
            },
        };
        if target != Mode::Sfu || n != 2 || want_sfu {
            media.return_at = None;
        }
        if target == media.mode {
            return false;
        }
        // The node (and everyone's standby session on it) stays while two or more are here,
        // unless standbys are off.
        let leaving_node = match target {
            Mode::None => true,
            Mode::P2p { .. } => !env.config.p2p_standby,
            Mode::Sfu => false,
        };
        media.mode = target;
        if leaving_node {
            let node = media.node.take();
            media.node_requested = false;
            media.composer_wanted = false;
            for m in meeting.members.values_mut() {
                m.tracks = None;
            }
            if let Some(node) = node {
                if !meeting.media.former_nodes.iter().any(|n| n.id == node.id) {
                    meeting.media.former_nodes.push(node.clone());
                }
                let id = meeting.id.clone();
                self.push_close(env, out, node, id, NodeScope::Meeting);
            }
        }
        let meeting = self.meeting.as_mut().expect("checked above");
        let wants_node = match meeting.media.mode {
            Mode::None => false,
            Mode::P2p { .. } => env.config.p2p_standby,
            Mode::Sfu => true,
        };
        if wants_node && meeting.media.node.is_none() && !meeting.media.node_requested {
            meeting.media.node_requested = true;
            let location = meeting
                .order
                .iter()
                .filter_map(|id| meeting.members.get(id))
                .find_map(|m| {
                    self.conns
                        .get(&m.conn)
                        .and_then(|c| c.client.location.clone())
                });
            out.0.push(Effect::RequestNode {
                location,
                need: Need::Media,
            });
        }
        true
    }

    pub(super) fn on_media_alarm(&mut self, env: &mut Env, out: &mut Out) {
        let due = self
            .meeting
            .as_ref()
            .and_then(|m| m.media.return_at)
            .is_some_and(|at| at <= env.now_ms);
        if due {
            if let Some(m) = self.meeting.as_mut() {
                m.media.return_at = None;
            }
            if self.plan_media(env, out, true) {
                self.announce_media(env, out, None);
            }
        }
    }

    /// A page of the P2P pair says their direct path has not recovered: the pair moves to the
    /// node (their standby links there only turn their senders on). The second page's report,
    /// arriving after the move, changes nothing.
    pub(super) fn direct_failed(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
    ) -> Result<(), ProtocolError> {
        let media = &mut self.meeting.as_mut().ok_or_else(not_p2p)?.media;
        match &media.mode {
            Mode::P2p { other, initiator } if id == other || id == initiator => {
                media.direct_failed = Some((other.clone(), initiator.clone()));
            }
            Mode::Sfu
                if media
                    .direct_failed
                    .as_ref()
                    .is_some_and(|(a, b)| a == id || b == id) =>
            {
                return Ok(());
            }
            _ => return Err(not_p2p()),
        }
        self.update_media(env, out);
        Ok(())
    }

    /// Re-plan after a leave and tell everyone if the mode changed.
    pub(super) fn update_media(&mut self, env: &mut Env, out: &mut Out) {
        if self.plan_media(env, out, false) {
            self.announce_media(env, out, None);
        }
    }

    /// Send each participant (but `skip`) its view of the current mode.
    pub(super) fn announce_media(&self, env: &mut Env, out: &mut Out, skip: Option<&str>) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        for id in meeting.order.iter().filter(|id| Some(id.as_str()) != skip) {
            let media = self.media_view(env, id);
            out.send(
                meeting.members[id].conn,
                &ServerMessage::MediaMode { media },
            );
        }
    }

    /// What participant `id` should do about media now.
    pub(super) fn media_view(&self, env: &mut Env, id: &str) -> MediaMode {
        let Some(meeting) = self.meeting.as_ref() else {
            return MediaMode::None;
        };
        match &meeting.media.mode {
            Mode::None => MediaMode::None,
            Mode::P2p { other, initiator } => {
                let peer = if other == id {
                    initiator.clone()
                } else {
                    other.clone()
                };
                MediaMode::P2p {
                    peer,
                    initiator: initiator == id,
                    standby: meeting
                        .media
                        .node
                        .as_ref()
                        .and_then(|n| self.grant(env, n, id)),
                }
            }
            Mode::Sfu => MediaMode::Sfu {
                node: meeting
                    .media
                    .node
                    .as_ref()
                    .and_then(|n| self.grant(env, n, id)),
            },
        }
    }

    fn grant(&self, env: &mut Env, node: &NodeInfo, sub: &str) -> Option<NodeGrant> {
        let meeting = self.meeting.as_ref()?;
        let expires_at = env.now_ms + env.config.node_token_ttl_ms;
        let token = self.node_token(env, node, &meeting.id, sub)?;
        Some(NodeGrant {
            node_id: node.id.clone(),
            url: node.url.clone(),
            token,
            expires_at,
        })
    }

    pub(super) fn node_token(
        &self,
        env: &Env,
        node: &NodeInfo,
        meeting_id: &str,
        sub: &str,
    ) -> Option<String> {
        let secret = env.config.node_secret.as_ref()?;
        let claims = NodeTokenClaims {
            iss: NODE_TOKEN_ISSUER.into(),
            aud: node.id.clone(),
            room: meeting_id.to_string(),
            sub: sub.to_string(),
            route: self.address.route.clone(),
            iat: env.now_ms / 1000,
            exp: (env.now_ms + env.config.node_token_ttl_ms) / 1000,
        };
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).ok()
    }

    pub(super) fn push_close(
        &self,
        env: &Env,
        out: &mut Out,
        node: NodeInfo,
        meeting_id: String,
        scope: NodeScope,
    ) {
        if let Some(token) = self.node_token(env, &node, &meeting_id, "edge") {
            out.0.push(Effect::CloseOnNode {
                node,
                meeting_id,
                scope,
                token,
            });
        }
    }

    /// Tell the node to drop the whole meeting's sessions, or a participant's: then every node
    /// the meeting used closes them and revokes the participant's grants (the node refuses them
    /// until they expire).
    pub(super) fn close_on_node(&self, env: &Env, out: &mut Out, scope: NodeScopeFor) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        match scope {
            NodeScopeFor::Meeting => {
                if let Some(node) = meeting.media.node.clone() {
                    self.push_close(env, out, node, meeting.id.clone(), NodeScope::Meeting);
                }
            }
            NodeScopeFor::Participant(id) => {
                let current = meeting.media.node.iter();
                let former = meeting
                    .media
                    .former_nodes
                    .iter()
                    .filter(|n| meeting.media.node.as_ref().is_none_or(|c| c.id != n.id));
                for node in current.chain(former) {
                    let scope = NodeScope::Participant(id.clone());
                    self.push_close(env, out, node.clone(), meeting.id.clone(), scope);
                }
            }
        }
    }

    pub(super) fn on_node_assigned(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        node: Option<NodeInfo>,
    ) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        meeting.media.node_requested = false;
        if std::mem::take(&mut meeting.media.composer_wanted)
            && !self.composer_node_assigned(env, out, node.as_ref())
        {
            return;
        }
        let meeting = self.meeting.as_mut().expect("checked above");
        let in_sfu = match meeting.media.mode {
            Mode::None => return,
            Mode::P2p { .. } if !env.config.p2p_standby => return,
            Mode::P2p { .. } => false,
            Mode::Sfu => true,
        };
        match node {
            // A pair in P2P without a standby node is fine: the node is asked for again when
            // the room moves to it.
            None if !in_sfu => {}
            Some(node) => {
                meeting.media.node = Some(node);
                meeting.media.node_retry = None;
                // A pair's standby moving is nothing the people in a direct call notice.
                if let Some(reason) = meeting.media.moving.take()
                    && in_sfu
                {
                    let conns = self.member_conns();
                    out.send_many(conns, &ServerMessage::NodeMoved { reason });
                }
                self.announce_media(env, out, None);
                self.start_recording_on_node(env, out);
                self.start_livestream_on_node(env, out);
            }
            None => {
                // Asked again later; a move (`moving` kept) is announced when a node comes. A
                // recording that never had a node fails; one that moves waits for the next.
                if meeting.media.moving.is_none() && meeting.media.node_retry.is_none() {
                    let id = meeting.id.clone();
                    self.on_recording_failed(env, out, &id);
                    self.on_livestream_failed(env, out, &id);
                }
                self.retry_node_later(env, out);
            }
        }
    }

    /// P2P: pass an SDP/ICE payload to the other peer, and only to them.
    pub(super) fn relay_signal(
        &self,
        out: &mut Out,
        from: &str,
        to: &str,
        payload: serde_json::Value,
    ) -> Result<(), ProtocolError> {
        let meeting = self.meeting.as_ref().ok_or_else(not_p2p)?;
        let Mode::P2p { other, initiator } = &meeting.media.mode else {
            return Err(not_p2p());
        };
        let pair =
            |a: &str, b: &str| (a == other && b == initiator) || (a == initiator && b == other);
        if !pair(from, to) {
            return Err(ProtocolError::new(
                ErrorCode::UnknownParticipant,
                "signals go to your P2P peer only",
            ));
        }
        out.send(
            meeting.members[to].conn,
            &ServerMessage::Signal {
                from: from.to_string(),
                payload,
            },
        );
        Ok(())
    }

    pub(super) fn refresh_grant(
        &self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
    ) -> Result<(), ProtocolError> {
        let meeting = self.meeting.as_ref().ok_or_else(not_sfu)?;
        if meeting.media.mode == Mode::None {
            return Err(not_sfu());
        }
        if meeting.media.node.is_none() {
            return Err(ProtocolError::new(
                ErrorCode::NoMediaNode,
                "no media node yet",
            ));
        }
        let media = self.media_view(env, id);
        out.send(
            meeting.members[id].conn,
            &ServerMessage::MediaMode { media },
        );
        Ok(())
    }

    /// The room has a node for this participant: its media goes there, or a standby waits there.
    pub(super) fn on_node(&self) -> Result<(), ProtocolError> {
        match self.meeting.as_ref() {
            Some(m) if m.media.mode != Mode::None && m.media.node.is_some() => Ok(()),
            _ => Err(not_sfu()),
        }
    }

    pub(super) fn tracks_of(id: &str, m: &Member) -> Option<ParticipantTracks> {
        m.tracks
            .as_ref()
            .map(|(session_id, tracks)| ParticipantTracks {
                participant: id.to_string(),
                session_id: session_id.clone(),
                tracks: tracks.clone(),
            })
    }
}

fn not_p2p() -> ProtocolError {
    ProtocolError::new(ErrorCode::NotInP2p, "the room is not in P2P mode")
}

fn not_sfu() -> ProtocolError {
    ProtocolError::new(ErrorCode::NotInSfu, "the room is not using a media node")
}
