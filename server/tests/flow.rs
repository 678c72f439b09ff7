//! Flow control over real sockets: a client that acks gets at most a small window of
//! frames ahead, and one that acks slowly gets the newest picture (a catch-up of what
//! changed), never a backlog, and never a stale tile.

mod common;

use std::time::{Duration, Instant};

use common::*;
use deskcast_server::Config;
use deskcast_shared::{ClientMessage, FrameHeader, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

async fn ack(ws: &mut Ws, seq: u64) {
    let msg = ClientMessage::Ack {
        frame: seq,
        decode_ms: None,
    };
    ws.send(Message::text(msg.to_json()))
        .await
        .expect("send ack");
}

/// The last rectangles' headers of the whole frames that arrive within `window`.
async fn frame_ends_within(ws: &mut Ws, window: Duration) -> Vec<FrameHeader> {
    let until = tokio::time::Instant::now() + window;
    let mut ends = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Binary(b) = m {
            let (h, _) = FrameHeader::decode(&b).expect("header");
            if h.is_last() {
                ends.push(h);
            }
        }
    }
    ends
}

/// Sequence numbers of the whole frames that arrive within `window`.
async fn frames_within(ws: &mut Ws, window: Duration) -> Vec<u64> {
    frame_ends_within(ws, window)
        .await
        .iter()
        .map(|h| h.seq)
        .collect()
}

/// A viewer of a 320×240 test pattern that acks, as the page does: it says so at once
/// (until then a client is paced by its socket alone), then acks its first frame.
async fn acking_viewer(server: &TestServer) -> Ws {
    let (mut ws, _) = ws_connect(server).await;
    ack(&mut ws, 0).await;
    let mut picture = Composed::new(320, 240);
    let first = next_update(&mut ws, &mut picture).await;
    ack(&mut ws, first[0].seq).await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_acks_gets_at_most_two_frames_ahead() {
    let mut config = Config::pattern(320, 240);
    config.fps = 60;
    let server = TestServer::start(config).await;
    let mut ws = acking_viewer(&server).await;
    // Acking from here on would keep frames coming; not acking holds them at two.
    let held = frames_within(&mut ws, Duration::from_millis(1200)).await;
    assert!(
        held.len() <= 2,
        "at most two frames in flight without acks: {held:?}"
    );
    assert!(!held.is_empty(), "but the window lets some through");
    // Acking the newest opens the window again.
    ack(&mut ws, *held.last().expect("one")).await;
    let resumed = frames_within(&mut ws, Duration::from_millis(300)).await;
    assert!(!resumed.is_empty(), "frames flow again after the ack");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_acker_gets_the_newest_picture_not_a_backlog() {
    let (w, h) = (640u32, 480u32);
    let mut config = Config::pattern(w, h);
    config.fps = 60;
    let server = TestServer::start(config).await;
    let (mut ws, _) = ws_connect(&server).await;
    let mut picture = Composed::new(w, h);
    let first = next_update(&mut ws, &mut picture).await;
    ack(&mut ws, first[0].seq).await;
    let mut last = first[0].seq;
    let mut jumps = Vec::new();
    let start = Instant::now();
    let mut stats = None;
    while start.elapsed() < Duration::from_secs(3) {
        // Draw slowly: 250 ms a frame, while the screen changes 60 times a second.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let headers = loop {
            match next_message(&mut ws).await {
                Message::Binary(b) => {
                    let hd = picture.apply(&b);
                    if hd.is_last() {
                        break hd;
                    }
                }
                Message::Text(t) => {
                    if let Ok(s @ ServerMessage::Stats { .. }) = ServerMessage::parse(t.as_str()) {
                        stats = Some(s);
                    }
                }
                _ => {}
            }
        };
        jumps.push(headers.seq - last);
        last = headers.seq;
        ack(&mut ws, last).await;
    }
    // Each frame skipped many updates: the viewer got what changed since, at once.
    let big = jumps.iter().filter(|&&j| j >= 5).count();
    assert!(
        big * 2 >= jumps.len(),
        "catch-ups, not a backlog: {jumps:?}"
    );
    // No stale tile: the box is in one place only (its band has one white run).
    let band_y = (h * 2 / 3 + (h - h * 2 / 3) / 2) as usize;
    let white: Vec<bool> = (0..w as usize)
        .map(|x| picture.pixel(x, band_y).iter().all(|&c| c > 200))
        .collect();
    let runs = white.windows(2).filter(|p| !p[0] && p[1]).count() + usize::from(white[0]);
    assert_eq!(runs, 1, "one box, no stale copies of it");
    let Some(ServerMessage::Stats {
        rtt_ms, quality, ..
    }) = stats
    else {
        panic!("an acking client gets stats once a second");
    };
    assert!(
        rtt_ms >= 200.0,
        "the round trip includes the slow draw: {rtt_ms}"
    );
    assert!(
        quality < 80,
        "late acks lowered this viewer's quality: {quality}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_to_input_goes_even_when_the_window_is_full() {
    let mut config = Config::pattern(320, 240);
    config.fps = 60;
    config.test_accept_input = true;
    let server = TestServer::start(config).await;
    let mut ws = acking_viewer(&server).await;
    // No more acks: two frames come, then the window is full.
    let held = frames_within(&mut ws, Duration::from_millis(600)).await;
    assert_eq!(held.len(), 2, "a full window: {held:?}");
    // Input: the frame that shows it still comes, one past the window, and only it.
    ws.send(Message::text(r#"{"type":"move","x":0.5,"y":0.5,"seq":5}"#))
        .await
        .expect("send");
    let answers: Vec<(u64, u64)> = frame_ends_within(&mut ws, Duration::from_millis(800))
        .await
        .iter()
        .map(|h| (h.seq, h.input_seq))
        .collect();
    assert_eq!(
        answers.len(),
        1,
        "one frame past the full window: {answers:?}"
    );
    assert_eq!(answers[0].1, 5, "and it shows the input: {answers:?}");
    server.shutdown().await;
}
