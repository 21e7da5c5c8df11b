//! Edge <-> media node: the token the edge signs for a room and participant, and heartbeats.
//! (The media-node HTTP API types live here too; see `docs/media-node-api.md`.)

use serde::{Deserialize, Serialize};

/// Claims of the short-lived HS256 token the edge signs for one participant of one meeting.
/// The node refuses any call whose token does not match the session's room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTokenClaims {
    /// Always `edgemeet-edge`.
    pub iss: String,
    /// The node id the grant is for.
    pub aud: String,
    /// The meeting id (random per meeting; the node never learns room names).
    pub room: String,
    /// The participant id, or `edge` for calls the edge itself makes (close a participant or a room).
    pub sub: String,
    /// An opaque routing key of the room (a keyed hash, never the name), echoed in node events.
    pub route: String,
    pub iat: u64,
    pub exp: u64,
}

pub const NODE_TOKEN_ISSUER: &str = "edgemeet-edge";

/// A media-node session id names its owner: 128 random bits, then a MAC (HMAC-SHA256 under the
/// node secret, first 128 bits) of them with the meeting and participant, all hex. The node makes
/// it; the edge, which holds the same secret, checks that a participant announcing a session on
/// the room (`tracks`) speaks for its own.
pub fn session_id(secret: &str, meeting: &str, participant: &str, nonce: [u8; 16]) -> String {
    let nonce = hex::encode(nonce);
    let mac = session_mac(secret, meeting, participant, &nonce);
    format!("{nonce}{mac}")
}

/// Whether `id` is a session id the node made for `participant` of `meeting`.
pub fn session_belongs_to(secret: &str, id: &str, meeting: &str, participant: &str) -> bool {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let (nonce, mac) = id.split_at(32);
    let want = session_mac(secret, meeting, participant, nonce);
    // Constant time: the MAC is what an attacker would try to forge.
    want.len() == mac.len()
        && want
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

fn session_mac(secret: &str, meeting: &str, participant: &str, nonce: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("session\0{meeting}\0{participant}\0{nonce}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// What a media node reports about itself to the edge's registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: String,
    pub region: String,
    /// Base URL of the node's control API, as browsers reach it.
    pub url: String,
    #[serde(default)]
    pub load: NodeLoad,
    /// A draining node takes no new rooms; its current rooms continue.
    #[serde(default)]
    pub draining: bool,
    /// Drained with `migrate`: the edge moves the node's rooms to other nodes at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrate: bool,
    /// Where the node is, for distance-based selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub sessions: u32,
    pub tracks: u32,
    pub bitrate_bps: u64,
    /// CPU use, 0.0 to 1.0 per core summed over cores / cores.
    pub cpu: f32,
    /// Compositions (livestreams, composite recordings) running, and how many the node runs at
    /// most: a start beyond it is refused (503).
    #[serde(default)]
    pub compositions: u32,
    #[serde(default)]
    pub max_compositions: u32,
}

/// Something a node tells the edge about one meeting (`POST /api/nodes/events` on the edge,
/// `Authorization: Bearer <node secret>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// The loudest participant of a meeting changed (from RFC 6464 audio levels).
    DominantSpeaker {
        /// The `route` claim of the room's node tokens: lets the edge find the room without its name.
        route: String,
        /// The meeting id (`room` claim); events for an ended meeting are ignored.
        room: String,
        participant: String,
    },
    /// The node paused (or resumed) a viewer's pull of a video: the viewer's downlink estimate
    /// does not carry even its lowest layer (issue 18). The viewer's page shows the tile as
    /// "video paused (bandwidth)" until it is resumed.
    VideoPaused {
        route: String,
        room: String,
        /// The participant whose page is told.
        viewer: String,
        /// Whose video, and which of their tracks (`video`, `screen-1`, ...).
        publisher: String,
        track: String,
        paused: bool,
    },
    /// The simulcast layers of a publisher's video that some viewer needs changed (dynacast):
    /// its page stops encoding the others, or starts one again. The lowest layer is always
    /// among them. Said again every 15 s while layers are off.
    LayersNeeded {
        route: String,
        room: String,
        /// The participant whose page is told.
        publisher: String,
        /// Which of their tracks (`video`).
        track: String,
        /// The rids to send, low to high.
        rids: Vec<String>,
    },
    /// A meeting's composition ended on its own (the RTMP ingest went away, ffmpeg died): the
    /// node has cleaned it up. For a livestream the edge starts it again (it holds the key) and
    /// tells the room. A composite recording's file ends where it stopped, and the node starts
    /// the composition again into a further file of the recording (`restarted`, a few times);
    /// when it did not, the edge ends the recording.
    CompositionEnded {
        route: String,
        room: String,
        /// `livestream` or `recording`.
        purpose: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restarted: bool,
    },
}

/// A batch of events from one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEvents {
    pub node_id: String,
    pub events: Vec<NodeEvent>,
}

