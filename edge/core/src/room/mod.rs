//! One room: every socket connected to it, and the meeting while anyone is joined.
//!
//! Hosts feed [`Input`]s with the time and a random source in [`Env`] and carry out the returned
//! [`Effect`]s. The first join makes a meeting with a fresh random id; when the last participant
//! leaves, the meeting (roster, password, speaker stats, media state) is dropped at once.

mod actions;
mod composer_move;
mod e2ee_relay;
mod failover;
mod join;
mod livestream;
mod lobby;
mod media;
mod node_retry;
mod password;
mod recording;
mod resume;
mod roles;

use std::collections::BTreeMap;
use std::sync::Arc;

use edgemeet_protocol::client::{DropboxGrant, MediaState, Profile, TrackInfo};
use edgemeet_protocol::server::{LeaveReason, Participant};
use edgemeet_protocol::{
    ClientMessage, ErrorCode, ParticipantId, ProtocolError, ServerMessage, encode_server,
};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::ratelimit::{FailureWindow, TokenBucket};
use crate::registry::{Location, Need, NodeInfo};
use crate::speaker::SpeakerStats;
use crate::{EdgeConfig, RoomAddress};

pub use composer_move::RELEASE_OLD_NODE_AFTER_MS;
pub use media::Mode;

/// A socket's id, assigned by the host (kept in the socket's attachment on Cloudflare).
pub type ConnId = u64;

/// What the host tells the core about a new socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Keyed hash of the client's address: for per-address password rate limits, never the address.
    pub addr_key: String,
    pub location: Option<Location>,
    /// A token from the socket URL's `?jwt=`.
    pub query_token: Option<String>,
}

/// The context of one call: configuration, the time, and randomness. The core has no other source.
pub struct Env<'a> {
    pub config: &'a EdgeConfig,
    /// Unix time in milliseconds.
    pub now_ms: u64,
    pub rng: &'a mut dyn RngCore,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Open {
        conn: ConnId,
        client: ClientInfo,
    },
    Text {
        conn: ConnId,
        text: String,
    },
    Binary {
        conn: ConnId,
        len: usize,
    },
    /// The peer closed the socket (a close frame), or the host refused it for cause: a leave.
    Closed {
        conn: ConnId,
    },
    /// The connection dropped without a close frame (network gone, peer vanished): the
    /// participant is away and may `resume` on a new socket within the resume window.
    Lost {
        conn: ConnId,
    },
    /// The host answered a ping for the socket without the core (Cloudflare's WebSocket
    /// auto-response) at `at_ms`: it counts as heard from.
    Heard {
        conn: ConnId,
        at_ms: u64,
    },
    /// The alarm set by [`Effect::SetAlarm`] went off.
    Alarm,
    /// Answer to [`Effect::RequestNode`]: the room's media node, or none available.
    NodeAssigned(Option<NodeInfo>),
    /// A media node reports that `participant` is now the loudest.
    DominantSpeaker {
        meeting_id: String,
        participant: ParticipantId,
    },
    /// A media node paused (or resumed) `viewer`'s pull of `publisher`'s video `track` for
    /// bandwidth: told to the viewer only.
    VideoPaused {
        meeting_id: String,
        viewer: ParticipantId,
        publisher: ParticipantId,
        track: String,
        paused: bool,
    },
    /// A media node says which simulcast layers of `publisher`'s video `track` some viewer
    /// needs (dynacast): told to the publisher only.
    LayersNeeded {
        meeting_id: String,
        publisher: ParticipantId,
        track: String,
        rids: Vec<String>,
    },
    /// The media node refused or could not be reached to start a recording.
    RecordingFailed {
        meeting_id: String,
    },
    /// The node's composition of the meeting ended on its own (a livestream: started again, a
    /// few times).
    CompositionEnded {
        meeting_id: String,
        livestream: bool,
        /// The node started it again itself (a composite recording's composer).
        restarted: bool,
    },
    /// The media node refused or could not be reached to start the livestream.
    LivestreamFailed {
        meeting_id: String,
    },
    /// The media node refused the livestream (or the composite recording, `livestream` false)
    /// for lack of a composer (it runs `max_compositions`): the room moves to a node with one
    /// (`room/composer_move.rs`).
    NoComposer {
        meeting_id: String,
        livestream: bool,
    },
    /// The room's media node `node_id` is dead (silent too long, or failed the edge's check) or
    /// drained with `migrate` ([`crate::registry::NodeMove`]): the room moves to another node.
    /// Ignored by a room on another node.
    MoveOffNode {
        node_id: String,
        reason: edgemeet_protocol::server::MoveReason,
    },
    /// The media node started the recording [`RecordStart::recorder`] asked for, and answered
    /// with its delivery-status token: it goes to the recorder's socket, and nowhere else.
    RecordingStarted {
        meeting_id: String,
        recorder: ParticipantId,
        status_token: StatusToken,
        /// The recording's id on the node (from its answer): a move carries the recording on
        /// from it (`RecordStart::continue_from`).
        recording_id: Option<String>,
    },
}

