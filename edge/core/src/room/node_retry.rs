//! No node free: a room that needs a media node and got none (all dead or draining) asks again
//! with a bounded backoff, so that a node coming back (or a new one registering) takes the room
//! without anyone acting. Meanwhile the pages have heard `no_media_node` once, and show it until
//! a grant for the new node arrives; a recording waits for the node (a further file there).

use edgemeet_protocol::{ErrorCode, ServerMessage};

use super::media::Mode;
use super::{Effect, Env, Out, Room};
use crate::registry::Need;

/// The first retry comes this long after a refusal; each next one waits twice as long...
pub const NODE_RETRY_FIRST_MS: u64 = 500;
/// ...up to this: a node that registers is taken within this long.
pub const NODE_RETRY_MAX_MS: u64 = 4_000;

/// `node_retry`'s time while the host is asked (no alarm for it).
const ASKED: u64 = u64::MAX;

/// The wait before retry number `attempt` (0-based).
pub fn node_retry_delay_ms(attempt: u32) -> u64 {
    NODE_RETRY_FIRST_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(NODE_RETRY_MAX_MS)
}

impl Room {
    /// The host found no node: try again later (the pages hear it the first time only).
    pub(super) fn retry_node_later(&mut self, env: &Env, out: &mut Out) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        let media = &mut meeting.media;
        let attempt = media.node_retry.map_or(0, |(_, n)| n);
        media.node_retry = Some((env.now_ms + node_retry_delay_ms(attempt), attempt + 1));
        if attempt == 0 {
            let err = ServerMessage::Error {
                code: ErrorCode::NoMediaNode,
                message: "no media node is available for this room right now; waiting for one"
                    .into(),
                request: None,
            };
            out.send_many(self.member_conns(), &err);
        }
    }

    /// When the room asks for a node again, if it waits for one.
    pub(super) fn node_retry_at(&self) -> Option<u64> {
        self.meeting
            .as_ref()
            .and_then(|m| m.media.node_retry)
            .map(|(at, _)| at)
            .filter(|at| *at != ASKED)
    }

    /// The alarm: ask for a node again if it is time and the room still needs one.
    pub(super) fn on_node_retry_alarm(&mut self, env: &Env, out: &mut Out) {
        let location = self.room_location();
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        let media = &mut meeting.media;
        let Some((at, _)) = media.node_retry else {
            return;
        };
        let wants_node = match media.mode {
            Mode::None => false,
            Mode::P2p { .. } => env.config.p2p_standby,
            Mode::Sfu => true,
        };
        if !wants_node || media.node.is_some() {
            media.node_retry = None;
            return;
        }
        if at > env.now_ms || media.node_requested {
            return;
        }
        media.node_requested = true;
        // Asked: no alarm until the answer (a refusal sets the next time).
        media.node_retry = media.node_retry.map(|(_, n)| (ASKED, n));
        out.0.push(Effect::RequestNode {
            location,
            need: Need::Media,
        });
    }
}
