//! `cargo xtask bench`: click-to-photon latency on Xvfb.
//!
//! A test X window toggles its colour on every click. The bench sends a click over the
//! WebSocket and times until the first whole frame (all its rectangles composed) whose
//! centre shows the new colour.
//! Reports median and p95 over 50 clicks at 1280×720 and 1920×1080.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::xclient::TestWindow;
use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const CLICKS: usize = 50;

fn centre_is_blue(picture: &Composed) -> bool {
    let px = picture.pixel(picture.width / 2, picture.height / 2);
    px[2] > px[0]
}

async fn run(width: u32, height: u32, fps: u32) {
    let x = Xvfb::start(width, height);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, true);
    let mut config = screen_config();
    config.fps = fps;
    let server = TestServer::start(config).await;
    let (mut ws, _) = ws_connect(&server).await;
    let mut picture = Composed::new(width, height);
    next_update(&mut ws, &mut picture).await;
    let mut blue = centre_is_blue(&picture);
    let mut ms = Vec::new();
    for seq in 1..=CLICKS as u64 {
        // Spread clicks over the capture period so the phase does not flatter the numbers.
        tokio::time::sleep(Duration::from_millis(40 + (seq * 7) % 33)).await;
        let t0 = Instant::now();
        let click = format!(r#"{{"type":"click","x":0.5,"y":0.5,"seq":{seq}}}"#);
        ws.send(Message::text(click)).await.expect("send");
        loop {
            next_update(&mut ws, &mut picture).await;
            if centre_is_blue(&picture) != blue {
                ms.push(t0.elapsed().as_secs_f64() * 1e3);
                blue = !blue;
                break;
            }
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "click-to-photon {width}x{height} @{fps} fps: median {:6.1} ms   p95 {:6.1} ms   min {:5.1}   max {:6.1}   (n={})",
        ms[ms.len() / 2],
        ms[ms.len() * 95 / 100],
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
    assert_eq!(window.color() == 0x3366cc, blue, "window and stream agree");
    server.shutdown().await;
}

#[tokio::main]
async fn main() {
    if !have("Xvfb") {
        return;
    }
    for (w, h) in [(1280, 720), (1920, 1080)] {
        for fps in [30, 60] {
            run(w, h, fps).await;
        }
    }
}