/// A recording's delivery-status token as the node returned it. It is a capability (whoever
/// holds it reads the delivery status, without login), so its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusToken(pub String);

impl std::fmt::Debug for StatusToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusToken(<redacted>)")
    }
}

/// What the media node should close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeScope {
    Participant(ParticipantId),
    Meeting,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a text frame (already encoded, shared between recipients).
    Send {
        conn: ConnId,
        text: Arc<str>,
    },
    /// Close a socket with a WebSocket close code and reason.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// Call `handle(Input::Alarm)` at this time (replaces any earlier alarm).
    SetAlarm {
        at_ms: u64,
    },
    ClearAlarm,
    /// Find a media node for this room and answer with [`Input::NodeAssigned`].
    RequestNode {
        location: Option<Location>,
        /// Any node, or one with a free composer ([`crate::registry::Need`]).
        need: Need,
    },
    /// Tell the room's media node to close sessions; `token` is signed for the edge itself.
    CloseOnNode {
        node: NodeInfo,
        meeting_id: String,
        scope: NodeScope,
        token: String,
    },
    /// Start (with the recorder's Dropbox grant) or stop the meeting's recording on its node.
    /// On failure the host answers with [`Input::RecordingFailed`].
    RecordOnNode {
        node: NodeInfo,
        meeting_id: String,
        token: String,
        /// `Some`: start (with the grant, if the recorder gave one); `None`: stop.
        start: Option<RecordStart>,
    },
    /// Start, re-scene or stop the meeting's livestream on its node (a new scene also reaches
    /// a composite recording). On a failed start the host answers with
    /// [`Input::LivestreamFailed`].
    LivestreamOnNode {
        node: NodeInfo,
        meeting_id: String,
        token: String,
        call: LivestreamCall,
    },
    /// A page reported the room's node unreachable: check it (`GET {url}/healthz`, by
    /// [`crate::node_call::probe`]); if it does not answer, the registry marks it lost
    /// ([`crate::Registry::mark_lost`]) and its rooms get [`Input::MoveOffNode`].
    ProbeNode {
        node: NodeInfo,
    },
    /// The room has no sockets left: the host drops it and any stored copy.
    Ended,
}

/// What a node is told about a livestream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LivestreamCall {
    /// The ingest and its key (never logged: `StreamKey`'s `Debug` is a placeholder), and who
    /// is in the picture.
    Start {
        url: String,
        stream_key: edgemeet_protocol::client::StreamKey,
        scene: edgemeet_protocol::node::CompositionScene,
    },
    Scene(edgemeet_protocol::node::CompositionScene),
    Stop,
}

/// What a node is told when a recording starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStart {
    /// The recorder's Dropbox grant; none where the destination is a local folder.
    pub dropbox: Option<DropboxGrant>,
    /// Who started it (not told to the node): the host hands the node's answer back with
    /// [`Input::RecordingStarted`], for this participant only.
    pub recorder: ParticipantId,
    /// After a move: the meeting's recording on the previous node, whose sealed grant the new
    /// node carries over (the room may no longer hold the grant: a Worker's room forgets it
    /// when it hibernates).
    pub continue_from: Option<String>,
    /// Also one composed video, showing this scene at first (names of the people in it).
    pub scene: Option<edgemeet_protocol::node::CompositionScene>,
    /// A file per person (false: only the composed video).
    pub per_person: bool,
}

