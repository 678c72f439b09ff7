//! `cargo xtask bench`: the frame engine at 1920×1080 on Xvfb, with ffmpeg beside it.
//!
//! The desktop is realistic: a photo-like background, a fractal "photo" and three
//! windows of text drawn by the X server in its own font. Prints:
//! - capture ms per path (MIT-SHM, GetImage, xcap), tile compare ms, encode ms and
//!   bytes for a full frame and for a 640×360 region;
//! - per scene (still desktop, a 640×360 video playing, every pixel moving at 60 fps;
//!   one and ten viewers): Mbit/s and updates/s delivered to `/ws` viewers, the
//!   deskcast process's and the X server's CPU, CPU ms per update, bytes after the
//!   first frame;
//! - the same scenes through `ffmpeg -f x11grab … -f mpjpeg` as the reference.
//!
//! The deskcast server runs as its own process (the release binary), and so does the
//! animation (this bench started again with `DESKCAST_BENCH_ANIMATE`), so each CPU
//! number is one process's own.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
mod desk;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::Killed;
use common::*;
use desk::*;
use deskcast_server::capture::{self, PixelLayout, Pixels, Rect};
use deskcast_server::config::SourceSpec;
use deskcast_server::encode::Encoder;
use deskcast_server::tiles::{Picture, TileSet};
use deskcast_shared::FrameHeader;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

fn time_ms<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut ms = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f());
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median(ms), last.expect("n > 0"))
}

/// The release server as its own process; returns it and its WebSocket URL.
fn start_server(display: &str, fps: u32, extra: &[(&str, &str)]) -> (Killed, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskcast"));
    cmd.args(["--no-auth", "--port", "0", "--fps", &fps.to_string()])
        .env("DISPLAY", display)
        .env("RUST_LOG", "deskcast=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let (server, host) = spawn_deskcast(cmd);
    (server, format!("ws://{host}/ws"))
}

#[derive(Default, Clone)]
struct Row {
    /// CPU ms per update, by thread, for deskcast.
    threads: String,
    mbit: f64,
    updates: f64,
    cpu: f64,
    x_cpu: f64,
    ms_per_update: f64,
    after_first: u64,
}

/// `viewers` WebSocket viewers for `SECONDS`; the first one's updates are counted.
async fn ws_scene(url: &str, viewers: usize, server: u32, xserver: u32) -> Row {
    let mut sockets = Vec::new();
    for _ in 0..viewers {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        // hello, then the first whole frame.
        loop {
            let Some(Ok(m)) = ws.next().await else {
                panic!("socket closed")
            };
            if let Message::Binary(b) = m {
                if FrameHeader::decode(&b).expect("header").0.is_last() {
                    break;
                }
            }
        }
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, x0, t0) = (cpu_secs(server), cpu_secs(xserver), Instant::now());
    let threads0 = thread_cpu(server);
    let until = tokio::time::Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for mut ws in sockets {
        tasks.push(tokio::spawn(async move {
            let (mut updates, mut bytes) = (0u64, 0u64);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
                if let Message::Binary(b) = m {
                    bytes += b.len() as u64;
                    if FrameHeader::decode(&b).expect("header").0.is_last() {
                        updates += 1;
                    }
                }
            }
            (updates, bytes)
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.expect("viewer"));
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, x_cpu) = (cpu_secs(server) - c0, cpu_secs(xserver) - x0);
    let (updates, bytes) = counts[0];
    let mut threads = String::new();
    if updates > 0 {
        let per: Vec<String> = thread_cpu(server)
            .into_iter()
            .map(|(name, secs)| {
                let before = threads0
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |t| t.1);
                format!("{name} {:.2}", (secs - before) * 1e3 / updates as f64)
            })
            .collect();
        threads = per.join(", ");
    }
    Row {
        threads,
        ..Row::measured(bytes, updates, cpu, x_cpu, secs)
    }
}

/// `ffmpeg -f x11grab … -f mpjpeg` for `SECONDS`: the reference.
fn ffmpeg_scene(display: &str, fps: u32, xserver: u32) -> Row {
    let mut child = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "x11grab", "-draw_mouse", "0"])
        .args([
            "-framerate",
            &fps.to_string(),
            "-video_size",
            &format!("{W}x{H}"),
        ])
        .args(["-i", display, "-f", "mpjpeg", "-q:v", "5", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 20];
    // Let it settle, then count.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(1) {
        let _ = out.read(&mut buf);
    }
    let (c0, x0, t0) = (cpu_secs(pid), cpu_secs(xserver), Instant::now());
    let (mut bytes, mut parts) = (0u64, 0u64);
    let mut tail = Vec::new();
    while t0.elapsed() < Duration::from_secs(SECONDS) {
        let n = out.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        bytes += n as u64;
        tail.extend_from_slice(&buf[..n]);
        parts += tail.windows(8).filter(|w| w == b"--ffmpeg").count() as u64;
        let keep = tail.len().saturating_sub(7);
        tail.drain(..keep);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, x_cpu) = (cpu_secs(pid) - c0, cpu_secs(xserver) - x0);
    let _ = child.kill();
    let _ = child.wait();
    Row::measured(bytes, parts, cpu, x_cpu, secs)
}

