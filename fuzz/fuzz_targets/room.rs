#![no_main]
//! The edge core's room state machine driven by sockets that send anything: raw text frames, and
//! well-formed messages with the fuzzer's fields (so joins, moderation, the lobby and roles, hands,
//! reactions, renames, E2EE key relays, resumes, media and recording paths are reached),
//! interleaved with closes, time passing, alarms and the shell's answers (node assigned, dominant
//! speaker, recording failed or started with a status token), in an open room where everyone
//! moderates, one with `moderation = "first"`, or a `jwt-host` one. Every frame the room sends
//! must decode as a server message, and the room must survive a hibernation round trip (the
//! Worker stores it).

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use base64::Engine;
use edgemeet_core::config::{AuthMode, Limits, Moderation};
use edgemeet_core::{
    ClientInfo, EdgeConfig, Effect, Env, Input, NodeInfo, Room, TenantConfig, route,
};
use edgemeet_protocol::client::{
    DropboxGrant, Join, MediaState, Profile, RecordingFiles, ResumeSecret, StreamKey, TrackInfo,
};
use edgemeet_protocol::e2ee::KeyBlob;
use edgemeet_protocol::reaction::Reaction;
use edgemeet_protocol::server::decode_server;
use edgemeet_protocol::{ClientMessage, MediaKind, ServerMessage};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const HOST_SECRET: &str = "host-tenant-secret-0123456789abcdef0123";
const START_MS: u64 = 1_700_000_000_000;

#[derive(Arbitrary, Debug)]
struct Script<'a> {
    tenant: Tenant,
    ops: Vec<Op<'a>>,
}

/// Whose rules the room follows.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tenant {
    /// The open default tenant: everyone moderates.
    Open,
    /// An open tenant with `moderation = "first"`: roles are granted and taken back.
    First,
    /// The jwt-host tenant: tokens, guests wait for a host.
    Host,
}

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    Open {
        conn: u8,
        query_token: Option<Who>,
    },
    Frame {
        conn: u8,
        text: &'a str,
    },
    Send {
        conn: u8,
        msg: Msg<'a>,
    },
    Binary {
        conn: u8,
        len: u16,
    },
    Close {
        conn: u8,
    },
    Wait {
        ms: u16,
    },
    Alarm,
    /// None, the room's first node, or another (a move).
    NodeAssigned(Option<bool>),
    /// A node refused a composition for lack of a composer.
    NoComposer {
        this_meeting: bool,
        livestream: bool,
    },
    LivestreamFailed {
        this_meeting: bool,
    },
    CompositionEnded {
        this_meeting: bool,
        livestream: bool,
        restarted: bool,
    },
    DominantSpeaker {
        this_meeting: bool,
        who: u8,
    },
    VideoPaused {
        this_meeting: bool,
        viewer: u8,
        publisher: u8,
        paused: bool,
    },
    LayersNeeded {
        this_meeting: bool,
        publisher: u8,
        rids: Vec<String>,
    },
    RecordingFailed {
        this_meeting: bool,
    },
    RecordingStarted {
        this_meeting: bool,
        recorder: u8,
        token: StatusToken<'a>,
    },
}

/// A node's status token: well formed (32 hex digits), or anything.
#[derive(Arbitrary, Debug)]
enum StatusToken<'a> {
    WellFormed(u128),
    Raw(&'a str),
}

/// A token the tenant's issuer signed.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Who {
    Moderator,
    Guest,
    Recorder,
    Expired,
}