// ---------------------------------------------------------------------------------------------
// Media-node HTTP API (`/v1/...`), modeled on Cloudflare Realtime SFU. JSON in camelCase.
// Documented in `docs/media-node-api.md`.
// ---------------------------------------------------------------------------------------------

/// Version prefix of every media-node API path.
pub const NODE_API_PREFIX: &str = "/v1";

/// An SDP offer or answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Answer,
}

/// `POST /v1/sessions/new`: open a session (one peer connection) for the token's participant.
/// With an offer, the node answers it at once; with `tracks` too (all `local`), that offer also
/// pushes them, as `tracks/new` would: session and push in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// Tracks the offer pushes (by mid). Needs `session_description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<TrackObject>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSessionResponse {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// Per pushed track, as in [`TracksResponse`]; present when the request pushed tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<TrackResult>>,
}

/// Where a track of a `tracks/new` request is: `local` = pushed by this session (found by `mid`
/// in the request's offer), `remote` = pulled from another session of the same room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackLocation {
    Local,
    Remote,
}

/// Which simulcast layer (RTP stream id, e.g. `q`, `h`, `f`) a puller wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulcastPreference {
    pub preferred_rid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackObject {
    pub location: TrackLocation,
    /// For `local`: the mid of the track's m-line in the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// 1 to 31 characters of `[A-Za-z0-9_.-]`, unique per session.
    pub track_name: String,
    /// For `remote`: the session that pushed the track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulcast: Option<SimulcastPreference>,
}

/// `POST /v1/sessions/{id}/tracks/new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracksRequest {
    /// Required when pushing (`local` tracks): the client's offer. Absent when only pulling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    pub tracks: Vec<TrackObject>,
}

/// The outcome for one track of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// Answer to `tracks/new`, `tracks/close`: when `requiresImmediateRenegotiation` is true,
/// `sessionDescription` is the node's offer, to be answered with `renegotiate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracksResponse {
    pub requires_immediate_renegotiation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    pub tracks: Vec<TrackResult>,
}

/// `PUT /v1/sessions/{id}/renegotiate`: the client's answer to the node's last offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenegotiateRequest {
    pub session_description: SessionDescription,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTrack {
    pub mid: String,
}

/// `PUT /v1/sessions/{id}/tracks/close`: stop pushing or pulling tracks by mid. Answered with
/// the node's offer (the m-lines made inactive) unless `force` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTracksRequest {
    pub tracks: Vec<CloseTrack>,
    #[serde(default)]
    pub force: bool,
}

/// `PUT /v1/sessions/{id}/tracks/update`: change the simulcast layer of pulled tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTracksRequest {
    pub tracks: Vec<UpdateTrack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTrack {
    pub mid: String,
    pub simulcast: SimulcastPreference,
}

/// `PUT /v1/sessions/{id}/tracks/view`: how the viewer's page shows pulled videos (issue 18).
/// The node sends a tile that is not shown no video, and picks the layer that fits its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ViewTracksRequest {
    pub tracks: Vec<TrackView>,
}

/// How one pulled video's tile is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackView {
    pub mid: String,
    /// On screen (false: scrolled off, a hidden tab, not drawn): no video is sent.
    pub shown: bool,
    /// The tile's height in device pixels; absent: no limit (the layer asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Pinned or shown large: it goes before the other cameras when the link is short.
    #[serde(default)]
    pub pinned: bool,
}

/// State of one track of a session (`GET /v1/sessions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackState {
    pub location: TrackLocation,
    pub mid: Option<String>,
    pub track_name: String,
    /// For `remote` tracks: the pushing session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub status: TrackStatus,
    /// For pulled video once the session has a downlink estimate: what the node's bandwidth
    /// allocation forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<Forwarding>,
    /// For `remote` tracks: RTP packets the node sent on it so far (retransmissions apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_sent: Option<u64>,
    /// For pulled video: whether its tile is shown (`tracks/view`; true until told otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<bool>,
    /// For a pushed simulcast video: the layers (rids) its page is asked to send, the others
    /// being needed by no viewer (dynacast, `NodeEvent::LayersNeeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_rids: Option<Vec<String>>,
}

