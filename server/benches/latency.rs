//! `cargo xtask bench`: click-to-photon latency on Xvfb.
//!
//! A test X window toggles its colour on every click. The bench sends a click over the
//! WebSocket and times until the first whole frame (all its rectangles composed) whose
//! centre shows the new colour.
//! Reports median and p95 over 50 clicks at 1280×720 and 1920×1080.
//!
//! Then the same in headless Chromium, as a user sees it, side by side with TigerVNC +
//! noVNC on the same desktop: from the page's `pointerdown` (the event's timestamp)
//! until the canvas first shows the new colour (read back from the canvas every few
//! ms), and for deskcast also until the X client saw the press while the button was
//! still held (press-and-hold).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::browser::{down, mouse, move_to, pause, up, Browser};
use common::xclient::{TestWindow, XEvent};
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
    // Split at the capture: click → capture started, capture → frame arrived.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let wall_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    };
    for seq in 1..=CLICKS as u64 {
        // Spread clicks over the capture period so the phase does not flatter the numbers.
        tokio::time::sleep(Duration::from_millis(40 + (seq * 7) % 33)).await;
        let t0 = Instant::now();
        let sent_us = wall_us();
        let click = format!(r#"{{"type":"click","x":0.5,"y":0.5,"seq":{seq}}}"#);
        ws.send(Message::text(click)).await.expect("send");
        loop {
            let headers = next_update(&mut ws, &mut picture).await;
            if centre_is_blue(&picture) != blue {
                ms.push(t0.elapsed().as_secs_f64() * 1e3);
                let captured = headers[0].capture_us;
                before.push(captured.saturating_sub(sent_us) as f64 / 1e3);
                after.push(wall_us().saturating_sub(captured) as f64 / 1e3);
                blue = !blue;
                break;
            }
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    before.sort_by(|a, b| a.total_cmp(b));
    after.sort_by(|a, b| a.total_cmp(b));
    println!(
        "click-to-photon {width}x{height} @{fps} fps: median {:6.1} ms   p95 {:6.1} ms   min {:5.1}   max {:6.1}   (n={}); median click → capture {:.1} ms, capture → arrival {:.1} ms",
        ms[ms.len() / 2],
        ms[ms.len() * 95 / 100],
        ms[0],
        ms[ms.len() - 1],
        ms.len(),
        before[before.len() / 2],
        after[after.len() / 2],
    );
    assert_eq!(window.color() == 0x3366cc, blue, "window and stream agree");
    server.shutdown().await;
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn report(who: &str, ms: &[f64], n: usize) {
    if ms.is_empty() {
        println!("browser click-to-photon {who}: no click showed");
        return;
    }
    println!(
        "browser click-to-photon 1920x1080 {who:<18}: median {:6.1} ms   p95 {:6.1} ms   min {:5.1}   max {:6.1}   ({} of {n} shown)",
        percentile(ms, 50),
        percentile(ms, 95),
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
}

const LINK_TOKEN: &str = "bench-latency-token-0123456789";

/// Click-to-photon in Chromium with the server behind an 8 Mbit/s link (tbf, 300 ms
/// buffer, MTU 1500: the server in a network namespace). Needs root.
async fn over_a_slow_link(display: &str, n: usize) {
    if !common::netns::is_root() {
        println!("browser click-to-photon over 8 Mbit/s: not measured (needs root for a network namespace)");
        return;
    }
    let links = common::netns::Links::create("8mbit");
    let (_server, port) = links.deskcast(
        env!("CARGO_BIN_EXE_deskcast"),
        &["--fps", "30", "--token", LINK_TOKEN],
        &[("DISPLAY", display)],
    );
    let browser = Browser::start(1920, 1200).await;
    browser
        .goto(&format!(
            "http://{}:{port}/?token={LINK_TOKEN}",
            links.addrs[0]
        ))
        .await;
    browser.wait_until_drawn(Duration::from_secs(30)).await;
    let ms = browser.click_to_photon("#screen", None, n).await;
    report("deskcast, 8 Mbit/s", &ms, n);
    browser.close().await;
}

/// Click-to-photon in Chromium: deskcast's page, then noVNC on TigerVNC.
async fn in_browser() {
    if !(have("chromium") & have("chromedriver")) {
        return;
    }
    const N: usize = 30;
    let (width, height) = (1920, 1080);
    let x = Xvfb::start(width, height);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, true);
    let server = TestServer::start(screen_config()).await;
    let browser = Browser::start(1920, 1200).await;
    browser.goto(&server.url("/")).await;
    browser.wait_until_drawn(Duration::from_secs(20)).await;
    let ms = browser.click_to_photon("#screen", None, N).await;
    report("deskcast", &ms, N);

    // Press-and-hold: the X press arrives while the button is still down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    window.clear();
    let at = browser
        .execute(
            common::browser::CANVAS_POINT,
            serde_json::json!(["#screen", null, null]),
        )
        .await;
    let (cx, cy) = (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"));
    // Watch for the X press (every ms, wall clock) while the page holds the button.
    let watch = async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let ev = window.events();
            if ev
                .iter()
                .any(|e| matches!(e, XEvent::Press { button: 1, .. }))
            {
                return Some(std::time::SystemTime::now());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    };
    let hold = browser.perform(mouse(vec![move_to(cx, cy, 0), down(0), pause(500), up(0)]));
    let (pressed, ()) = tokio::join!(watch, hold);
    let ev = window.wait_for(Duration::from_secs(5), |e| {
        e.iter()
            .any(|e| matches!(e, XEvent::Release { button: 1, .. }))
    });
    let times: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            XEvent::Press {
                button: 1, time, ..
            }
            | XEvent::Release {
                button: 1, time, ..
            } => Some(*time),
            _ => None,
        })
        .collect();
    let down_ms = browser
        .execute(
            "return window.__downs[window.__downs.length - 1]",
            serde_json::json!([]),
        )
        .await
        .as_f64();
    if let ([press, release], Some(pressed), Some(down_ms)) = (&times[..], pressed, down_ms) {
        let pressed_ms = pressed
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        println!(
            "press-and-hold: the X client had the press {:.1} ms after the page's pointerdown (polled every ms); X saw the button held {} ms of the page's 500",
            pressed_ms - down_ms,
            release.wrapping_sub(*press)
        );
    }
    browser.close().await;
    server.shutdown().await;

    over_a_slow_link(&x.display, N).await;

    if let Some(vnc) = common::peer::Vnc::start(&x.display).await {
        let browser = Browser::start(1920, 1200).await;
        // noVNC sometimes reaches websockify before the VNC server takes connections:
        // load the page again, up to three times.
        let mut connected = None;
        for _ in 0..3 {
            browser.goto(&vnc.url).await;
            connected = browser
                .wait_for(
                    Duration::from_secs(10),
                    "const c = document.querySelector('canvas'); return c && c.width > 100 ? true : null;",
                )
                .await;
            if connected.is_some() {
                break;
            }
        }
        if connected.is_none() {
            let status = browser
                .execute(
                    "const s = document.getElementById('noVNC_status'); return s ? s.textContent : document.title;",
                    serde_json::json!([]),
                )
                .await;
            println!("browser click-to-photon TigerVNC + noVNC: not measured, noVNC says {status}");
            browser.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ms = browser.click_to_photon("canvas", None, N).await;
        report("TigerVNC + noVNC", &ms, N);
        browser.close().await;
    }
    drop(window);
    drop(x);
}

#[tokio::main]
async fn main() {
    if !have("Xvfb") {
        return;
    }
    if std::env::var("DESKCAST_BENCH").as_deref() != Ok("browser") {
        for (w, h) in [(1280, 720), (1920, 1080)] {
            for fps in [30, 60] {
                run(w, h, fps).await;
            }
        }
    }
    in_browser().await;
}
