//! A locked room's password: who may try it, and how often.
//!
//! Three limits, all on wrong guesses (a right password costs nothing):
//! - per socket and per client address (IPv6: per /64): `password_attempts` in `password_window_ms`;
//! - per room, across all addresses: a budget of `password_room_burst` guesses refilled at
//!   `password_room_guesses_per_hour`, so that more addresses do not buy more guesses;
//! - the budget's last `password_room_reserve` guesses serve only addresses that have not guessed
//!   wrong in this meeting. Someone who has been guessing cannot spend them: a newcomer with the
//!   right password gets in while others guess, unless the guessers keep bringing fresh addresses
//!   (each costs them one guess of the same budget).
//!
//! Moderators hear of it (`password_guessing`) once the room sees more wrong guesses in an hour
//! than one person may make in a window, and then at most once a minute while it goes on.

use std::collections::BTreeMap;

use edgemeet_protocol::{ErrorCode, ProtocolError, ServerMessage};
use serde::{Deserialize, Serialize};

use super::{ConnId, Env, Out, Room};
use crate::address::keyed_hash;
use crate::ratelimit::FailureWindow;

const HOUR_MS: u64 = 3_600_000;
/// Moderators are told again at most this often while guessing goes on.
const NOTICE_EVERY_MS: u64 = 60_000;
/// Addresses remembered per meeting. The room's budget bounds them already (one new address per
/// wrong guess at most: about 50 + 60 an hour by default); this is a backstop for odd settings.
/// Beyond it, an address not remembered counts as one that has guessed (no reserve).
const MAX_ADDRESSES: usize = 4096;
/// Characters of an address's keyed hash kept: 48 bits tell a meeting's guessers apart, and keep
/// a Durable Object's snapshot small.
const ADDRESS_KEY_CHARS: usize = 12;

