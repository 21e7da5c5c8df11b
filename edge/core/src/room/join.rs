//! Joining: auth per tenant mode, capacity, password, the lobby (`lobby.rs`), admission.

use edgemeet_protocol::client::{Join, MediaState, Profile};
use edgemeet_protocol::server::WaitReason;
use edgemeet_protocol::{ErrorCode, ProtocolError, ServerMessage};

use super::{ConnId, ConnState, Env, Meeting, Member, Out, Room};
use crate::auth::{Identity, phantom_tenant, verify_invite};
use crate::config::AuthMode;

/// Who is joining, once auth has spoken.
pub(super) struct Admission {
    pub(super) profile: Profile,
    /// What auth says (open rooms: the room's `moderation` decides at admission).
    pub(super) moderator: bool,
    pub(super) host: bool,
    /// Came with a valid token (in jwt-host mode, not a guest).
    pub(super) token: bool,
    pub(super) features: Vec<String>,
    /// What the token says about the user: fixed for the participant's stay.
    pub(super) token_profile: Profile,
}

impl Room {
    pub(super) fn join(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        join: Join,
    ) -> Result<(), ProtocolError> {
        let config = env.config;
        // An unknown tenant answers as a jwt tenant would to a bad token: nobody learns which
        // tenants exist by trying names.
        let phantom;
        let tenant = match config.tenant(&self.address.tenant) {
            Some(t) => t,
            None => {
                phantom = phantom_tenant(&config.hash_key, &self.address.tenant);
                &phantom
            }
        };
        let profile = crate::profile::validate(&join.profile)?;
        let query_token = self
            .conns
            .get(&conn)
            .and_then(|c| c.client.query_token.clone());
        let token = join.token.or(query_token);
        let identity = match (tenant.auth, token) {
            (AuthMode::Open, _) => None,
            (_, Some(token)) => {
                let now_s = env.now_ms / 1000;
                Some(verify_invite(
                    &self.address.tenant,
                    tenant,
                    &self.address.room,
                    &token,
                    now_s,
                )?)
            }
            (AuthMode::Jwt, None) => {
                return Err(ProtocolError::new(
                    ErrorCode::TokenRequired,
                    "this room needs an invite token",
                ));
            }
            (AuthMode::JwtHost, None) => None,
        };
        let mut admission = admission(tenant.auth, identity, profile);
        admission.profile = crate::profile::allow_avatar(admission.profile, &config.avatar_hosts);

        if self.participant_count() >= config.limits.room_capacity {
            return Err(ProtocolError::new(ErrorCode::RoomFull, "the room is full"));
        }
        self.check_password(env, out, conn, admission.host, join.password.as_deref())?;

        let host_present = self
            .meeting
            .as_ref()
            .is_some_and(|m| m.members.values().any(|p| p.host));
        // jwt-host: a guest before any host waits, and knocks once one is in: early guests are
        // not let in wholesale when the host comes. With the lobby on, all but hosts knock.
        if tenant.auth == AuthMode::JwtHost && !admission.token && !host_present {
            return self.knock(env, out, conn, admission, WaitReason::HostAbsent);
        }
        let lobby_on = self.meeting.as_ref().is_some_and(|m| m.lobby);
        if lobby_on && !admission.host {
            return self.knock(env, out, conn, admission, WaitReason::Lobby);
        }
        let is_host = admission.host;
        self.admit(env, out, conn, admission);
        if is_host && !host_present {
            self.host_arrived(out);
        }
        Ok(())
    }

    pub(super) fn admit(&mut self, env: &mut Env, out: &mut Out, conn: ConnId, who: Admission) {
        let moderator = self.moderator_on_arrival(env, who.moderator);
        let meeting = self.meeting.get_or_insert_with(|| Meeting {
            id: crate::crypto::random_hex(env.rng, 16),
            order: Vec::new(),
            members: Default::default(),
            password: None,
            guessing: Default::default(),
            speakers: Default::default(),
            media: Default::default(),
            recording: None,
            livestream: None,
            composition_scene: None,
            composition_grid: false,
            lobby: false,
        });
        let id = loop {
            let id = crate::crypto::random_hex(env.rng, 6);
            if !meeting.members.contains_key(&id) {
                break id;
            }
        };
        meeting.members.insert(
            id.clone(),
            Member {
                conn,
                profile: who.profile,
                moderator,
                host: who.host,
                features: who.features,
                media: MediaState::default(),
                tracks: None,
                token_profile: who.token_profile,
                away_since: None,
                resume_hash: None,
                hand: None,
            },
        );
        meeting.order.push(id.clone());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Joined { id: id.clone() };
        }

