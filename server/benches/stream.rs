//! `cargo xtask bench`: capture, encode and delivery numbers at 1920×1080.
//!
//! Prints: capture ms (test pattern, and the screen on a real Xvfb), JPEG encode ms at
//! quality 80, bytes per frame, and frames per second delivered to one WebSocket
//! client over 10 s while the screen changes.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use deskcast_server::capture::{self, FrameSource, PatternSource};
use deskcast_server::config::SourceSpec;
use deskcast_server::encode::Encoder;
use deskcast_server::Config;
use deskcast_shared::FrameHeader;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};

const W: u32 = 1920;
const H: u32 = 1080;

fn stats(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(|a, b| a.total_cmp(b));
    let med = ms[ms.len() / 2];
    let p95 = ms[(ms.len() * 95 / 100).min(ms.len() - 1)];
    println!(
        "{name:<44} median {med:7.2} ms   p95 {p95:7.2} ms   (n={})",
        ms.len()
    );
    med
}

fn time_captures(source: &mut dyn FrameSource, n: usize) -> (Vec<f64>, Vec<capture::RawFrame>) {
    let mut ms = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        match source.capture() {
            Ok(f) => {
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if frames.len() < 3 {
                    frames.push(f);
                }
            }
            Err(e) => println!("  capture error (skipped): {e}"),
        }
    }
    (ms, frames)
}

fn time_encode(name: &str, frames: &[capture::RawFrame]) {
    let mut enc = Encoder::new(80).expect("encoder");
    let mut ms = Vec::new();
    let mut bytes = 0;
    for i in 0..30 {
        let f = &frames[i % frames.len()];
        let t = Instant::now();
        let jpeg = enc.encode(f).expect("encode");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = jpeg.len();
    }
    stats(&format!("encode q80 {name}"), ms);
    println!(
        "{:<44} {bytes} bytes/frame ({:.1} KiB)",
        format!("jpeg size {name}"),
        bytes as f64 / 1024.0
    );
}

/// Keeps an X window repainted with the moving test pattern, so the screen changes.
fn animate(display: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (conn, n) = x11rb::connect(Some(&display)).expect("connect X");
        let screen = conn.setup().roots[n].clone();
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, screen.root, &CreateGCAux::new())
            .expect("gc");
        let mut pattern = PatternSource::new(W, H);
        let max = conn.maximum_request_bytes();
        while !stop.load(Ordering::SeqCst) {
            let frame = pattern.capture().expect("pattern");
            // RGBA -> BGRX, sent in strips that fit one request.
            let mut bgrx = frame.pixels;
            for px in bgrx.chunks_exact_mut(4) {
                px.swap(0, 2);
            }
            let rows = ((max - 64) / (W as usize * 4)).max(1);
            for y in (0..H as usize).step_by(rows) {
                let h = rows.min(H as usize - y);
                let strip = &bgrx[y * W as usize * 4..(y + h) * W as usize * 4];
                let _ = conn.put_image(
                    ImageFormat::Z_PIXMAP,
                    screen.root,
                    gc,
                    W as u16,
                    h as u16,
                    0,
                    y as i16,
                    0,
                    24,
                    strip,
                );
            }
            let _ = conn.flush();
            let _ = conn.get_input_focus().map(|c| c.reply());
            std::thread::sleep(Duration::from_millis(16));
        }
    })
}

async fn ws_fps(name: &str, config: Config) {
    let server = TestServer::start(config).await;
    let (mut ws, _) = ws_connect(&server).await;
    next_frame(&mut ws).await;
    let start = Instant::now();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut age = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        let msg = next_frame(&mut ws).await;
        let (h, _) = FrameHeader::decode(&msg).expect("header");
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros() as u64;
        age.push(now_us.saturating_sub(h.capture_us) as f64 / 1e3);
        frames += 1;
        bytes += msg.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<44} {:.1} fps, {:.1} Mbit/s over {secs:.1} s",
        format!("ws delivered {name}"),
        frames as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e6
    );
    stats(&format!("capture->received age {name}"), age);
    server.shutdown().await;
}

#[tokio::main]
async fn main() {
    println!("deskcast bench, {W}x{H}, quality 80\n");
    let mut pattern = PatternSource::new(W, H);
    let (ms, frames) = time_captures(&mut pattern, 30);
    stats("capture pattern", ms);
    time_encode("pattern", &frames);
    let mut config = Config::pattern(W, H);
    config.fps = 30;
    ws_fps("pattern @30", config).await;

    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(W, H);
    std::env::set_var("DISPLAY", &x.display);
    let stop = Arc::new(AtomicBool::new(false));
    let painter = animate(x.display.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    std::env::set_var("DESKCAST_CAPTURE", "xcap");
    let mut screen = capture::open(SourceSpec::Screen { monitor: 0 }).expect("screen source");
    let (ms, _) = time_captures(screen.as_mut(), 30);
    stats("capture screen (xcap on Xvfb)", ms);
    std::env::remove_var("DESKCAST_CAPTURE");
    let mut screen = capture::open(SourceSpec::Screen { monitor: 0 }).expect("screen source");
    let (ms, frames) = time_captures(screen.as_mut(), 30);
    stats("capture screen (x11 GetImage on Xvfb)", ms);
    time_encode("screen", &frames);
    let mut config = Config::pattern(1, 1);
    config.source = SourceSpec::Screen { monitor: 0 };
    ws_fps("screen @30 (changing)", config).await;
    stop.store(true, Ordering::SeqCst);
    let _ = painter.join();
}
