//! Password guessing against one locked room, on the core with a simulated clock and the default
//! limits: attackers from 1, 30 and 300 addresses each try a wrong password every 2 s (a new
//! socket per try, so per-socket limits do not slow them); a newcomer with the right password
//! arrives 5 minutes into the attack and tries every 10 s (after the attackers of the same
//! second: the worst case). Prints wrong guesses the room checked per hour and how long the
//! newcomer waited. Run: `cargo bench -p edgemeet-core --bench password_guessing`
//! (`tests/bench/edge-core.sh`).

use edgemeet_core::{ClientInfo, ConnId, EdgeConfig, Effect, Env, Input, Room, route};
use edgemeet_protocol::server::decode_server;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PASSWORD: &str = "correct horse battery";
const HOURS: u64 = 5;
const ATTACK_EVERY_S: u64 = 2;
const NEWCOMER_AT_S: u64 = 300;
const NEWCOMER_EVERY_S: u64 = 10;

struct Sim {
    room: Room,
    config: EdgeConfig,
    rng: ChaCha20Rng,
    now: u64,
    next_conn: ConnId,
}

impl Sim {
    fn new() -> Self {
        let config = EdgeConfig {
            hash_key: "bench-hash-key-0123456789".into(),
            ..Default::default()
        };
        let room = Room::new(route(&config, None, "bench-room").unwrap());
        let mut sim = Self {
            room,
            config,
            rng: ChaCha20Rng::seed_from_u64(7),
            now: 1_700_000_000_000,
            next_conn: 1,
        };
        sim.open("moderator");
        sim.text(1, r#"{"v":1,"type":"join"}"#);
        let lock = format!(r#"{{"v":1,"type":"set_password","password":"{PASSWORD}"}}"#);
        sim.text(1, &lock);
        sim
    }

    fn input(&mut self, input: Input) -> Vec<Effect> {
        let mut env = Env {
            config: &self.config,
            now_ms: self.now,
            rng: &mut self.rng,
        };
        self.room.handle(&mut env, input)
    }

    fn open(&mut self, addr: &str) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let client = ClientInfo {
            addr_key: edgemeet_core::keyed_hash("bench-addresses", addr),
            ..Default::default()
        };
        self.input(Input::Open { conn, client });
        conn
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<ServerMessage> {
        let text = text.to_string();
        self.input(Input::Text { conn, text })
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { conn: to, text } if to == conn => decode_server(&text).ok(),
                _ => None,
            })
            .collect()
    }

    /// One try on a new socket; `None` when admitted, else the refusal.
    fn try_password(&mut self, addr: &str, password: &str) -> Option<ErrorCode> {
        let conn = self.open(addr);
        let join = format!(r#"{{"v":1,"type":"join","password":"{password}"}}"#);
        let answer = self.text(conn, &join);
        match answer.first() {
            Some(ServerMessage::Welcome { .. }) => None,
            Some(ServerMessage::Error { code, .. }) => {
                self.input(Input::Closed { conn });
                Some(*code)
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

fn main() {
    let limits = EdgeConfig::default().limits;
    println!(
        "password guessing, one room, default limits: {} wrong per address per {} s, room budget {} refilled at {}/h, reserve {} for addresses that have not guessed",
        limits.password_attempts,
        limits.password_window_ms / 1000,
        limits.password_room_burst,
        limits.password_room_guesses_per_hour,
        limits.password_room_reserve
    );
    println!(
        "attackers try every {ATTACK_EVERY_S} s from each address; a newcomer with the right password arrives after {NEWCOMER_AT_S} s and tries every {NEWCOMER_EVERY_S} s"
    );
    println!("addresses | wrong guesses checked, hour 1..{HOURS} | newcomer in after");
    for addresses in [1usize, 30, 300] {
        let mut sim = Sim::new();
        let mut per_hour = vec![0u32; HOURS as usize];
        let mut newcomer_in: Option<u64> = None;
        for t in 0..HOURS * 3600 {
            if t.is_multiple_of(ATTACK_EVERY_S) {
                for a in 0..addresses {
                    let guess = format!("guess-{t}-{a}");
                    if sim.try_password(&format!("attacker{a}"), &guess)
                        == Some(ErrorCode::PasswordWrong)
                    {
                        per_hour[(t / 3600) as usize] += 1;
                    }
                }
            }
            if newcomer_in.is_none()
                && t >= NEWCOMER_AT_S
                && (t - NEWCOMER_AT_S).is_multiple_of(NEWCOMER_EVERY_S)
                && sim.try_password("newcomer", PASSWORD).is_none()
            {
                newcomer_in = Some(t - NEWCOMER_AT_S);
            }
            sim.now += 1_000;
        }
        let hours: Vec<String> = per_hour.iter().map(u32::to_string).collect();
        let waited = match newcomer_in {
            Some(0) => "at once".to_string(),
            Some(s) if s < 120 => format!("{s} s"),
            Some(s) => format!("{:.1} min", s as f64 / 60.0),
            None => format!("not within {HOURS} h"),
        };
        println!("{addresses:>9} | {:<40} | {waited}", hours.join(", "));
    }
}
