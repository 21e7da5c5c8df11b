// The wire types the page speaks, as JSDoc for `tsc --checkJs` (docs/browser.md). No code: the
// Rust types in `protocol/src/` are the source of truth (docs/protocol.md, docs/media-node-api.md),
// and these mirror them field for field. A field the Rust side skips when `None` is optional here;
// one it writes as `null` is `| null`.

// ---- Shared (protocol/src/lib.rs, client.rs) ---------------------------------------------------

/**
 * A participant's id inside one meeting.
 * @typedef {string} ParticipantId
 */

/** @typedef {'audio' | 'video'} MediaKind */

/**
 * What a participant may tell about themselves (`Profile`).
 * @typedef {object} Profile
 * @property {string} [name]
 * @property {string} [email]
 * @property {string} [avatar] an `https:` URL
 */

/**
 * What a participant currently sends (`MediaState`).
 * @typedef {object} MediaState
 * @property {boolean} audio
 * @property {boolean} video
 * @property {boolean} screen
 * @property {boolean} e2ee
 */

/**
 * A track published on the room's media node, announced so others can pull it (`TrackInfo`).
 * @typedef {object} TrackInfo
 * @property {string} name the track's name on the node (unique within the session)
 * @property {MediaKind} kind
 * @property {string} source `camera`, `microphone` or `screen`
 */

/**
 * The recorder's Dropbox authorization (`DropboxGrant`), in page memory only.
 * @typedef {object} DropboxGrant
 * @property {string} access_token
 * @property {string} [refresh_token]
 * @property {string} app_key the Dropbox app key the tokens were issued to
 */

// ---- Browser -> edge (protocol/src/client.rs `ClientMessage`) ----------------------------------

/**
 * The fields of the first message on a room socket (`Join`).
 * @typedef {object} Join
 * @property {string} [token] a Jitsi-format invite (JWT)
 * @property {string} [password] the room password, when the room is locked
 * @property {Profile} profile
 */

/**
 * Every message the page may send, without the envelope's `v` (`Signaling.send` adds it).
 * @typedef {({type: 'join'} & Join)
 *   | {type: 'leave'}
 *   | {type: 'chat', text: string, to?: ParticipantId}
 *   | {type: 'update_profile', profile: Profile}
 *   | ({type: 'media_state'} & MediaState)
 *   | {type: 'mute', target: ParticipantId, kind: MediaKind}
 *   | {type: 'mute_all', kind: MediaKind}
 *   | {type: 'kick', target: ParticipantId}
 *   | {type: 'set_password', password: string | null}
 *   | {type: 'signal', to: ParticipantId, payload: SignalPayload}
 *   | {type: 'e2ee_key', to: ParticipantId, blob: string}
 *   | {type: 'tracks', session_id: string, tracks: TrackInfo[]}
 *   | {type: 'refresh_node_grant'}
 *   | {type: 'start_recording', dropbox?: DropboxGrant, composite?: boolean,
 *       files?: 'per_person' | 'composite' | 'both'}
 *   | {type: 'stop_recording'}
 *   | {type: 'start_livestream', url: string, stream_key: string}
 *   | {type: 'stop_livestream'}
 *   | {type: 'speaker_stats'}
 *   | {type: 'ping'}
 *   | {type: 'set_lobby', enabled: boolean}
 *   | {type: 'set_composition_layout', grid: boolean}
 *   | {type: 'admit', target: string}
 *   | {type: 'admit_all'}
 *   | {type: 'refuse', target: string}
 *   | {type: 'refuse_all'}
 *   | {type: 'set_moderator', target: ParticipantId, moderator: boolean}
 *   | {type: 'end_meeting'}
 *   | {type: 'raise_hand', raised: boolean}
 *   | {type: 'react', reaction: Reaction}
 *   | {type: 'resume', id: ParticipantId, secret: string}
 *   | {type: 'node_unreachable', node_id: string}
 *   | {type: 'direct_failed'}} ClientMessage
 */

/**
 * What goes through `signal` between the two pages of a direct call. Opaque to the edge (a JSON
 * value); the page sends one of these.
 * @typedef {{sdp: RTCSessionDescriptionInit, candidate?: undefined, restart?: undefined}
 *   | {candidate: RTCIceCandidateInit, sdp?: undefined, restart?: undefined}
 *   | {restart: true, sdp?: undefined, candidate?: undefined}} SignalPayload (`restart`: the
 *   answering side asks the initiator for an ICE restart)
 */

// ---- Edge -> browser (protocol/src/server.rs `ServerMessage`) ----------------------------------

/**
 * A participant as the others see them (`Participant`).
 * @typedef {object} Participant
 * @property {ParticipantId} id
 * @property {string} [name]
 * @property {string} [email]
 * @property {string} [avatar]
 * @property {boolean} moderator
 * @property {MediaState} media
 * @property {boolean} [away] the socket dropped; they may come back within the resume window
 * @property {number} [hand] when the hand went up (unix ms); absent while it is down
 */