/// What the node forwards of a pulled video, within the viewer's downlink estimate (issue 18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forwarding {
    /// The simulcast layer (rid) the allocation chose; absent: the one the client asked for
    /// (not simulcast, or nothing decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// No video is forwarded: not even its lowest layer fits the estimate.
    pub paused_for_bandwidth: bool,
}

/// The node's send-side estimate of a session's downlink (`GET /v1/sessions/{id}`), from the
/// client's transport-cc feedback about what the node sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownlinkState {
    /// What the link carries, by the node's estimator (GCC: delay and loss), bits per second.
    pub estimate_bps: u64,
    /// Its delay-based and loss-based halves (the estimate is the lower).
    pub delay_based_bps: u64,
    pub loss_based_bps: u64,
    /// Packets the client reported on so far, and of those, lost.
    pub packets_reported: u64,
    pub packets_lost: u64,
    /// What the last allocation gave the session's audio and video pulls, bits per second.
    pub audio_bps: u64,
    pub video_bps: u64,
    /// Probes (the estimator restarted higher to find headroom), and those the link refused.
    pub probes: u64,
    pub probes_refused: u64,
    /// Retransmissions not sent: over their share of the estimate.
    pub retransmissions_dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Negotiated, media flows (or will once it arrives).
    Active,
    /// Waiting for the client's answer (`renegotiate`).
    Pending,
    /// The publisher left or closed it: close it with `tracks/close`.
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStateResponse {
    pub session_id: String,
    /// `new`, `connecting`, `connected`, `disconnected`, `failed`, `closed`.
    pub connection_state: String,
    pub tracks: Vec<TrackState>,
    /// Absent until the client's first transport-cc feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downlink: Option<DownlinkState>,
}

/// Answer of the edge's close calls (`POST /v1/participants/{id}/close`,
/// `POST /v1/rooms/{meeting}/close`) and of `DELETE /v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosedResponse {
    pub closed_sessions: u32,
}

/// Every error body of the node API: a stable code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub error_code: String,
    pub error_description: String,
}

/// `POST /v1/rooms/{meeting}/recording/start` (edge token): the recorder's Dropbox grant. The
/// node seals it at once into the recording's manifest; it is never logged or stored in clear.
/// Without `dropbox` the manifest carries no token (local-folder destination, all-in-one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRecordingRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropbox: Option<RecordingDropbox>,
    /// Without `dropbox`: the id of this meeting's recording on the room's previous node (the
    /// room moved). The node takes the recorder's sealed token from that recording's storage
    /// (journal or manifest; it opens only for the same meeting) for the further file, so the
    /// edge need not keep the grant (the Worker's room forgets it when it hibernates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_from: Option<String>,
    /// Also one composed MP4 of the whole meeting (the livestream's layout), delivered with the
    /// per-person files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub composite: bool,
    /// `false`: no file per person, only the composed one (`composite` must then be set).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub per_person: bool,
    /// Who the composed file shows at the start (updated with `POST .../composition/scene`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<CompositionScene>,
}

/// The recorder's Dropbox OAuth grant (PKCE, `token_access_type=offline`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingDropbox {
    #[serde(alias = "access_token")]
    pub access_token: String,
    #[serde(
        default,
        alias = "refresh_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<String>,
    /// The Dropbox app key (OAuth client id): the uploader needs it to refresh.
    #[serde(alias = "app_key")]
    pub app_key: String,
}

impl std::fmt::Debug for RecordingDropbox {
    // Tokens must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingDropbox")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("app_key", &self.app_key)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRecordingResponse {
    pub recording_id: String,
    pub started_at_ms: u64,
    /// The recorder's delivery-status capability (32 hex digits, 128 random bits): the page
    /// that started the recording may read `{status_url}{status_token}` (the uploader's
    /// `GET /v1/recording-status/{token}`, see docs/uploader.md) until the recording is purged.
    /// For the recorder only: never broadcast, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_token: Option<String>,
}

