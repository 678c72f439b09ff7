//! `cargo bench -p deskcast-server --bench relay` (part of `cargo xtask bench`): one
//! origin, a real `nats-server`, four relays, up to 200 WebSocket viewers, on the
//! benchmarks' 1920×1080 desktop with a 640×360 video playing. Every server is the
//! release binary in its own process. Prints:
//! - the origin's CPU and upload (what its NATS connection sent, from nats-server's
//!   `/connz`) with 1 viewer at one relay, and with 200 spread over the four;
//! - the latency a relay adds: frame age on arrival (now − the header's capture time)
//!   at a viewer of the origin and at a viewer of a relay, side by side;
//! - 200 viewers on one relay: their update rates against the origin's own viewer's,
//!   and the relay's CPU.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
mod desk;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::nats::NatsServer;
use common::peer::Killed;
use common::*;
use desk::*;
use deskcast_shared::FrameHeader;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const STREAM: &str = "bench";

/// Viewers connect with the view token: view seats (`--max-clients`), not the
/// controller's few.
const TOKEN: &str = "relay-bench-control-token";
const VIEW: &str = "relay-bench-view-token-0001";

/// A release deskcast as its own process; returns it and its viewers' `/ws` URL.
fn start(args: &[&str], display: Option<&str>) -> (Killed, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskcast"));
    cmd.args(args)
        .args(["--token", TOKEN, "--view-token", VIEW])
        .args(["--port", "0", "--max-clients", "400"])
        .env("RUST_LOG", "deskcast=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(d) = display {
        cmd.env("DISPLAY", d);
    }
    let (server, host) = spawn_deskcast(cmd);
    (server, format!("ws://{host}/ws?token={VIEW}"))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What one viewer saw while measured.
struct Seen {
    updates: u64,
    /// Frame age on arrival, ms, of every update.
    ages: Vec<f64>,
}

/// Opens `n` viewers of each URL, waits for each one's first frame, then reads for
/// `SECONDS`. `during` starts measuring as the reading starts and returns what ends it;
/// returns what each viewer saw, per URL in order, and what `during` measured.
async fn watch(
    groups: &[(&str, usize)],
    during: impl FnOnce() -> Box<dyn FnOnce() -> String>,
) -> (Vec<Vec<Seen>>, String) {
    let mut sockets = Vec::new();
    for (g, (url, n)) in groups.iter().enumerate() {
        for _ in 0..*n {
            let (mut ws, _) = tokio_tungstenite::connect_async(*url)
                .await
                .expect("viewer connects");
            loop {
                let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
                    .await
                    .expect("a first frame within 20 s");
                if let Some(Ok(Message::Binary(b))) = m {
                    if FrameHeader::decode(&b).expect("header").0.is_last() {
                        break;
                    }
                }
            }
            sockets.push((g, ws));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let finish = during();
    let until = tokio::time::Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for (g, mut ws) in sockets {
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen {
                updates: 0,
                ages: Vec::new(),
            };
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
                if let Message::Binary(b) = m {
                    let (h, _) = FrameHeader::decode(&b).expect("header");
                    if h.is_last() {
                        seen.updates += 1;
                        seen.ages
                            .push(now_us().saturating_sub(h.capture_us) as f64 / 1e3);
                    }
                }
            }
            (g, seen)
        }));
    }
    let mut out: Vec<Vec<Seen>> = groups.iter().map(|_| Vec::new()).collect();
    for t in tasks {
        let (g, seen) = t.await.expect("viewer");
        out[g].push(seen);
    }
    (out, finish())
}

fn rates(seen: &[Seen]) -> (f64, f64) {
    let r: Vec<f64> = seen
        .iter()
        .map(|s| s.updates as f64 / SECONDS as f64)
        .collect();
    let min = r.iter().cloned().fold(f64::INFINITY, f64::min);
    (median(r), min)
}