/**
 * An ICE server for `RTCPeerConnection` (`IceServer`): STUN, or TURN with time-limited credentials.
 * @typedef {object} IceServer
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * Permission to use the room's media node (`NodeGrant`).
 * @typedef {object} NodeGrant
 * @property {string} node_id
 * @property {string} url
 * @property {string} token
 * @property {number} expires_at Unix time (ms) after which the token is refused
 */

/**
 * Where this participant's media goes (`MediaMode`, tagged by `mode`).
 * @typedef {{mode: 'none'}
 *   | {mode: 'p2p', peer: ParticipantId, initiator: boolean, standby?: NodeGrant}
 *   | {mode: 'sfu', node: NodeGrant | null}} MediaMode
 */

/**
 * The tracks one participant has on the media node (`ParticipantTracks`).
 * @typedef {object} ParticipantTracks
 * @property {ParticipantId} participant
 * @property {string} session_id
 * @property {TrackInfo[]} tracks
 */

/** @typedef {'left' | 'kicked' | 'disconnected'} LeaveReason */

/**
 * @typedef {object} SpeakerStat
 * @property {ParticipantId} id
 * @property {number} speaking_ms
 */

/**
 * Machine-readable error reasons (`ErrorCode`; docs/protocol.md says what each means).
 * @typedef {'bad_json' | 'not_an_object' | 'unsupported_version' | 'unknown_type' | 'invalid_message'
 *   | 'too_large' | 'binary_not_supported' | 'rate_limited' | 'not_joined' | 'already_joined'
 *   | 'invalid_room_name' | 'unknown_tenant' | 'room_full' | 'invalid_profile' | 'token_required'
 *   | 'token_invalid' | 'token_expired' | 'token_not_yet_valid' | 'token_wrong_audience'
 *   | 'token_wrong_issuer' | 'token_wrong_tenant' | 'token_wrong_room' | 'token_bad_signature'
 *   | 'token_alg_not_allowed' | 'token_unknown_key' | 'password_required' | 'password_wrong'
 *   | 'password_rate_limited' | 'invalid_password' | 'not_moderator' | 'unknown_participant'
 *   | 'chat_too_long' | 'chat_empty' | 'not_in_p2p' | 'not_in_sfu' | 'not_your_session'
 *   | 'no_media_node' | 'unknown_node' | 'recording_not_allowed' | 'recording_e2ee' | 'recording_active'
 *   | 'not_recording' | 'recording_failed' | 'livestream_not_allowed' | 'livestream_e2ee'
 *   | 'livestream_active' | 'not_live' | 'livestream_failed' | 'invalid_livestream'
 *   | 'resume_failed' | 'roles_fixed' | 'internal'} ErrorCode
 */

/**
 * `welcome`: you are in; everything needed to render the meeting.
 * @typedef {object} WelcomeMessage
 * @property {'welcome'} type
 * @property {ParticipantId} you
 * @property {string} meeting_id
 * @property {boolean} moderator
 * @property {Participant[]} participants
 * @property {boolean} locked
 * @property {MediaMode} media
 * @property {IceServer[]} ice_servers
 * @property {string[]} features granted by the invite token (e.g. `recording`)
 * @property {ParticipantTracks[]} tracks already published on the media node by others
 * @property {boolean} recording
 * @property {boolean} [livestream] the meeting is streamed live
 * @property {{secret: string, window_ms: number}} [resume] how to come back as this participant
 *   after the socket drops (page memory only: never stored, logged or put in a URL)
 * @property {boolean} [lobby] newcomers knock
 * @property {number} [last_n] most videos this page receives through a media node (the
 *   operator's cap: the featured tile, shared screens and the latest speakers); absent: no cap
 */

/**
 * A reaction (`protocol/src/reaction.rs`): shown for a moment, kept nowhere.
 * @typedef {'thumbs_up' | 'applause' | 'laugh' | 'surprise' | 'heart' | 'celebrate'} Reaction
 */

/**
 * Someone knocking, as moderators see them (`protocol/src/lobby.rs` `Knocker`).
 * @typedef {object} Knocker
 * @property {string} id the knock id (not a participant id)
 * @property {string} [name] the name they typed
 */

/**
 * `error`: a message was refused, or something went wrong.
 * @typedef {object} ErrorMessage
 * @property {'error'} type
 * @property {ErrorCode} code
 * @property {string} message
 * @property {string} [request] the `type` of the refused message, when known
 */