/// A free TCP port on loopback.
/// Bytes acknowledged by the peers of every established TCP socket on local `port`
/// (`ss -ti`): what a server sent, however it wrote it.
fn tcp_sent(port: u16) -> u64 {
    let out = Command::new("ss")
        .args([
            "-tinH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("bytes_acked:"))
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// TigerVNC's scraping server (X0tigervnc, what the x0vncserver script starts) + websockify + noVNC in headless Chromium, the peer: Mbit/s
/// is what its RFB socket sent (to websockify, which forwards it); updates/s is not counted.
async fn tigervnc_scene(display: &str, xserver: u32) -> Option<Row> {
    if !(have("chromium") & have("chromedriver")) {
        return None;
    }
    let vnc = common::peer::Vnc::start(display).await?;
    let rfb = vnc.rfb;
    let browser = common::browser::Browser::start(1920, 1200).await;
    browser.goto(&vnc.url).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pid = vnc.server.0.id();
    let (b0, c0, x0, t0) = (
        tcp_sent(rfb),
        cpu_secs(pid),
        cpu_secs(xserver),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (bytes, cpu, x_cpu) = (
        tcp_sent(rfb).saturating_sub(b0),
        cpu_secs(pid) - c0,
        cpu_secs(xserver) - x0,
    );
    browser.close().await;
    Some(Row {
        updates: f64::NAN,
        ms_per_update: f64::NAN,
        ..Row::measured(bytes, 0, cpu, x_cpu, secs)
    })
}

impl Row {
    /// `bytes` and `updates` delivered, `cpu` and `x_cpu` seconds used, over `secs`.
    fn measured(bytes: u64, updates: u64, cpu: f64, x_cpu: f64, secs: f64) -> Row {
        Row {
            threads: String::new(),
            mbit: bytes as f64 * 8.0 / secs / 1e6,
            updates: updates as f64 / secs,
            cpu: cpu / secs * 100.0,
            x_cpu: x_cpu / secs * 100.0,
            ms_per_update: if updates > 0 {
                cpu * 1e3 / updates as f64
            } else {
                0.0
            },
            after_first: bytes,
        }
    }
}

fn print_row(name: &str, who: &str, r: &Row) {
    let threads = if r.threads.is_empty() {
        String::new()
    } else {
        format!("\n  CPU ms per update by thread: {}", r.threads)
    };
    println!(
        "| {name:<28} | {who:<14} | {:>7.2} | {:>6.1} | {:>6.1} % | {:>6.1} % | {:>6.2} | {:>10} |{threads}",
        r.mbit, r.updates, r.cpu, r.x_cpu, r.ms_per_update, r.after_first
    );
}

fn micro(display: &str) {
    println!("\n| stage (1920×1080, one core) | median |");
    println!("|---|---|");
    let full = Rect::full(W, H);
    let mut frames: Vec<Pixels> = Vec::new();
    for (path, env) in [
        ("MIT-SHM", "shm"),
        ("GetImage", "getimage"),
        ("xcap", "xcap"),
    ] {
        std::env::set_var("DESKCAST_CAPTURE", env);
        std::env::set_var("DISPLAY", display);
        let mut source = capture::open(&SourceSpec::Screen {
            monitor: deskcast_server::capture::monitors::MonitorChoice::Index(0),
        })
        .expect("screen");
        if let Err(e) = source.capture(&[full]) {
            println!("| capture, {path} ({}) | failed: {e} |", source.backend());
            continue;
        }
        let (ms, px) = time_ms(30, || source.capture(&[full]));
        println!("| capture, {path} ({}) | {ms:.2} ms |", source.backend());
        if env == "getimage" {
            frames.extend(px.expect("capture"));
        }
    }
    std::env::remove_var("DESKCAST_CAPTURE");
    let frame = std::sync::Arc::new(frames.pop().expect("a frame"));
    let mut picture = Picture::new(W, H, PixelLayout::Bgrx);
    let mut changed = TileSet::new(W, H);
    picture.update(&frame, &full, true, &mut changed);
    let (ms, _) = time_ms(30, || {
        changed.clear();
        picture.update(&frame, &full, false, &mut changed);
    });
    println!("| tile compare, nothing changed | {ms:.2} ms |");
    let inverted = std::sync::Arc::new(Pixels::owned(
        full,
        PixelLayout::Bgrx,
        frame.bytes().iter().map(|b| !b).collect(),
    ));
    let mut flip = false;
    let (ms, _) = time_ms(30, || {
        changed.clear();
        flip = !flip;
        picture.update(
            if flip { &inverted } else { &frame },
            &full,
            false,
            &mut changed,
        );
    });
    println!("| tile compare, everything changed (a whole-screen capture is kept, not copied) | {ms:.2} ms |");
    let half = Rect {
        x: 0,
        y: 0,
        width: W,
        height: H / 2,
    };
    let part = std::sync::Arc::new(Pixels::owned(
        half,
        PixelLayout::Bgrx,
        frame.bytes()[..(W * H / 2 * 4) as usize]
            .iter()
            .map(|b| !b)
            .collect(),
    ));
    let (ms, _) = time_ms(30, || {
        changed.clear();
        flip = !flip;
        let p = if flip { &part } else { &frame };
        picture.update(p, &p.rect, false, &mut changed);
    });
    println!("| tile compare + copy, half the screen changed | {ms:.2} ms |");
    let mut enc = Encoder::new(80).expect("encoder");
    let (ms, jpeg) = time_ms(30, || enc.encode(&frame, full, 80).expect("encode"));
    println!(
        "| encode full frame q80 | {ms:.2} ms, {} KiB |",
        jpeg.len() / 1024
    );
    let region = Rect {
        x: VIDEO_AT.0 as u32,
        y: VIDEO_AT.1 as u32,
        width: VIDEO.0,
        height: VIDEO.1,
    };
    let (ms, jpeg) = time_ms(30, || enc.encode(&frame, region, 80).expect("encode"));
    println!(
        "| encode 640×360 region q80 | {ms:.2} ms, {} KiB |",
        jpeg.len() / 1024
    );
    let (ms, jpeg) = time_ms(30, || enc.encode(&frame, full, 90).expect("encode"));
    println!(
        "| encode full frame q90 (keyframe, refresh) | {ms:.2} ms, {} KiB |",
        jpeg.len() / 1024
    );
}

/// The centre pixel of the `/mjpeg` page's `<img>`, drawn into a canvas.
const IMG_CENTRE: &str = r#"
const img = document.querySelector('img');
if (!img || !img.naturalWidth) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext('2d');
ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3));
"#;

/// `/mjpeg` in headless Chromium on a still screen: how long until the first picture
/// shows, and how long a change takes to show (polled through WebDriver, a few ms).
async fn mjpeg_in_chromium(display: &str) -> Option<(f64, Vec<f64>)> {
    if !(have("chromium") & have("chromedriver")) {
        return None;
    }
    let scene = common::xscene::Scene::open(display, 0x203040);
    let colours = [0xe0c040u32, 0x40a0e0];
    let win = scene.window(
        (W / 2 - 200) as i16,
        (H / 2 - 150) as i16,
        400,
        300,
        colours[0],
    );
    let (server, url) = start_server(display, 30, &[]);
    let page = url.replace("ws://", "http://").replace("/ws", "/mjpeg");
    let browser = common::browser::Browser::start(1280, 800).await;
    let shows = |px: &serde_json::Value, colour: u32| {
        let want = colour.to_be_bytes();
        px.as_array().is_some_and(|a| {
            a.iter().zip(&want[1..]).all(|(g, w)| {
                g.as_u64()
                    .is_some_and(|g| (g as i64 - i64::from(*w)).abs() < 24)
            })
        })
    };
    let t0 = Instant::now();
    browser.goto(&page).await;
    loop {
        let px = browser.execute(IMG_CENTRE, serde_json::json!([])).await;
        if shows(&px, colours[0]) {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return None;
        }
    }
    let first = t0.elapsed().as_secs_f64() * 1e3;
    let mut delays = Vec::new();
    for i in 1..=10 {
        // Still for a while (longer than any keep-alive), then one change.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let colour = colours[i % 2];
        let t = Instant::now();
        scene.recolor(win, colour);
        loop {
            let px = browser.execute(IMG_CENTRE, serde_json::json!([])).await;
            if shows(&px, colour) {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        delays.push(t.elapsed().as_secs_f64() * 1e3);
    }
    browser.close().await;
    drop(server);
    Some((first, delays))
}

const LINK_TOKEN: &str = "bench-link-token-0123456789";

/// Click-to-photon in Chromium through the 8 Mbit/s link while the video plays: a
/// 320×200 window beside the video changes colour on each click.
async fn link_click(display: &str) {
    if !(have("chromium") & have("chromedriver")) {
        return;
    }
    let (x, y, w, h) = (1500i16, 80i16, 320u16, 200u16);
    let _button =
        common::xclient::TestWindow::open_rect(display, 0x3366cc, true, Some((x, y, w, h)));
    let links = common::netns::Links::create("8mbit");
    let (_server, port) = links.deskcast(
        env!("CARGO_BIN_EXE_deskcast"),
        &["--fps", "30", "--token", LINK_TOKEN],
        &[("DISPLAY", display)],
    );
    let browser = common::browser::Browser::start(1920, 1200).await;
    browser
        .goto(&format!(
            "http://{}:{port}/?token={LINK_TOKEN}",
            links.addrs[0]
        ))
        .await;
    let layout = browser.wait_until_drawn(Duration::from_secs(30)).await;
    let image = layout.letterbox(W, H);
    let centre = image.at(
        (f64::from(x) + f64::from(w) / 2.0) / f64::from(W),
        (f64::from(y) + f64::from(h) / 2.0) / f64::from(H),
    );
    let ms = browser.click_to_photon("#screen", Some(centre), 20).await;
    browser.close().await;
    if ms.is_empty() {
        println!("\nbrowser click-to-photon at 8 Mbit/s with the video playing: no click showed");
        return;
    }
    println!(
        "\nbrowser click-to-photon at 8 Mbit/s with the video playing (Chromium, a 320x200 window beside the video): median {:.0} ms, p95 {:.0} ms ({} of 20 shown)",
        ms[ms.len() / 2],
        ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
        ms.len()
    );
}

/// The video scene through a shaped link (tbf `rate`, 300 ms buffer, MTU 1500): the
/// server in a network namespace, one acking viewer outside, as the browser does.
/// Returns updates/s, Mbit/s and the age of frames on arrival, p50 and p95.
async fn link_scene(
    display: &str,
    rate: &str,
    secs: u64,
) -> Option<(f64, f64, f64, f64, f64, f64)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let links = common::netns::Links::create(rate);
    let (server, port) = links.deskcast(
        env!("CARGO_BIN_EXE_deskcast"),
        &["--fps", "30", "--token", LINK_TOKEN],
        &[("DISPLAY", display)],
    );
    let mut req = format!("ws://{}:{port}/ws", links.addrs[0])
        .into_client_request()
        .ok()?;
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {LINK_TOKEN}").parse().ok()?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.ok()?;
    let ack = |seq: u64| {
        Message::text(
            deskcast_shared::ClientMessage::Ack {
                frame: seq,
                decode_ms: None,
            }
            .to_json(),
        )
    };
    use futures_util::SinkExt as _;
    ws.send(ack(0)).await.ok()?;
    let start = Instant::now();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs + 3);
    let (mut ages, mut bytes) = (Vec::new(), 0u64);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        let Message::Binary(b) = m else { continue };
        let (h, _) = FrameHeader::decode(&b).ok()?;
        // The first 3 s carry the keyframe across; count the rest.
        let counting = start.elapsed() >= Duration::from_secs(3);
        if counting {
            bytes += b.len() as u64;
        }
        if h.is_last() {
            if counting {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_micros() as u64;
                ages.push(now.saturating_sub(h.capture_us) as f64 / 1e3);
            }
            ws.send(ack(h.seq)).await.ok()?;
        }
    }
    drop(server);
    let p = |v: &[f64], q: f64| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let third = ages.len() / 3;
    let (early, late) = (&ages[..third], &ages[ages.len() - third..]);
    let secs = secs as f64;
    Some((
        ages.len() as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e6,
        p(&ages, 0.5),
        p(&ages, 0.95),
        p(early, 0.5),
        p(late, 0.5),
    ))
}

#[tokio::main]
async fn main() {
    if let Ok(scene) = std::env::var("DESKCAST_BENCH_ANIMATE") {
        animate(&scene);
        return;
    }
    if !have("Xvfb") || !have("ffmpeg") {
        return;
    }
    println!("deskcast frame-engine bench, {W}x{H}, quality 80, {SECONDS} s a scene");
    let x = dressed_xvfb();
    let display = x.display.clone();
    let xpid = x.pid();
    // DESKCAST_BENCH=links runs only the shaped-link section.
    let only_links = std::env::var("DESKCAST_BENCH").is_ok_and(|v| v == "links");
    if !only_links {
        micro(&display);
        scenes(&display, xpid).await;
        mjpeg(&display).await;
    }
    links(&display).await;
}

async fn scenes(display: &str, xpid: u32) {
    let display = display.to_string();
    println!("\n| scene | who | Mbit/s | upd/s | CPU | X CPU | ms/upd | bytes |");
    println!("|---|---|---|---|---|---|---|---|");
    let scenes: [(&str, Option<&str>, u32, usize); 5] = [
        ("still desktop", None, 30, 1),
        ("640x360 video @30", Some("video"), 30, 1),
        ("640x360 video, 10 viewers", Some("video"), 30, 10),
        ("full motion @60", Some("full"), 60, 1),
        ("full motion @60, GetImage", Some("full"), 60, 1),
    ];
    for (name, anim, fps, viewers) in scenes {
        let _animation = anim.map(|a| start_animation(&display, a));
        let extra: &[(&str, &str)] = if name.contains("GetImage") {
            &[("DESKCAST_CAPTURE", "getimage")]
        } else {
            &[]
        };
        let (server, url) = start_server(&display, fps, extra);
        let row = ws_scene(&url, viewers, server.0.id(), xpid).await;
        drop(server);
        print_row(name, "deskcast /ws", &row);
        if viewers == 1 && extra.is_empty() {
            print_row(name, "ffmpeg mpjpeg", &ffmpeg_scene(&display, fps, xpid));
            if let Some(row) = tigervnc_scene(&display, xpid).await {
                print_row(name, "TigerVNC+noVNC", &row);
            }
        }
    }
    println!("\n(bytes: what the first viewer received after its first frame; CPU: % of one core)");
}

async fn mjpeg(display: &str) {
    match mjpeg_in_chromium(display).await {
        Some((first, delays)) => {
            let n = delays.len();
            let (p50, max) = (
                median(delays.clone()),
                delays.iter().cloned().fold(0.0, f64::max),
            );
            println!(
                "\n/mjpeg in Chromium, still screen: first picture {first:.0} ms after opening; \
                 a change shows after {p50:.0} ms median, {max:.0} ms at most (n={n})"
            );
        }
        None => println!("\n/mjpeg in Chromium: not measured (no chromium, or no picture)"),
    }
}

async fn links(display: &str) {
    if common::netns::is_root() && have("ip") && have("tc") {
        println!("\n640x360 video through a shaped link (tbf, 300 ms buffer, MTU 1500), one acking viewer:\n");
        println!("| link | seconds | updates/s | Mbit/s | frame age p50 | p95 | p50 first third / last third |");
        println!("|---|---|---|---|---|---|---|");
        let _animation = start_animation(display, "video");
        for (rate, secs) in [("2mbit", 20), ("8mbit", 60), ("50mbit", 10)] {
            match link_scene(display, rate, secs).await {
                Some((fps, mbit, p50, p95, early, late)) => println!(
                    "| {rate} | {secs} | {fps:.1} | {mbit:.2} | {p50:.0} ms | {p95:.0} ms | {early:.0} / {late:.0} ms |"
                ),
                None => println!("| {rate} | failed | | | | | |"),
            }
        }
        link_click(display).await;
    } else {
        println!("\n!!! shaped links skipped: they need root (network namespaces, tc) !!!");
    }
}
