//! Livestreaming (issue 21): a moderator (with the `livestreaming` feature in jwt modes) starts
//! it with an RTMP URL and stream key; the room moves to its media node (even with one or two),
//! which composes the meeting and streams it. Everyone is told (the page shows LIVE). Refused
//! while anyone has E2EE on; turning E2EE on stops it; the room's end stops it.
//!
//! The key is held in memory only while the stream runs (never in a stored snapshot, never sent
//! to a page): a room that moves to another node starts the stream there with it, and one that
//! lost it (a Worker's room woke from hibernation) ends the stream and says so. The node draws
//! people's names on their tiles: the scene (ids, names, speaker, screen) goes with the start
//! and again whenever it changes.

use edgemeet_protocol::client::StreamKey;
use edgemeet_protocol::node::{CompositionScene, ScenePerson};
use edgemeet_protocol::{ErrorCode, ParticipantId, ProtocolError, ServerMessage};
use serde::{Deserialize, Serialize};

use super::{Effect, Env, LivestreamCall, Out, Room};

const MAX_URL_CHARS: usize = 1024;
/// A stream that drops is started again this many times in a meeting, then ended.
const MAX_RESTARTS: u32 = 3;
const MAX_KEY_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Livestream {
    by: ParticipantId,
    /// The ingest URL and key, in memory only: for the node the room has, and the next one.
    #[serde(skip)]
    target: Option<(String, StreamKey)>,
    started_on_node: bool,
    /// Times it dropped and was started again.
    #[serde(default)]
    restarts: u32,
    /// The room moved to another node for a composer once for this stream: a second refusal
    /// ends it.
    #[serde(default)]
    moved_for_composer: bool,
}

impl Livestream {
    /// A node refused to compose the stream: whether the room may move for it (once), and the
    /// stream is to start again on the node the room gets.
    pub(super) fn refused_for_composer(&mut self) -> bool {
        self.started_on_node = false;
        !std::mem::replace(&mut self.moved_for_composer, true)
    }

    /// Waiting for a node with a composer.
    pub(super) fn awaits_composer(&self) -> bool {
        !self.started_on_node
    }
}

/// `rtmp://host[:port]/app...` (or `rtmps://`): the node checks the rest.
fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"));
    url.len() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && rest.is_some_and(|r| r.split('/').next().is_some_and(|host| !host.is_empty()))
}