/**
 * Every message the edge sends (the envelope's `v` checked and left on by `Signaling`).
 * @typedef {WelcomeMessage
 *   | {type: 'waiting', reason: 'host_absent' | 'lobby'}
 *   | {type: 'lobby', enabled: boolean, knocking: Knocker[]}
 *   | {type: 'refused', reason: 'moderator' | 'meeting_ended'}
 *   | {type: 'meeting_ended', by: ParticipantId}
 *   | {type: 'reaction', from: ParticipantId, reaction: Reaction}
 *   | {type: 'participant_joined', participant: Participant}
 *   | {type: 'participant_updated', participant: Participant}
 *   | {type: 'participant_left', id: ParticipantId, reason: LeaveReason}
 *   | {type: 'chat', from: ParticipantId, text: string, to?: ParticipantId, at: number}
 *   | {type: 'muted', kind: MediaKind, by: ParticipantId}
 *   | {type: 'kicked', by: ParticipantId}
 *   | {type: 'room_locked', locked: boolean, by: ParticipantId}
 *   | {type: 'recording', active: boolean, by?: ParticipantId, restarting?: boolean}
 *   | {type: 'livestream', active: boolean, by?: ParticipantId, restarting?: boolean}
 *   | {type: 'recording_status_link', token: string}
 *   | {type: 'media_mode', media: MediaMode}
 *   | {type: 'signal', from: ParticipantId, payload: SignalPayload}
 *   | {type: 'e2ee_key', from: ParticipantId, blob: string}
 *   | ({type: 'tracks'} & ParticipantTracks)
 *   | {type: 'dominant_speaker', id: ParticipantId}
 *   | {type: 'video_paused', id: ParticipantId, track: string, paused: boolean}
 *   | {type: 'send_layers', track: string, rids: string[]}
 *   | {type: 'password_guessing', wrong_guesses: number, addresses: number, limited: boolean}
 *   | {type: 'speaker_stats', stats: SpeakerStat[]}
 *   | {type: 'node_moved', reason: 'node_lost' | 'drain'}
 *   | ErrorMessage
 *   | {type: 'pong'}} ServerMessage
 */

// ---- Page -> media node HTTP API (protocol/src/node.rs; docs/media-node-api.md) ----------------

/**
 * @typedef {object} SessionDescription
 * @property {'offer' | 'answer'} type
 * @property {string} sdp
 */

/**
 * A track in a `sessions/new` or `tracks/new` request (`TrackObject`).
 * @typedef {object} NodeTrackObject
 * @property {'local' | 'remote'} location
 * @property {string | null} [mid] for `local`: the mid of the track's m-line in the offer
 * @property {string} trackName
 * @property {string} [sessionId] for `remote`: the session that pushed the track
 * @property {{preferredRid: string}} [simulcast]
 */

/**
 * Every error body of the node API (`ApiError`).
 * @typedef {object} NodeApiError
 * @property {string} errorCode
 * @property {string} errorDescription
 */

/**
 * The outcome for one track of a request (`TrackResult`).
 * @typedef {object} NodeTrackResult
 * @property {string} [mid]
 * @property {string} [trackName]
 * @property {string} [sessionId]
 * @property {NodeApiError} [error]
 */

/**
 * `POST /v1/sessions/new` request (`NewSessionRequest`).
 * @typedef {object} NewSessionRequest
 * @property {SessionDescription} [sessionDescription]
 * @property {NodeTrackObject[]} [tracks]
 */

/**
 * `POST /v1/sessions/new` answer (`NewSessionResponse`).
 * @typedef {object} NewSessionResponse
 * @property {string} sessionId
 * @property {SessionDescription} [sessionDescription]
 * @property {NodeTrackResult[]} [tracks] present when the request pushed tracks
 */

/**
 * `POST /v1/sessions/{id}/tracks/new` request (`TracksRequest`).
 * @typedef {object} TracksRequest
 * @property {SessionDescription} [sessionDescription]
 * @property {NodeTrackObject[]} tracks
 */

/**
 * Answer to `tracks/new` and `tracks/close` (`TracksResponse`): with
 * `requiresImmediateRenegotiation`, `sessionDescription` is the node's offer.
 * @typedef {object} TracksResponse
 * @property {boolean} requiresImmediateRenegotiation
 * @property {SessionDescription} [sessionDescription]
 * @property {NodeTrackResult[]} tracks
 */

/**
 * `PUT /v1/sessions/{id}/tracks/close` request (`CloseTracksRequest`).
 * @typedef {object} CloseTracksRequest
 * @property {{mid: string}[]} tracks
 * @property {boolean} force
 */

/**
 * `PUT /v1/sessions/{id}/tracks/view` request (`ViewTracksRequest`): how the page shows each
 * pulled video (height in device pixels; not shown: no video is sent).
 * @typedef {object} ViewTracksRequest
 * @property {{mid: string, shown: boolean, height?: number, pinned: boolean}[]} tracks
 */

/**
 * `PUT /v1/sessions/{id}/renegotiate` request (`RenegotiateRequest`).
 * @typedef {object} RenegotiateRequest
 * @property {SessionDescription} sessionDescription
 */

export {};