#[derive(Arbitrary, Debug)]
enum Msg<'a> {
    Join {
        token: Option<Who>,
        password: Option<&'a str>,
        profile: Prof<'a>,
    },
    Leave,
    Chat {
        text: &'a str,
        to: Option<u8>,
    },
    UpdateProfile(Prof<'a>),
    MediaState {
        audio: bool,
        video: bool,
        screen: bool,
        e2ee: bool,
    },
    Mute {
        target: u8,
        video: bool,
    },
    MuteAll {
        video: bool,
    },
    Kick {
        target: u8,
    },
    SetPassword(Option<&'a str>),
    Signal {
        to: u8,
        payload: &'a str,
    },
    Tracks {
        session_id: &'a str,
        tracks: Vec<(&'a str, bool, &'a str)>,
    },
    RefreshNodeGrant,
    StartRecording {
        dropbox: Option<(&'a str, Option<&'a str>, &'a str)>,
        composite: bool,
        files: Option<u8>,
    },
    StartLivestream {
        url: &'a str,
        key: &'a str,
    },
    StopLivestream,
    StopRecording,
    SpeakerStats,
    Ping,
    SetLobby(bool),
    SetCompositionLayout(bool),
    /// Let in (`admit`) or turn away someone knocking: a knock id the room announced, or anything.
    Admit {
        admit: bool,
        target: Knock<'a>,
    },
    AdmitAll,
    RefuseAll,
    SetModerator {
        target: u8,
        moderator: bool,
    },
    EndMeeting,
    RaiseHand(bool),
    React(Pick),
    E2eeKey {
        to: u8,
        blob: &'a str,
    },
    /// Come back as a participant: with the secret the room gave it, or a guessed one.
    Resume {
        id: u8,
        secret: Option<&'a str>,
    },
}

/// A knock id: one the room announced to moderators, or made up.
#[derive(Arbitrary, Debug)]
enum Knock<'a> {
    Known(u8),
    Raw(&'a str),
}

/// One of the reactions (the wire refuses others).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pick {
    ThumbsUp,
    Applause,
    Laugh,
    Surprise,
    Heart,
    Celebrate,
}

impl From<Pick> for Reaction {
    fn from(p: Pick) -> Self {
        match p {
            Pick::ThumbsUp => Reaction::ThumbsUp,
            Pick::Applause => Reaction::Applause,
            Pick::Laugh => Reaction::Laugh,
            Pick::Surprise => Reaction::Surprise,
            Pick::Heart => Reaction::Heart,
            Pick::Celebrate => Reaction::Celebrate,
        }
    }
}

/// A key blob from any text: its base64url characters (the wire refuses others), else one.
fn key_blob(text: &str) -> KeyBlob {
    let chars: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(edgemeet_protocol::e2ee::MAX_KEY_BLOB_CHARS)
        .collect();
    KeyBlob::try_from(if chars.is_empty() { "A".into() } else { chars }).expect("a valid blob")
}

#[derive(Arbitrary, Debug)]
struct Prof<'a> {
    name: Option<&'a str>,
    email: Option<&'a str>,
    avatar: Option<&'a str>,
}

impl Prof<'_> {
    fn into_profile(self) -> Profile {
        Profile {
            name: self.name.map(str::to_string),
            email: self.email.map(str::to_string),
            avatar: self.avatar.map(str::to_string),
        }
    }
}

