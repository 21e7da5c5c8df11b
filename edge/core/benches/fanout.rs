//! Fan-out of the room core: a 100-participant room, joins (roster traffic) then chat. Prints
//! deliveries (one message queued for one socket) per second on one core.
//! Run: `cargo bench -p edgemeet-core --bench fanout` (or `tests/run --bench`).

use std::time::Instant;

use edgemeet_core::{ClientInfo, EdgeConfig, Effect, Env, Input, Room, route};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn main() {
    let participants: u64 = 100;
    let chats: u64 = 20_000;
    let mut config = EdgeConfig {
        hash_key: "bench-hash-key-0123456789".into(),
        ..Default::default()
    };
    config.limits.room_capacity = 1000;
    config.limits.room_sockets_per_address = 10_000;
    config.limits.message_burst = u32::MAX / 2;
    config.limits.messages_per_second = u32::MAX / 2;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut room = Room::new(route(&config, None, "bench-room").unwrap());
    let mut now = 1_700_000_000_000u64;

    let run = |room: &mut Room, rng: &mut ChaCha20Rng, now: u64, input: Input| -> u64 {
        let mut env = Env {
            config: &config,
            now_ms: now,
            rng,
        };
        room.handle(&mut env, input)
            .iter()
            .filter(|e| matches!(e, Effect::Send { .. }))
            .count() as u64
    };

    let start = Instant::now();
    let mut join_deliveries = 0;
    for conn in 0..participants {
        run(
            &mut room,
            &mut rng,
            now,
            Input::Open {
                conn,
                client: ClientInfo::default(),
            },
        );
        let join = r#"{"v":1,"type":"join","profile":{"name":"Participant"}}"#.to_string();
        join_deliveries += run(&mut room, &mut rng, now, Input::Text { conn, text: join });
        now += 1;
    }
    let join_time = start.elapsed();

    let start = Instant::now();
    let mut chat_deliveries = 0;
    for i in 0..chats {
        let text = format!(
            r#"{{"v":1,"type":"chat","text":"message number {i} with some ordinary length"}}"#
        );
        chat_deliveries += run(
            &mut room,
            &mut rng,
            now,
            Input::Text {
                conn: i % participants,
                text,
            },
        );
        now += 1;
    }
    let chat_time = start.elapsed();

    let rate = |n: u64, t: std::time::Duration| n as f64 / t.as_secs_f64();
    println!("edge/core fan-out, {participants} participants, one core");
    println!("| phase | inputs | deliveries | seconds | deliveries/s |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| joins (roster) | {participants} | {join_deliveries} | {:.4} | {:.0} |",
        join_time.as_secs_f64(),
        rate(join_deliveries, join_time)
    );
    println!(
        "| chat to all | {chats} | {chat_deliveries} | {:.4} | {:.0} |",
        chat_time.as_secs_f64(),
        rate(chat_deliveries, chat_time)
    );
    let total = join_deliveries + chat_deliveries;
    let time = join_time + chat_time;
    println!(
        "| total | {} | {total} | {:.4} | {:.0} |",
        participants + chats,
        time.as_secs_f64(),
        rate(total, time)
    );
}