/// Close codes sent to browsers.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    /// A text frame that is not UTF-8 (hosts see it before the core does).
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    /// A frame above `limits.max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    pub const KICKED: u16 = 4001;
    /// Nothing heard from the socket for `limits.idle_timeout_ms`: its participant may resume.
    pub const SILENT: u16 = 4002;
    /// The participant resumed on a newer socket.
    pub const REPLACED: u16 = 4003;
    /// A moderator ended the meeting for everyone (or it ended while you knocked).
    pub const MEETING_ENDED: u16 = 4004;
    /// A moderator turned you away from the lobby.
    pub const REFUSED: u16 = 4005;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ConnState {
    /// Open, not joined yet (not the meeting's lobby: that is `Waiting`).
    Lobby,
    /// Knocking: held until a moderator lets them in (`room/lobby.rs`).
    Waiting {
        profile: Profile,
        features: Vec<String>,
        #[serde(default)]
        knock_id: String,
        #[serde(default)]
        knocked_at: u64,
        /// Came with a valid token (a `jwt` room's participant who is no moderator).
        #[serde(default)]
        token: bool,
        #[serde(default)]
        token_profile: Profile,
    },
    Joined {
        id: ParticipantId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Conn {
    client: ClientInfo,
    state: ConnState,
    bucket: TokenBucket,
    password_failures: FailureWindow,
    /// Not joined yet: the socket is closed at this time unless a `join` comes first.
    #[serde(default)]
    join_by_ms: Option<u64>,
    /// When a frame (or an auto-answered ping) last came from the socket.
    #[serde(default)]
    last_heard_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    conn: ConnId,
    profile: Profile,
    moderator: bool,
    /// Joined with a valid token saying moderator (jwt-host: guests may be admitted).
    host: bool,
    features: Vec<String>,
    media: MediaState,
    tracks: Option<(String, Vec<TrackInfo>)>,
    /// The profile fields the participant's token gives: `update_profile` cannot replace them.
    #[serde(default)]
    token_profile: Profile,
    /// The socket dropped: since when nothing has been heard (the resume window counts from it).
    #[serde(default)]
    away_since: Option<u64>,
    /// SHA-256 of the current resume secret (the secret itself is only in the page's memory).
    #[serde(default)]
    resume_hash: Option<String>,
    /// When the hand went up (unix ms), while it is up.
    #[serde(default)]
    hand: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meeting {
    id: String,
    /// Join order: the roster is shown in it.
    order: Vec<ParticipantId>,
    members: BTreeMap<ParticipantId, Member>,
    /// Keyed hash of the password under the meeting id: never kept in clear.
    password: Option<String>,
    guessing: password::PasswordGuard,
    speakers: SpeakerStats,
    media: media::MediaState,
    recording: Option<recording::Recording>,
    #[serde(default)]
    livestream: Option<livestream::Livestream>,
    /// The scene the node's compositions (livestream, composite recording) were last sent;
    /// memory only (after a wake-up it is sent again once).
    #[serde(skip)]
    composition_scene: Option<edgemeet_protocol::node::CompositionScene>,
    /// The composed video's layout a moderator chose: a grid (else the speaker large).
    #[serde(default)]
    composition_grid: bool,
    /// Newcomers knock (`room/lobby.rs`).
    #[serde(default)]
    lobby: bool,
}

/// One room. Serializable so a host can keep it across hibernation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    address: RoomAddress,
    conns: BTreeMap<ConnId, Conn>,
    meeting: Option<Meeting>,
    /// The alarm the host holds for this room (`Effect::SetAlarm`), if any.
    #[serde(default)]
    alarm_at: Option<u64>,
}

/// Effects under construction, with encoding shared between recipients.
#[derive(Default)]
struct Out(Vec<Effect>);

impl Out {
    fn send(&mut self, conn: ConnId, msg: &ServerMessage) {
        self.0.push(Effect::Send {
            conn,
            text: encode_server(msg).into(),
        });
    }

    fn send_many(&mut self, conns: impl IntoIterator<Item = ConnId>, msg: &ServerMessage) {
        let text: Arc<str> = encode_server(msg).into();
        self.0.extend(conns.into_iter().map(|conn| Effect::Send {
            conn,
            text: text.clone(),
        }));
    }

    fn error(&mut self, conn: ConnId, err: ProtocolError, request: Option<&str>) {
        self.send(
            conn,
            &ServerMessage::Error {
                code: err.code,
                message: err.message,
                request: request.map(str::to_string),
            },
        );
    }
}

impl Room {
    pub fn new(address: RoomAddress) -> Self {
        Self {
            address,
            conns: BTreeMap::new(),
            meeting: None,
            alarm_at: None,
        }
    }

    pub fn address(&self) -> &RoomAddress {
        &self.address
    }

    /// No sockets left and nobody away who may come back: the host may drop the room.
    pub fn is_ended(&self) -> bool {
        self.conns.is_empty() && self.meeting.is_none()
    }

    /// Participants currently joined.
    pub fn participant_count(&self) -> usize {
        self.meeting.as_ref().map_or(0, |m| m.members.len())
    }

    /// The current meeting's id, if anyone is joined.
    pub fn meeting_id(&self) -> Option<&str> {
        self.meeting.as_ref().map(|m| m.id.as_str())
    }

    pub fn mode(&self) -> Option<&Mode> {
        self.meeting.as_ref().map(|m| &m.media.mode)
    }

    pub fn handle(&mut self, env: &mut Env, input: Input) -> Vec<Effect> {
        let mut out = Out::default();
        match input {
            Input::Open { conn, client } => self.on_open(env, &mut out, conn, client),
            Input::Text { conn, text } => self.on_frame(env, &mut out, conn, Some(text), 0),
            Input::Binary { conn, len } => self.on_frame(env, &mut out, conn, None, len),
            Input::Closed { conn } => {
                self.remove_conn(env, &mut out, conn, LeaveReason::Disconnected)
            }
            Input::Lost { conn } => self.lose_conn(env, &mut out, conn),
            Input::Heard { conn, at_ms } => self.heard(conn, at_ms),
            Input::Alarm => self.on_alarm(env, &mut out),
            Input::NodeAssigned(node) => self.on_node_assigned(env, &mut out, node),
            Input::DominantSpeaker {
                meeting_id,
                participant,
            } => self.on_dominant_speaker(env, &mut out, &meeting_id, &participant),
            Input::VideoPaused {
                meeting_id,
                viewer,
                publisher,
                track,
                paused,
            } => self.on_video_paused(&mut out, &meeting_id, &viewer, publisher, track, paused),
            Input::LayersNeeded {
                meeting_id,
                publisher,
                track,
                rids,
            } => self.on_layers_needed(&mut out, &meeting_id, &publisher, track, rids),
            Input::RecordingFailed { meeting_id } => {
                self.on_recording_failed(env, &mut out, &meeting_id)
            }
            Input::LivestreamFailed { meeting_id } => {
                self.on_livestream_failed(env, &mut out, &meeting_id)
            }
            Input::NoComposer {
                meeting_id,
                livestream,
            } => self.on_no_composer(env, &mut out, &meeting_id, livestream),
            Input::CompositionEnded {
                meeting_id,
                livestream,
                restarted,
            } => {
                if livestream {
                    self.on_livestream_dropped(env, &mut out, &meeting_id)
                } else {
                    self.on_composite_recording_dropped(env, &mut out, &meeting_id, restarted)
                }
            }
            Input::RecordingStarted {
                meeting_id,
                recorder,
                status_token,
                recording_id,
            } => self.on_recording_started(
                &mut out,
                &meeting_id,
                &recorder,
                status_token,
                recording_id,
            ),
            Input::MoveOffNode { node_id, reason } => {
                self.move_off_node(&mut out, &node_id, reason)
            }
        }
        self.sync_composition_scene(env, &mut out);
        if self.is_ended() {
            out.0.push(Effect::Ended);
        } else {
            self.schedule_alarm(env, &mut out);
        }
        out.0
    }

    /// A new socket: held to a deadline for its `join`, unless its address holds too many here.
    fn on_open(&mut self, env: &mut Env, out: &mut Out, conn: ConnId, client: ClientInfo) {
        let limits = &env.config.limits;
        let from_here = self
            .conns
            .values()
            .filter(|c| c.client.addr_key == client.addr_key)
            .count();
        if from_here >= limits.room_sockets_per_address {
            out.0.push(Effect::Close {
                conn,
                code: close::POLICY,
                reason: "too many sockets from one address".into(),
            });
            return;
        }
        self.conns.insert(
            conn,
            Conn {
                client,
                state: ConnState::Lobby,
                bucket: TokenBucket::full(limits.message_burst, env.now_ms),
                password_failures: FailureWindow::default(),
                join_by_ms: Some(env.now_ms + limits.join_timeout_ms),
                last_heard_ms: env.now_ms,
            },
        );
    }

    /// The host holds one alarm per room: set it to the earliest deadline (a return to P2P, a
    /// socket's join, a silent socket, the end of a resume window), or clear it.
    fn schedule_alarm(&mut self, env: &Env, out: &mut Out) {
        let lobby = self.conns.values().filter_map(|c| c.join_by_ms);
        let media = self.meeting.as_ref().and_then(|m| m.media.return_at());
        let recovery = self.recovery_deadline(env.config);
        let retry = self.node_retry_at();
        let release = self.release_old_node_at();
        let next = lobby
            .chain(media)
            .chain(recovery)
            .chain(retry)
            .chain(release)
            .min();
        // An alarm due earlier stays: it plans again when it fires. (Every frame moves a silent
        // deadline; setting the alarm again on each would cost the Worker a storage write each.)
        if next == self.alarm_at || matches!((self.alarm_at, next), (Some(a), Some(n)) if a <= n) {
            return;
        }
        self.alarm_at = next;
        out.0.push(match next {
            Some(at_ms) => Effect::SetAlarm { at_ms },
            None => Effect::ClearAlarm,
        });
    }

    fn on_alarm(&mut self, env: &mut Env, out: &mut Out) {
        // The host's alarm went off (or was lost): whatever is scheduled next is set again.
        self.alarm_at = None;
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.join_by_ms.is_some_and(|t| t <= env.now_ms))
            .map(|(id, _)| *id)
            .collect();
        for conn in late {
            out.0.push(Effect::Close {
                conn,
                code: close::POLICY,
                reason: "no join in time".into(),
            });
            self.remove_conn(env, out, conn, LeaveReason::Disconnected);
        }
        self.on_recovery_alarm(env, out);
        self.on_media_alarm(env, out);
        self.on_node_retry_alarm(env, out);
        self.on_release_old_node_alarm(env, out);
    }

    fn on_frame(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        text: Option<String>,
        len: usize,
    ) {
        let limits = &env.config.limits;
        if !self.conns.contains_key(&conn) {
            return;
        }
        let size = text.as_ref().map_or(len, String::len);
        if size > limits.max_frame_bytes {
            out.0.push(Effect::Close {
                conn,
                code: close::TOO_BIG,
                reason: "frame too large".into(),
            });
            self.remove_conn(env, out, conn, LeaveReason::Disconnected);
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_heard_ms = c.last_heard_ms.max(env.now_ms);
        if !c
            .bucket
            .take(limits.message_burst, limits.messages_per_second, env.now_ms)
        {
            out.error(
                conn,
                ProtocolError::new(ErrorCode::RateLimited, "too many messages; closing"),
                None,
            );
            out.0.push(Effect::Close {
                conn,
                code: close::POLICY,
                reason: "message flood".into(),
            });
            self.remove_conn(env, out, conn, LeaveReason::Disconnected);
            return;
        }
        let Some(text) = text else {
            out.error(
                conn,
                ProtocolError::new(ErrorCode::BinaryNotSupported, "send JSON text frames"),
                None,
            );
            return;
        };
        if text.len() > limits.max_message_bytes {
            let msg = format!("messages are limited to {} bytes", limits.max_message_bytes);
            out.error(conn, ProtocolError::new(ErrorCode::TooLarge, msg), None);
            return;
        }
        match edgemeet_protocol::parse_client(&text) {
            Ok(msg) => {
                let kind = msg.type_name();
                if let Err(err) = self.on_message(env, out, conn, msg) {
                    out.error(conn, err, Some(kind));
                }
            }
            Err(err) => out.error(conn, err, None),
        }
    }

    fn on_message(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        msg: ClientMessage,
    ) -> Result<(), ProtocolError> {
        let state = self.conns.get(&conn).map(|c| c.state.clone());
        match (msg, state) {
            (ClientMessage::Ping, _) => {
                out.send(conn, &ServerMessage::Pong);
                Ok(())
            }
            (ClientMessage::Join(join), Some(ConnState::Lobby)) => {
                let result = self.join(env, out, conn, join);
                // Joined or waiting: no deadline. Refused: another full wait for the next try
                // (the page asks for a password meanwhile).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.join_by_ms = match c.state {
                        ConnState::Lobby => Some(env.now_ms + env.config.limits.join_timeout_ms),
                        _ => None,
                    };
                }
                result
            }
            (ClientMessage::Resume { id, secret }, Some(ConnState::Lobby)) => {
                self.resume(env, out, conn, &id, &secret)
            }
            (ClientMessage::Join(_) | ClientMessage::Resume { .. }, _) => Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "already joined or waiting",
            )),
            (ClientMessage::Leave, Some(_)) => {
                out.0.push(Effect::Close {
                    conn,
                    code: close::NORMAL,
                    reason: "left".into(),
                });
                self.remove_conn(env, out, conn, LeaveReason::Left);
                Ok(())
            }
            (msg, Some(ConnState::Joined { id })) => self.on_member_message(env, out, &id, msg),
            _ => Err(ProtocolError::new(
                ErrorCode::NotJoined,
                "join the room first",
            )),
        }
    }

    /// A socket is gone (closed, left, kicked, flooded): drop it and whatever it held.
    fn remove_conn(&mut self, env: &mut Env, out: &mut Out, conn: ConnId, reason: LeaveReason) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.state {
            ConnState::Joined { id } => self.remove_member(env, out, &id, reason),
            // Moderators stop seeing someone who gave up knocking.
            ConnState::Waiting { .. } => self.send_lobby(out, false),
            ConnState::Lobby => {}
        }
    }

    fn remove_member(&mut self, env: &mut Env, out: &mut Out, id: &str, reason: LeaveReason) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        if meeting.members.remove(id).is_none() {
            return;
        }
        meeting.order.retain(|p| p != id);
        meeting.speakers.forget(id, env.now_ms);
        // Leaving ends media for good: every node that holds this participant's grants closes
        // its sessions and refuses those grants from now on.
        self.close_on_node(env, out, media::NodeScopeFor::Participant(id.to_string()));
        let meeting = self.meeting.as_mut().expect("checked above");
        if meeting.members.is_empty() {
            self.end_meeting(env, out);
            self.on_meeting_gone(env, out);
            return;
        }
        let conns = self.member_conns();
        out.send_many(
            conns,
            &ServerMessage::ParticipantLeft {
                id: id.to_string(),
                reason,
            },
        );
        self.hand_over_moderation(env, out);
        self.update_media(env, out);
    }

    /// The last participant left: forget everything about the meeting at once.
    fn end_meeting(&mut self, env: &mut Env, out: &mut Out) {
        self.close_on_node(env, out, media::NodeScopeFor::Meeting);
        self.meeting = None;
    }

    fn member_conns(&self) -> Vec<ConnId> {
        self.meeting.as_ref().map_or_else(Vec::new, |m| {
            m.order
                .iter()
                .filter_map(|id| m.members.get(id))
                .filter(|p| p.away_since.is_none())
                .map(|p| p.conn)
                .collect()
        })
    }

    fn participant(id: &str, m: &Member) -> Participant {
        Participant {
            id: id.to_string(),
            name: m.profile.name.clone(),
            email: m.profile.email.clone(),
            avatar: m.profile.avatar.clone(),
            moderator: m.moderator,
            media: m.media,
            away: m.away_since.is_some(),
            hand: m.hand,
        }
    }
}