fn kind(video: bool) -> MediaKind {
    if video {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

fn token(who: Who, now_ms: u64) -> String {
    let now = now_ms / 1000;
    let (moderator, features, exp) = match who {
        Who::Moderator => (true, "{}", now + 3600),
        Who::Guest => (false, "{}", now + 3600),
        Who::Recorder => (true, r#"{"recording":true}"#, now + 3600),
        Who::Expired => (true, "{}", now - 3600),
    };
    let claims = format!(
        r#"{{"iss":"test","aud":"edgemeet","sub":"host","room":"*","exp":{exp},"context":{{"user":{{"name":"Ada","moderator":{moderator}}},"features":{features}}}}}"#
    );
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.as_bytes())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HOST_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

struct Harness {
    room: Room,
    config: EdgeConfig,
    now: u64,
    rng: ChaCha20Rng,
    /// Participant ids the room has announced: targets for moderation, chat and signals.
    ids: Vec<String>,
    /// Knock ids the room showed moderators: targets for admit and refuse.
    knocks: Vec<String>,
    /// Resume secrets the room gave, by participant id.
    secrets: Vec<(String, String)>,
    meeting: Option<String>,
}

impl Harness {
    fn new(tenant: Tenant) -> Self {
        let mut config = EdgeConfig {
            hash_key: "0123456789abcdef".into(),
            node_secret: Some("node-secret-0123456789abcdef0123456789".into()),
            limits: Limits {
                room_capacity: 6,
                max_waiting: 3,
                ..Limits::default()
            },
            ..Default::default()
        };
        config.tenants.insert(
            "host".into(),
            TenantConfig {
                auth: AuthMode::JwtHost,
                issuers: vec!["test".into()],
                hs256_secret: Some(HOST_SECRET.into()),
                ..Default::default()
            },
        );
        config.tenants.insert(
            "first".into(),
            TenantConfig {
                moderation: Moderation::First,
                ..Default::default()
            },
        );
        config.validate().unwrap();
        let tenant = match tenant {
            Tenant::Open => None,
            Tenant::First => Some("first"),
            Tenant::Host => Some("host"),
        };
        let address = route(&config, tenant, "Weekly-Sync").unwrap();
        Self {
            room: Room::new(address),
            config,
            now: START_MS,
            rng: ChaCha20Rng::seed_from_u64(7),
            ids: Vec::new(),
            knocks: Vec::new(),
            secrets: Vec::new(),
            meeting: None,
        }
    }

    /// The meeting's id, or one of no meeting.
    fn meeting_if(&self, this_meeting: bool) -> String {
        self.meeting
            .clone()
            .filter(|_| this_meeting)
            .unwrap_or_default()
    }

    fn id(&self, i: u8) -> String {
        if self.ids.is_empty() {
            format!("p{i}")
        } else {
            self.ids[usize::from(i) % self.ids.len()].clone()
        }
    }

    fn input(&mut self, input: Input) {
        let mut env = Env {
            config: &self.config,
            now_ms: self.now,
            rng: &mut self.rng,
        };
        for effect in self.room.handle(&mut env, input) {
            let Effect::Send { text, .. } = effect else {
                continue;
            };
            let msg = decode_server(&text).unwrap_or_else(|e| {
                panic!("the room sent a frame it cannot read back: {text} ({e:?})")
            });
            match msg {
                ServerMessage::Welcome {
                    you,
                    meeting_id,
                    participants,
                    resume,
                    ..
                } => {
                    if let Some(r) = resume {
                        self.secrets.push((you.clone(), r.secret.0));
                        self.secrets.truncate(16);
                    }
                    self.ids.push(you);
                    self.ids.extend(participants.into_iter().map(|p| p.id));
                    self.meeting = Some(meeting_id);
                }
                ServerMessage::ParticipantJoined { participant } => self.ids.push(participant.id),
                ServerMessage::Lobby { knocking, .. } => {
                    self.knocks.extend(knocking.into_iter().map(|k| k.id));
                    self.knocks.sort();
                    self.knocks.dedup();
                    self.knocks.truncate(16);
                }
                _ => {}
            }
        }
        let unique: BTreeSet<String> = self.ids.drain(..).collect();
        self.ids = unique.into_iter().take(16).collect();
    }

    fn message(&mut self, msg: Msg) -> ClientMessage {
        match msg {
            Msg::Join {
                token: t,
                password,
                profile,
            } => ClientMessage::Join(Join {
                token: t.map(|w| token(w, self.now)),
                password: password.map(str::to_string),
                profile: profile.into_profile(),
            }),
            Msg::Leave => ClientMessage::Leave,
            Msg::Chat { text, to } => ClientMessage::Chat {
                text: text.to_string(),
                to: to.map(|i| self.id(i)),
            },
            Msg::UpdateProfile(p) => ClientMessage::UpdateProfile {
                profile: p.into_profile(),
            },
            Msg::MediaState {
                audio,
                video,
                screen,
                e2ee,
            } => ClientMessage::MediaState(MediaState {
                audio,
                video,
                screen,
                e2ee,
            }),
            Msg::Mute { target, video } => ClientMessage::Mute {
                target: self.id(target),
                kind: kind(video),
            },
            Msg::MuteAll { video } => ClientMessage::MuteAll { kind: kind(video) },
            Msg::Kick { target } => ClientMessage::Kick {
                target: self.id(target),
            },
            Msg::SetPassword(p) => ClientMessage::SetPassword {
                password: p.map(str::to_string),
            },
            Msg::Signal { to, payload } => ClientMessage::Signal {
                to: self.id(to),
                payload: serde_json::from_str(payload)
                    .unwrap_or_else(|_| serde_json::Value::String(payload.to_string())),
            },
            Msg::Tracks { session_id, tracks } => ClientMessage::Tracks {
                session_id: session_id.to_string(),
                tracks: tracks
                    .into_iter()
                    .map(|(name, video, source)| TrackInfo {
                        name: name.to_string(),
                        kind: kind(video),
                        source: source.to_string(),
                    })
                    .collect(),
            },
            Msg::RefreshNodeGrant => ClientMessage::RefreshNodeGrant,
            Msg::StartRecording {
                dropbox,
                composite,
                files,
            } => ClientMessage::StartRecording {
                dropbox: dropbox.map(|(access, refresh, app)| DropboxGrant {
                    access_token: access.to_string(),
                    refresh_token: refresh.map(str::to_string),
                    app_key: app.to_string(),
                }),
                composite,
                files: files.map(|f| match f % 3 {
                    0 => RecordingFiles::PerPerson,
                    1 => RecordingFiles::Composite,
                    _ => RecordingFiles::Both,
                }),
            },
            Msg::StartLivestream { url, key } => ClientMessage::StartLivestream {
                url: url.to_string(),
                stream_key: StreamKey(key.to_string()),
            },
            Msg::StopLivestream => ClientMessage::StopLivestream,
            Msg::StopRecording => ClientMessage::StopRecording,
            Msg::SpeakerStats => ClientMessage::SpeakerStats,
            Msg::Ping => ClientMessage::Ping,
            Msg::SetLobby(enabled) => ClientMessage::SetLobby { enabled },
            Msg::SetCompositionLayout(grid) => ClientMessage::SetCompositionLayout { grid },
            Msg::Admit { admit, target } => {
                let target = match target {
                    Knock::Known(i) if !self.knocks.is_empty() => {
                        self.knocks[usize::from(i) % self.knocks.len()].clone()
                    }
                    Knock::Known(i) => format!("k{i}"),
                    Knock::Raw(t) => t.to_string(),
                };
                if admit {
                    ClientMessage::Admit { target }
                } else {
                    ClientMessage::Refuse { target }
                }
            }
            Msg::AdmitAll => ClientMessage::AdmitAll,
            Msg::RefuseAll => ClientMessage::RefuseAll,
            Msg::SetModerator { target, moderator } => ClientMessage::SetModerator {
                target: self.id(target),
                moderator,
            },
            Msg::EndMeeting => ClientMessage::EndMeeting,
            Msg::RaiseHand(raised) => ClientMessage::RaiseHand { raised },
            Msg::React(p) => ClientMessage::React { reaction: p.into() },
            Msg::E2eeKey { to, blob } => ClientMessage::E2eeKey {
                to: self.id(to),
                blob: key_blob(blob),
            },
            Msg::Resume { id, secret } => {
                let (id, known) = match self
                    .secrets
                    .get(usize::from(id) % self.secrets.len().max(1))
                {
                    Some((pid, s)) => (pid.clone(), s.clone()),
                    None => (self.id(id), String::new()),
                };
                ClientMessage::Resume {
                    id,
                    secret: ResumeSecret(secret.map_or(known, str::to_string)),
                }
            }
        }
    }
}

fuzz_target!(|script: Script| {
    let mut h = Harness::new(script.tenant);
    for op in script.ops.into_iter().take(64) {
        let input = match op {
            Op::Open { conn, query_token } => Input::Open {
                conn: u64::from(conn % 8),
                client: ClientInfo {
                    addr_key: format!("addr{}", conn % 3),
                    location: None,
                    query_token: query_token.map(|w| token(w, h.now)),
                },
            },
            Op::Frame { conn, text } => Input::Text {
                conn: u64::from(conn % 8),
                text: text.to_string(),
            },
            Op::Send { conn, msg } => Input::Text {
                conn: u64::from(conn % 8),
                text: h.message(msg).to_wire(),
            },
            Op::Binary { conn, len } => Input::Binary {
                conn: u64::from(conn % 8),
                len: usize::from(len),
            },
            Op::Close { conn } => Input::Closed {
                conn: u64::from(conn % 8),
            },
            Op::Wait { ms } => {
                h.now += u64::from(ms) * 8;
                continue;
            }
            Op::Alarm => Input::Alarm,
            Op::NodeAssigned(which) => Input::NodeAssigned(which.map(|other| {
                let id = if other { "n2" } else { "n1" };
                NodeInfo {
                    id: id.into(),
                    url: format!("http://{id}.example"),
                    region: "eu".into(),
                }
            })),
            Op::NoComposer {
                this_meeting,
                livestream,
            } => Input::NoComposer {
                meeting_id: h.meeting_if(this_meeting),
                livestream,
            },
            Op::LivestreamFailed { this_meeting } => Input::LivestreamFailed {
                meeting_id: h.meeting_if(this_meeting),
            },
            Op::CompositionEnded {
                this_meeting,
                livestream,
                restarted,
            } => Input::CompositionEnded {
                meeting_id: h.meeting_if(this_meeting),
                livestream,
                restarted,
            },
            Op::DominantSpeaker { this_meeting, who } => Input::DominantSpeaker {
                meeting_id: h
                    .meeting
                    .clone()
                    .filter(|_| this_meeting)
                    .unwrap_or_default(),
                participant: h.id(who),
            },
            Op::VideoPaused {
                this_meeting,
                viewer,
                publisher,
                paused,
            } => Input::VideoPaused {
                meeting_id: h.meeting_if(this_meeting),
                viewer: h.id(viewer),
                publisher: h.id(publisher),
                track: "video".into(),
                paused,
            },
            Op::LayersNeeded {
                this_meeting,
                publisher,
                rids,
            } => Input::LayersNeeded {
                meeting_id: h.meeting_if(this_meeting),
                publisher: h.id(publisher),
                track: "video".into(),
                rids,
            },
            Op::RecordingFailed { this_meeting } => Input::RecordingFailed {
                meeting_id: h
                    .meeting
                    .clone()
                    .filter(|_| this_meeting)
                    .unwrap_or_default(),
            },
            Op::RecordingStarted {
                this_meeting,
                recorder,
                token,
            } => Input::RecordingStarted {
                meeting_id: h
                    .meeting
                    .clone()
                    .filter(|_| this_meeting)
                    .unwrap_or_default(),
                recorder: h.id(recorder),
                status_token: edgemeet_core::StatusToken(match token {
                    StatusToken::WellFormed(n) => format!("{n:032x}"),
                    StatusToken::Raw(t) => t.to_string(),
                }),
                // The node's recording id: none, as from a node before `continueFrom`.
                recording_id: None,
            },
        };
        h.input(input);
    }
    // Hibernation: a stored room comes back as it was. One thing is deliberately not stored: a
    // recorder's Dropbox grant waiting for the room's node (privacy.md: never in a snapshot), so
    // a room whose recording has not reached a node yet reads back without it, and is checked by
    // its stored form (which must read back whole) instead.
    let stored = serde_json::to_string(&h.room).expect("a room serializes");
    let back: Room = serde_json::from_str(&stored).expect("a stored room reads back");
    let value: serde_json::Value = serde_json::from_str(&stored).expect("stored as JSON");
    // A livestream's URL and key are not stored either (memory only).
    if value["meeting"]["recording"]["started_on_node"] == serde_json::Value::Bool(false)
        || !value["meeting"]["livestream"].is_null()
    {
        let again = serde_json::to_string(&back).expect("a room serializes");
        assert_eq!(again, stored);
    } else {
        assert_eq!(back, h.room);
    }
});