        let changed = self.plan_media(env, out, false);
        self.send_welcome(env, out, &id);
        let meeting = self.meeting.as_ref().expect("just admitted");
        let member = &meeting.members[&id];
        let others: Vec<ConnId> = self
            .member_conns()
            .into_iter()
            .filter(|c| *c != conn)
            .collect();
        out.send_many(
            others,
            &ServerMessage::ParticipantJoined {
                participant: Self::participant(&id, member),
            },
        );
        if changed {
            self.announce_media(env, out, Some(&id));
        }
    }

    /// The meeting as `id` sees it, with a fresh resume secret (the one before is void).
    pub(super) fn send_welcome(&mut self, env: &mut Env, out: &mut Out, id: &str) {
        let resume = self.new_resume_secret(env, id);
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let member = &meeting.members[id];
        let participants = meeting
            .order
            .iter()
            .map(|p| Self::participant(p, &meeting.members[p]))
            .collect();
        let tracks = meeting
            .order
            .iter()
            .filter(|p| p.as_str() != id)
            .filter_map(|p| Self::tracks_of(p, &meeting.members[p]))
            .collect();
        let welcome = ServerMessage::Welcome {
            you: id.to_string(),
            meeting_id: meeting.id.clone(),
            moderator: member.moderator,
            participants,
            locked: meeting.password.is_some(),
            media: self.media_view(env, id),
            ice_servers: ice_servers(env, id),
            features: member.features.clone(),
            tracks,
            recording: meeting.recording.is_some(),
            livestream: meeting.livestream.is_some(),
            resume,
            lobby: meeting.lobby,
            last_n: env.config.last_n,
        };
        out.send(member.conn, &welcome);
        self.welcome_lobby(out, id);
    }
}

/// Static servers plus per-participant TURN credentials.
fn ice_servers(env: &Env, id: &str) -> Vec<edgemeet_protocol::server::IceServer> {
    let mut servers = env.config.ice_servers.clone();
    if let Some(turn) = &env.config.turn {
        servers.push(crate::turn::credentials(turn, id, env.now_ms / 1000));
    }
    servers
}

fn admission(mode: AuthMode, identity: Option<Identity>, profile: Profile) -> Admission {
    match (mode, identity) {
        (AuthMode::Open, _) => Admission {
            profile,
            moderator: true,
            host: false,
            token: false,
            features: Vec::new(),
            token_profile: Profile::default(),
        },
        (_, Some(id)) => {
            // What the token says about the user wins over what the browser typed, now and for
            // the rest of the stay (`update_profile`).
            let token_profile = token_fields(&id);
            Admission {
                profile: with_token_fields(&token_profile, profile),
                moderator: id.moderator,
                host: id.moderator,
                token: true,
                features: id.features,
                token_profile,
            }
        }
        (_, None) => Admission {
            profile,
            moderator: false,
            host: false,
            token: false,
            features: Vec::new(),
            token_profile: Profile::default(),
        },
    }
}

/// The token's profile fields that pass validation, each on its own (a bad avatar in a token
/// does not cost the user the name it gives).
fn token_fields(id: &Identity) -> Profile {
    let valid = |p: Profile| crate::profile::validate(&p).unwrap_or_default();
    Profile {
        name: valid(Profile {
            name: id.name.clone(),
            ..Default::default()
        })
        .name,
        email: valid(Profile {
            email: id.email.clone(),
            ..Default::default()
        })
        .email,
        avatar: valid(Profile {
            avatar: id.avatar.clone(),
            ..Default::default()
        })
        .avatar,
    }
}

/// `typed` with every field the token gives replaced by the token's.
pub(super) fn with_token_fields(token: &Profile, typed: Profile) -> Profile {
    Profile {
        name: token.name.clone().or(typed.name),
        email: token.email.clone().or(typed.email),
        avatar: token.avatar.clone().or(typed.avatar),
    }
}
