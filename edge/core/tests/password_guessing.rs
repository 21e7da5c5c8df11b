//! Guessing a locked room's password from many addresses: a bound per room, a newcomer with the
//! right password still gets in, and the moderators are told.

mod support;

use edgemeet_core::{ConnId, Input};
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::Harness;

const PASSWORD: &str = "correct horse";

/// A room locked by participant 1 (conn 1), in a harness whose clock the attack moves.
fn locked_room() -> Harness {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.send(1, json!({"type": "set_password", "password": PASSWORD}));
    h.take(1);
    h
}

/// One try on a fresh socket from `addr`, which closes afterwards, as an attacker would do to
/// dodge per-socket limits. Returns the answer's error code, or `None` when admitted.
fn try_once(h: &mut Harness, conn: ConnId, addr: &str, password: &str) -> Option<ErrorCode> {
    h.open_from(conn, addr);
    let answer = h.try_join(conn, json!({"password": password}));
    let code = match answer {
        Some(ServerMessage::Error { code, .. }) => Some(code),
        Some(ServerMessage::Welcome { .. }) => None,
        other => panic!("{other:?}"),
    };
    if code.is_some() {
        h.input(Input::Closed { conn });
    }
    code
}

/// `addresses` attackers, each trying a wrong password every `every_s` seconds for `secs`;
/// returns how many tries the room checked (answered `password_wrong`).
fn attack(
    h: &mut Harness,
    addresses: usize,
    every_s: u64,
    secs: u64,
    next_conn: &mut ConnId,
) -> u32 {
    let mut wrong = 0;
    for t in 0..secs {
        if t.is_multiple_of(every_s) {
            for a in 0..addresses {
                *next_conn += 1;
                let guess = format!("guess-{t}-{a}");
                if try_once(h, *next_conn, &format!("attacker-{a}"), &guess)
                    == Some(ErrorCode::PasswordWrong)
                {
                    wrong += 1;
                }
            }
        }
        h.now += 1_000;
    }
    wrong
}

#[test]
fn wrong_guesses_per_room_are_bounded_whatever_the_number_of_addresses() {
    let limits = Harness::new(None).config.limits.clone();
    let bound = limits.password_room_burst + limits.password_room_guesses_per_hour;
    for addresses in [1, 30, 300] {
        let mut h = locked_room();
        let mut conn = 10;
        let wrong = attack(&mut h, addresses, 10, 3_600, &mut conn);
        assert!(
            wrong <= bound,
            "{addresses} addresses: {wrong} guesses checked in an hour, bound {bound}"
        );
        assert!(wrong > 0);
    }
}

#[test]
fn a_newcomer_with_the_right_password_gets_in_while_others_guess() {
    // One guessing address: the newcomer is not even slowed down.
    let mut h = locked_room();
    let mut conn = 10;
    attack(&mut h, 1, 2, 600, &mut conn);
    assert_eq!(try_once(&mut h, 9_999, "newcomer", PASSWORD), None);

    // Thirty: they spend the room's budget with their first tries, then may not touch the
    // reserve; the newcomer, trying every 10 s, is in within a few minutes.
    let mut h = locked_room();
    let mut conn = 10;
    attack(&mut h, 30, 2, 60, &mut conn);
    let start = h.now;
    let mut admitted = None;
    for _ in 0..60 {
        attack(&mut h, 30, 2, 10, &mut conn);
        conn += 1;
        if try_once(&mut h, conn, "newcomer", PASSWORD).is_none() {
            admitted = Some(h.now - start);
            break;
        }
    }
    let waited = admitted.expect("the newcomer got in within 10 minutes");
    assert!(waited <= 5 * 60_000, "waited {waited} ms");
}

#[test]
fn the_same_address_is_still_limited_per_address() {
    let mut h = locked_room();
    let mut conn = 10;
    for _ in 0..3 {
        conn += 1;
        assert_eq!(
            try_once(&mut h, conn, "shared", "wrong"),
            Some(ErrorCode::PasswordWrong)
        );
    }
    assert_eq!(
        try_once(&mut h, conn + 1, "shared", PASSWORD),
        Some(ErrorCode::PasswordRateLimited)
    );
    assert_eq!(try_once(&mut h, conn + 2, "elsewhere", PASSWORD), None);
}

#[test]
fn moderators_are_told_and_only_they() {
    let mut h = Harness::new(Some("host"));
    let host = h.token("host", json!({"moderator": true}), json!({}));
    h.join(1, json!({"token": host}));
    h.join(2, json!({}));
    h.send(1, json!({"type": "set_password", "password": PASSWORD}));
    h.take(1);
    h.take(2);
    let told = |h: &mut Harness, conn| {
        h.take(conn)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::PasswordGuessing {
                    wrong_guesses,
                    addresses,
                    limited,
                } => Some((wrong_guesses, addresses, limited)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Two typos are not an attack.
    try_once(&mut h, 10, "a", "typo-1");
    try_once(&mut h, 11, "a", "typo-2");
    assert!(told(&mut h, 1).is_empty());
    try_once(&mut h, 12, "b", "guess-3");
    assert_eq!(told(&mut h, 1), [(3, 2, false)]);
    assert!(told(&mut h, 2).is_empty(), "guests are not told");
    // Then at most once a minute.
    h.now += 10_000;
    try_once(&mut h, 13, "c", "guess-4");
    assert!(told(&mut h, 1).is_empty());
    h.now += 60_000;
    try_once(&mut h, 14, "d", "guess-5");
    assert_eq!(told(&mut h, 1), [(5, 4, false)]);
    // The room's budget running out is news at once.
    let mut conn = 100;
    let mut limited = Vec::new();
    let more_than_the_budget = h.config.limits.password_room_burst + 5;
    for a in 0..more_than_the_budget {
        conn += 1;
        try_once(&mut h, conn, &format!("x{a}"), "guess");
        limited.extend(told(&mut h, 1).into_iter().filter(|t| t.2));
    }
    assert_eq!(limited.len(), 1, "{limited:?}");
}

#[test]
fn a_new_password_gets_a_full_budget() {
    let mut h = locked_room();
    let mut conn = 10;
    let more_than_the_budget = h.config.limits.password_room_burst as usize + 5;
    attack(&mut h, more_than_the_budget, 1, 1, &mut conn);
    assert_eq!(
        try_once(&mut h, 9_000, "newcomer", PASSWORD),
        Some(ErrorCode::PasswordRateLimited),
        "the budget is spent"
    );
    h.send(1, json!({"type": "set_password", "password": "a new one"}));
    assert_eq!(try_once(&mut h, 9_001, "newcomer", "a new one"), None);
}