#[tokio::main]
async fn main() {
    if let Ok(scene) = std::env::var("DESKCAST_BENCH_ANIMATE") {
        animate(&scene);
        return;
    }
    if !have("Xvfb") || !have("ffmpeg") || !have("nats-server") {
        return;
    }
    println!(
        "deskcast relay bench: {W}x{H} desktop, a 640x360 video at 30 fps, {SECONDS} s a scene"
    );
    let x = dressed_xvfb();
    let _animation = start_animation(&x.display, "video");
    let nats = NatsServer::start();
    let url = nats.url();
    let nats_args = ["--nats", url.as_str(), "--stream", STREAM];
    let mut origin_args = vec!["--fps", "30"];
    origin_args.extend_from_slice(&nats_args);
    let (origin, direct) = start(&origin_args, Some(&x.display));
    let mut relay_args = vec!["relay"];
    relay_args.extend_from_slice(&nats_args);
    let relays: Vec<(Killed, String)> = (0..4).map(|_| start(&relay_args, None)).collect();
    let origin_pid = origin.0.id();

    // The origin's cost, 1 viewer vs 200 over 4 relays.
    println!("\n| viewers | origin CPU | origin upload | viewer upd/s (median, min) |");
    println!("|---|---|---|---|");
    let mut base: Option<(f64, f64)> = None;
    for (label, per_relay) in [
        ("1 at one relay", [1, 0, 0, 0]),
        ("200 over 4 relays", [50; 4]),
    ] {
        let groups: Vec<(&str, usize)> = relays
            .iter()
            .zip(per_relay)
            .filter(|(_, n)| *n > 0)
            .map(|((_, u), n)| (u.as_str(), n))
            .collect();
        let (seen, cost) = watch(&groups, || {
            let monitor = nats.monitor;
            let (t0, c0, b0) = (
                Instant::now(),
                cpu_secs(origin_pid),
                common::nats::sent_by(monitor, "deskcast origin"),
            );
            Box::new(move || {
                let secs = t0.elapsed().as_secs_f64();
                let cpu = (cpu_secs(origin_pid) - c0) / secs * 100.0;
                let sent = common::nats::sent_by(monitor, "deskcast origin") - b0;
                let mbit = sent as f64 * 8.0 / secs / 1e6;
                format!("{cpu:.1}|{mbit:.2}")
            })
        })
        .await;
        let all: Vec<Seen> = seen.into_iter().flatten().collect();
        let (cpu, mbit) = split(&cost);
        let (med, min) = rates(&all);
        println!("| {label} | {cpu:.1}% | {mbit:.2} Mbit/s | {med:.1}, {min:.1} |");
        match base {
            None => base = Some((cpu, mbit)),
            Some((c1, m1)) => println!(
                "\norigin with 200 relay viewers / with 1: CPU {:.2}x, upload {:.2}x (target <= 1.1x)",
                cpu / c1,
                mbit / m1
            ),
        }
    }

    // The latency a relay adds: one viewer of the origin, one of a relay, together.
    let groups = [(direct.as_str(), 1), (relays[0].1.as_str(), 1)];
    let (seen, _) = watch(&groups, || Box::new(String::new)).await;
    let p50 = |s: &Seen| median(s.ages.clone());
    let (at_origin, at_relay) = (p50(&seen[0][0]), p50(&seen[1][0]));
    println!(
        "\nframe age on arrival, p50: {at_origin:.1} ms at the origin, {at_relay:.1} ms through a relay: {:.1} ms added (target <= 5 ms)",
        at_relay - at_origin
    );

    // 200 viewers on one relay, beside one viewer of the origin.
    let relay_pid = relays[0].0 .0.id();
    let groups = [(direct.as_str(), 1), (relays[0].1.as_str(), 200)];
    let (seen, cost) = watch(&groups, || {
        let (t0, c0) = (Instant::now(), cpu_secs(relay_pid));
        Box::new(move || {
            format!(
                "{:.1}",
                (cpu_secs(relay_pid) - c0) / t0.elapsed().as_secs_f64() * 100.0
            )
        })
    })
    .await;
    let origin_rate = seen[0][0].updates as f64 / SECONDS as f64;
    let (med, min) = rates(&seen[1]);
    let ages: Vec<f64> = seen[1]
        .iter()
        .flat_map(|s| s.ages.iter().cloned())
        .collect();
    println!(
        "\n200 /ws viewers on one relay: {med:.1} updates/s median, {min:.1} the slowest, against {origin_rate:.1} at the origin's own viewer; frame age p50 {:.0} ms; relay CPU {cost}%",
        median(ages)
    );
}

fn split(cost: &str) -> (f64, f64) {
    let mut it = cost
        .split('|')
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    (it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN))
}