/// A room's guessing state, reset with the meeting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PasswordGuard {
    /// The room's budget of wrong guesses; `None` until first used (then it starts full).
    budget: Option<Budget>,
    /// Addresses (a prefix of their keyed hash) that guessed wrong in this meeting.
    addresses: BTreeMap<String, AddressRecord>,
    /// When the room's wrong guesses of the last hour happened.
    wrong_at: Vec<u64>,
    told_at: Option<u64>,
    told_limited: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Budget {
    tokens: f64,
    last_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct AddressRecord {
    recent: FailureWindow,
    last_ms: u64,
}

/// Why a try was not checked.
enum Refusal {
    /// The socket or its address guessed too often.
    Address,
    /// The room's budget is spent (for this address).
    Room,
}

impl PasswordGuard {
    pub(super) fn new_password(&mut self) {
        self.budget = None;
        self.told_limited = false;
    }

    fn tokens(&mut self, env: &Env) -> f64 {
        let l = &env.config.limits;
        let burst = f64::from(l.password_room_burst);
        let b = self.budget.get_or_insert(Budget {
            tokens: burst,
            last_ms: env.now_ms,
        });
        let elapsed = env.now_ms.saturating_sub(b.last_ms) as f64;
        let per_ms = f64::from(l.password_room_guesses_per_hour) / HOUR_MS as f64;
        b.tokens = (b.tokens + elapsed * per_ms).min(burst);
        b.last_ms = b.last_ms.max(env.now_ms);
        b.tokens
    }

    /// Whether an address may have its try checked now: a fresh one may take the budget's last
    /// tokens, one that has guessed wrong only those above the reserve.
    fn room_allows(&mut self, env: &Env, addr: &str) -> bool {
        let fresh = self.is_fresh(addr);
        let reserve = f64::from(env.config.limits.password_room_reserve);
        let tokens = self.tokens(env);
        if fresh {
            tokens >= 1.0
        } else {
            tokens >= 1.0 + reserve
        }
    }

    fn is_fresh(&self, addr: &str) -> bool {
        !self.addresses.contains_key(addr) && self.addresses.len() < MAX_ADDRESSES
    }

    fn address_blocked(&mut self, env: &Env, addr: &str) -> bool {
        let l = &env.config.limits;
        self.addresses.get_mut(addr).is_some_and(|a| {
            a.recent
                .blocked(l.password_attempts, l.password_window_ms, env.now_ms)
        })
    }

    fn record_wrong(&mut self, env: &Env, addr: &str) {
        if let Some(b) = self.budget.as_mut() {
            b.tokens = (b.tokens - 1.0).max(0.0);
        }
        if self.addresses.len() < MAX_ADDRESSES || self.addresses.contains_key(addr) {
            let a = self.addresses.entry(addr.to_string()).or_default();
            a.recent.record(env.now_ms);
            a.last_ms = env.now_ms;
        }
        self.wrong_at.push(env.now_ms);
    }

    /// Wrong guesses and distinct guessing addresses in the last hour.
    fn last_hour(&mut self, now: u64) -> (u32, u32) {
        self.wrong_at.retain(|&t| now.saturating_sub(t) < HOUR_MS);
        let addresses = self
            .addresses
            .values()
            .filter(|a| now.saturating_sub(a.last_ms) < HOUR_MS)
            .count();
        (self.wrong_at.len() as u32, addresses as u32)
    }
}

impl Room {
    /// Locked rooms need the password, except for token-holding moderators (`host`).
    pub(super) fn check_password(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        conn: ConnId,
        host: bool,
        given: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let Some(meeting) = self.meeting.as_mut() else {
            return Ok(());
        };
        let Some(expected) = meeting.password.clone() else {
            return Ok(());
        };
        if host {
            return Ok(());
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let l = &env.config.limits;
        let addr: String = c.client.addr_key.chars().take(ADDRESS_KEY_CHARS).collect();
        let guard = &mut meeting.guessing;
        let refusal =
            if c.password_failures
                .blocked(l.password_attempts, l.password_window_ms, env.now_ms)
                || guard.address_blocked(env, &addr)
            {
                Some(Refusal::Address)
            } else if given.is_some() && !guard.room_allows(env, &addr) {
                Some(Refusal::Room)
            } else {
                None
            };
        match refusal {
            Some(Refusal::Address) => {
                return Err(ProtocolError::new(
                    ErrorCode::PasswordRateLimited,
                    "too many wrong passwords from here; wait a minute",
                ));
            }
            Some(Refusal::Room) => {
                self.tell_moderators(env, out, true);
                return Err(ProtocolError::new(
                    ErrorCode::PasswordRateLimited,
                    "too many wrong passwords for this room; try again in a minute",
                ));
            }
            None => {}
        }
        let Some(given) = given else {
            return Err(ProtocolError::new(
                ErrorCode::PasswordRequired,
                "this room is locked with a password",
            ));
        };
        if crate::crypto::constant_time_eq(
            password_hash(&meeting.id, given).as_bytes(),
            expected.as_bytes(),
        ) {
            return Ok(());
        }
        c.password_failures.record(env.now_ms);
        guard.record_wrong(env, &addr);
        self.tell_moderators(env, out, false);
        Err(ProtocolError::new(
            ErrorCode::PasswordWrong,
            "wrong password",
        ))
    }

    /// Tell the moderators that someone is guessing, once it is more than typos, and then at
    /// most once a minute (at once when the room's budget has just run out).
    fn tell_moderators(&mut self, env: &Env, out: &mut Out, refused: bool) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        let now = env.now_ms;
        let guard = &mut meeting.guessing;
        let limited = refused || guard.tokens(env) < 1.0;
        let newly_limited = limited && !guard.told_limited;
        let due = guard
            .told_at
            .is_none_or(|t| now.saturating_sub(t) >= NOTICE_EVERY_MS);
        if !due && !newly_limited {
            return;
        }
        let (wrong_guesses, addresses) = guard.last_hour(now);
        if wrong_guesses < env.config.limits.password_attempts && !refused {
            return;
        }
        guard.told_at = Some(now);
        guard.told_limited = limited;
        let moderators: Vec<ConnId> = meeting
            .order
            .iter()
            .filter_map(|id| meeting.members.get(id))
            .filter(|m| m.moderator)
            .map(|m| m.conn)
            .collect();
        out.send_many(
            moderators,
            &ServerMessage::PasswordGuessing {
                wrong_guesses,
                addresses,
                limited,
            },
        );
    }
}

pub(super) fn password_hash(meeting_id: &str, password: &str) -> String {
    keyed_hash(meeting_id, password)
}