impl Room {
    pub(super) fn start_livestream(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        id: &str,
        url: String,
        key: StreamKey,
    ) -> Result<(), ProtocolError> {
        self.may_take_media_out(
            env,
            id,
            "livestreaming",
            ProtocolError::new(
                ErrorCode::LivestreamNotAllowed,
                "only moderators allowed to stream can start a livestream",
            ),
            ProtocolError::new(
                ErrorCode::LivestreamE2ee,
                "livestreaming is off while anyone uses end-to-end encryption",
            ),
        )?;
        let meeting = self.meeting.as_mut().expect("joined");
        if meeting.livestream.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::LivestreamActive,
                "the meeting is already streamed",
            ));
        }
        if !valid_url(&url) || key.0.is_empty() || key.0.len() > MAX_KEY_CHARS {
            return Err(ProtocolError::new(
                ErrorCode::InvalidLivestream,
                "expected an rtmp:// URL and a stream key",
            ));
        }
        meeting.livestream = Some(Livestream {
            by: id.to_string(),
            target: Some((url, key)),
            started_on_node: false,
            restarts: 0,
            moved_for_composer: false,
        });
        out.send_many(
            self.member_conns(),
            &ServerMessage::Livestream {
                active: true,
                by: Some(id.to_string()),
                restarting: false,
            },
        );
        self.update_media(env, out);
        self.start_livestream_on_node(env, out);
        Ok(())
    }

    /// Once the room has a node, start the stream there.
    pub(super) fn start_livestream_on_node(&mut self, env: &mut Env, out: &mut Out) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let (Some(node), Some(live)) = (meeting.media.node.clone(), meeting.livestream.as_ref())
        else {
            return;
        };
        if live.started_on_node {
            return;
        }
        let meeting_id = meeting.id.clone();
        let Some((url, stream_key)) = live.target.clone() else {
            // Moved after the key was forgotten (a hibernated room): it cannot go on.
            self.on_livestream_failed(env, out, &meeting_id);
            return;
        };
        let Some(token) = self.node_token(env, &node, &meeting_id, "edge") else {
            return;
        };
        let scene = self.scene_sent();
        let live = self
            .meeting
            .as_mut()
            .and_then(|m| m.livestream.as_mut())
            .expect("checked above");
        live.started_on_node = true;
        out.0.push(Effect::LivestreamOnNode {
            node,
            meeting_id,
            token,
            call: LivestreamCall::Start {
                url,
                stream_key,
                scene,
            },
        });
    }

    /// Stop the livestream (`by` a moderator, or `None` when it stops by itself).
    pub(super) fn stop_livestream(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        by: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let meeting = self.meeting.as_mut().expect("joined");
        let live = meeting
            .livestream
            .take()
            .ok_or_else(|| ProtocolError::new(ErrorCode::NotLive, "nothing is being streamed"))?;
        if live.started_on_node
            && let Some(node) = meeting.media.node.clone()
        {
            let meeting_id = meeting.id.clone();
            if let Some(token) = self.node_token(env, &node, &meeting_id, "edge") {
                out.0.push(Effect::LivestreamOnNode {
                    node,
                    meeting_id,
                    token,
                    call: LivestreamCall::Stop,
                });
            }
        }
        out.send_many(
            self.member_conns(),
            &ServerMessage::Livestream {
                active: false,
                by: by.map(str::to_string),
                restarting: false,
            },
        );
        self.update_media(env, out);
        Ok(())
    }

    pub(super) fn on_livestream_failed(&mut self, env: &mut Env, out: &mut Out, meeting_id: &str) {
        self.end_failed_livestream(
            env,
            out,
            meeting_id,
            "the livestream could not be started or went down",
        );
    }

    /// The stream ends, and everyone hears why.
    pub(super) fn end_failed_livestream(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        meeting_id: &str,
        why: &str,
    ) {
        let matches = self
            .meeting
            .as_ref()
            .is_some_and(|m| m.id == meeting_id && m.livestream.is_some());
        if matches && self.stop_livestream(env, out, None).is_ok() {
            let err = ServerMessage::Error {
                code: ErrorCode::LivestreamFailed,
                message: why.into(),
                request: Some("start_livestream".into()),
            };
            out.send_many(self.member_conns(), &err);
        }
    }

    /// The node's stream ended on its own (the ingest went away): started again, and the room
    /// told, up to `MAX_RESTARTS` times; then it ends with `livestream_failed`.
    pub(super) fn on_livestream_dropped(&mut self, env: &mut Env, out: &mut Out, meeting_id: &str) {
        let Some(live) = self
            .meeting
            .as_mut()
            .filter(|m| m.id == meeting_id)
            .and_then(|m| m.livestream.as_mut())
            .filter(|l| l.started_on_node)
        else {
            return;
        };
        if live.restarts >= MAX_RESTARTS {
            self.on_livestream_failed(env, out, meeting_id);
            return;
        }
        live.restarts += 1;
        live.started_on_node = false;
        out.send_many(
            self.member_conns(),
            &ServerMessage::Livestream {
                active: true,
                by: None,
                restarting: true,
            },
        );
        self.start_livestream_on_node(env, out);
    }

    /// The room left its node: the stream starts again on the next one.
    pub(super) fn livestream_needs_new_node(&mut self) {
        if let Some(live) = self.meeting.as_mut().and_then(|m| m.livestream.as_mut()) {
            live.started_on_node = false;
        }
    }

    pub(super) fn is_live(&self) -> bool {
        self.meeting
            .as_ref()
            .is_some_and(|m| m.livestream.is_some())
    }

    /// After every input: a changed scene (someone came or left, a new name, a new speaker, a
    /// screen shared) goes to the node while it composes the meeting (a livestream, a composite
    /// recording).
    pub(super) fn sync_composition_scene(&mut self, env: &mut Env, out: &mut Out) {
        let live = self
            .meeting
            .as_ref()
            .and_then(|m| m.livestream.as_ref())
            .is_some_and(|l| l.started_on_node);
        if !live && !self.records_composite() {
            return;
        }
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let Some(node) = meeting.media.node.clone() else {
            return;
        };
        let scene = self.scene();
        if meeting.composition_scene.as_ref() == Some(&scene) {
            return;
        }
        let meeting_id = meeting.id.clone();
        let Some(token) = self.node_token(env, &node, &meeting_id, "edge") else {
            return;
        };
        if let Some(m) = self.meeting.as_mut() {
            m.composition_scene = Some(scene.clone());
        }
        out.0.push(Effect::LivestreamOnNode {
            node,
            meeting_id,
            token,
            call: LivestreamCall::Scene(scene),
        });
    }

    /// The scene now, remembered as the one the node's compositions have.
    pub(super) fn scene_sent(&mut self) -> CompositionScene {
        let scene = self.scene();
        if let Some(m) = self.meeting.as_mut() {
            m.composition_scene = Some(scene.clone());
        }
        scene
    }

    /// Who the stream shows: everyone in join order with their names, the dominant speaker,
    /// the first person sharing a screen.
    fn scene(&self) -> CompositionScene {
        let Some(meeting) = self.meeting.as_ref() else {
            return CompositionScene::default();
        };
        let people = meeting
            .order
            .iter()
            .filter_map(|id| {
                let m = meeting.members.get(id)?;
                Some(ScenePerson {
                    id: id.clone(),
                    name: m.profile.name.clone().unwrap_or_default(),
                })
            })
            .collect();
        let screen = meeting.order.iter().find(|id| {
            meeting.members.get(*id).is_some_and(|m| {
                m.tracks
                    .as_ref()
                    .is_some_and(|(_, t)| t.iter().any(|t| t.source == "screen"))
            })
        });
        CompositionScene {
            people,
            speaker: meeting.speakers.current().map(str::to_string),
            screen: screen.cloned(),
            grid: meeting.composition_grid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_url;

    #[test]
    fn urls() {
        assert!(valid_url("rtmp://a.rtmp.youtube.com/live2"));
        assert!(valid_url("rtmp://127.0.0.1:1935/live"));
        assert!(valid_url("rtmps://live-api-s.facebook.com:443/rtmp/"));
        assert!(!valid_url("http://example.com/live"));
        assert!(!valid_url("rtmp:///live"));
        assert!(!valid_url("rtmp://host/live key"));
        assert!(!valid_url(&format!("rtmp://h/{}", "a".repeat(2000))));
    }
}