impl std::fmt::Debug for StartRecordingResponse {
    // The status token is a capability: keep it out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartRecordingResponse")
            .field("recording_id", &self.recording_id)
            .field("started_at_ms", &self.started_at_ms)
            .field(
                "status_token",
                &self.status_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// `POST /v1/rooms/{meeting}/recording/stop`: answered once the files and the manifest are in
/// storage (`files` = 0: no media arrived, nothing was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRecordingResponse {
    pub recording_id: String,
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    pub files: u32,
}

/// `POST /v1/rooms/{meeting}/livestream/start` (edge -> node, moderator's request): compose the
/// meeting and stream it to an RTMP ingest (issue 21). The stream key goes from the moderator's
/// page through the edge to here and nowhere else: never logged, never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartLivestreamRequest {
    /// `rtmp://host[:port]/app` (the ingest's URL without the key).
    pub url: String,
    pub stream_key: String,
    /// Who is in the picture at the start (updated with `PUT .../composition/scene`).
    #[serde(default)]
    pub scene: CompositionScene,
}

impl std::fmt::Debug for StartLivestreamRequest {
    // The stream key is a credential; names are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartLivestreamRequest")
            .field("url", &self.url)
            .field("stream_key", &"<redacted>")
            .field("scene", &self.scene)
            .finish()
    }
}

/// Who a composition shows: participants (the room's opaque ids and the names drawn on their
/// tiles), the active speaker, who shares a screen, and the layout.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositionScene {
    #[serde(default)]
    pub people: Vec<ScenePerson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// A grid of equal tiles instead of the speaker view.
    #[serde(default)]
    pub grid: bool,
}

impl std::fmt::Debug for CompositionScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositionScene")
            .field("people", &self.people.len())
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenePerson {
    pub id: String,
    /// Drawn on the tile; memory only.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLivestreamResponse {
    pub livestream_id: String,
    pub started_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopLivestreamResponse {
    pub livestream_id: String,
    /// Pictures sent (a picture repeated when composing fell behind counts).
    pub pictures: u64,
    pub output_bytes: u64,
}

/// Continent codes, as in Cloudflare's `CF-IPContinent` (lower case here).
pub const CONTINENTS: [&str; 7] = ["af", "an", "as", "eu", "na", "oc", "sa"];

/// A region name the edge can match callers to: `local` (one machine), a continent code, or a
/// continent code, `-` and a name (`eu-west`, `na-east-2`). Anything else is refused at start,
/// because no caller would ever be placed on it by region.
pub fn check_region(region: &str) -> Result<(), String> {
    let lower = region.to_ascii_lowercase();
    let continent = lower.split('-').next().unwrap_or_default();
    let rest_ok = lower
        .split('-')
        .skip(1)
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if lower == "local" || (CONTINENTS.contains(&continent) && rest_ok) {
        Ok(())
    } else {
        Err(format!(
            "region `{region}` is unknown: use `local`, or a continent code ({}) optionally \
             followed by `-name`, e.g. `eu-west`",
            CONTINENTS.join(", ")
        ))
    }
}

#[cfg(test)]
mod region_tests {
    use super::check_region;

    #[test]
    fn regions_start_with_a_continent() {
        for ok in ["local", "eu", "eu-west", "NA-east-2", "oc-sydney"] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in ["mars", "", "us-east", "eu-", "eu west", "europe"] {
            let err = check_region(bad).unwrap_err();
            assert!(
                err.contains("unknown") && err.contains("eu-west"),
                "{bad}: {err}"
            );
        }
    }
}

#[cfg(test)]
mod session_id_tests {
    use super::{session_belongs_to, session_id};

    #[test]
    fn a_session_id_names_its_meeting_and_participant() {
        let id = session_id("secret-0123456789", "m1", "p1", [7; 16]);
        assert_eq!(id.len(), 64);
        assert!(session_belongs_to("secret-0123456789", &id, "m1", "p1"));
        assert!(!session_belongs_to("secret-0123456789", &id, "m1", "p2"));
        assert!(!session_belongs_to("secret-0123456789", &id, "m2", "p1"));
        assert!(!session_belongs_to("another-secret-000", &id, "m1", "p1"));
        let mut forged = id.clone();
        forged.replace_range(..2, "00");
        assert!(!session_belongs_to(
            "secret-0123456789",
            &forged,
            "m1",
            "p1"
        ));
        assert!(!session_belongs_to("secret-0123456789", "s1", "m1", "p1"));
    }
}

fn yes() -> bool {
    true
}

fn is_yes(v: &bool) -> bool {
    *v
}

impl Default for StartRecordingRequest {
    fn default() -> Self {
        Self {
            dropbox: None,
            continue_from: None,
            composite: false,
            per_person: true,
            scene: None,
        }
    }
}
