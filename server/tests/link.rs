//! A real slow link. The server runs in a network namespace; one viewer reaches it
//! through a veth pair whose namespace side is shaped with tbf (a slow link with a
//! deep 300 ms buffer, MTU 1500, as Wi-Fi and LTE have), another through an unshaped
//! veth pair. Both ack what they draw, as the browser client does. The shaped viewer's
//! frames must stay young (no backlog growing in buffers), and the fast viewer must
//! keep its full rate.
//!
//! Needs root (namespaces, tc): outside CI it skips loudly without; under `CI=true` it
//! fails.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::netns::{is_root, Links, Server};
use common::*;
use deskcast_shared::{ClientMessage, FrameHeader};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "link-test-control-token-0123456789";
const VIEW: &str = "link-test-view-token-0123456789";

/// The deskcast binary in the namespace, streaming the moving pattern.
fn start_server(links: &Links) -> (Server, u16) {
    links.deskcast(
        env!("CARGO_BIN_EXE_deskcast"),
        &[
            "--source",
            "pattern",
            "--size",
            "1920x1080",
            "--fps",
            "30",
            "--token",
            TOKEN,
            "--view-token",
            VIEW,
        ],
        &[],
    )
}

/// What a viewer saw: the age of each whole frame on arrival (same machine, one clock).
struct Seen {
    ages_ms: Vec<f64>,
    frames: usize,
    secs: f64,
}

async fn watch(addr: String, port: u16, token: &str, secs: u64) -> Seen {
    let mut req = format!("ws://{addr}:{port}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("connects in time")
    .expect("connects");
    // As the browser client does: say at once that this client acks.
    let hello = ClientMessage::Ack {
        frame: 0,
        decode_ms: None,
    };
    ws.send(Message::text(hello.to_json())).await.expect("send");
    let start = Instant::now();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut ages = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        let Message::Binary(b) = m else { continue };
        let (h, _) = FrameHeader::decode(&b).expect("header");
        if !h.is_last() {
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_micros() as u64;
        ages.push(now.saturating_sub(h.capture_us) as f64 / 1e3);
        let ack = ClientMessage::Ack {
            frame: h.seq,
            decode_ms: None,
        };
        if ws.send(Message::text(ack.to_json())).await.is_err() {
            break;
        }
    }
    Seen {
        frames: ages.len(),
        ages_ms: ages,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_keeps_frames_young_and_a_fast_viewer_keeps_its_rate() {
    if !is_root() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("this test needs root (network namespaces, tc) under CI=true");
        }
        eprintln!("\n!!! SKIPPING: the shaped-link test needs root (network namespaces, tc) !!!\n");
        return;
    }
    if !(have("ip") & have("tc")) {
        return;
    }
    // 256 kbit/s is well below what the moving pattern sends at 30 fps.
    let links = Links::create("256kbit");
    let (_server, port) = start_server(&links);
    let slow = tokio::spawn(watch(links.addrs[0].clone(), port, VIEW, 12));
    let fast = tokio::spawn(watch(links.addrs[1].clone(), port, TOKEN, 12));
    let (slow, fast) = (
        slow.await.expect("slow viewer"),
        fast.await.expect("fast viewer"),
    );

    let rate = |s: &Seen| s.frames as f64 / s.secs;
    eprintln!(
        "shaped: {:.1} fps, age p50 {:.0} ms p95 {:.0} ms; plain: {:.1} fps, age p95 {:.0} ms",
        rate(&slow),
        percentile(&slow.ages_ms, 0.5),
        percentile(&slow.ages_ms, 0.95),
        rate(&fast),
        percentile(&fast.ages_ms, 0.95)
    );
    assert!(
        slow.frames >= 10,
        "the slow viewer still gets pictures: {}",
        slow.frames
    );
    // Skip the keyframe's crossing; then frames stay young instead of queueing.
    let settled = &slow.ages_ms[slow.ages_ms.len() / 4..];
    assert!(
        percentile(settled, 0.95) <= 1000.0,
        "frames on the slow link stay young: p95 {:.0} ms",
        percentile(settled, 0.95)
    );
    let third = settled.len() / 3;
    let (early, late) = (&settled[..third], &settled[settled.len() - third..]);
    assert!(
        percentile(late, 0.5) <= percentile(early, 0.5) + 250.0,
        "and their age does not grow: {:.0} ms then {:.0} ms",
        percentile(early, 0.5),
        percentile(late, 0.5)
    );
    assert!(
        rate(&fast) >= 20.0,
        "the viewer on the fast link keeps its rate: {:.1} fps",
        rate(&fast)
    );
}
