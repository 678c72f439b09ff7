//! The frame engine against a real X server (Xvfb): region updates on `/ws` cover what
//! changed and nothing else, the picture composed from them is the X screen, a still
//! screen costs no messages, and the GetImage fallback streams the same when MIT-SHM is
//! off.
//!
//! Each test sets the process-wide DISPLAY (the capture reads it), so they take turns.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::xscene::Scene;
use common::*;
use deskcast_shared::{FrameHeader, FLAG_REFRESH};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

static DISPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TILE: usize = 64;
const SCREEN: (u32, u32) = (640, 480);
const BACKGROUND: u32 = 0x204060;

/// Tiles where the composed picture is not the screen: a tile whose mean difference
/// is beyond JPEG error (a stale or missing tile), with that mean.
fn wrong_tiles(picture: &Composed, screen: &[u8]) -> Vec<(usize, usize, f64)> {
    let (w, h) = (picture.width, picture.height);
    let mut out = Vec::new();
    for ty in 0..h.div_ceil(TILE) {
        for tx in 0..w.div_ceil(TILE) {
            let (mut sum, mut n) = (0u64, 0u64);
            for y in ty * TILE..((ty + 1) * TILE).min(h) {
                for x in tx * TILE..((tx + 1) * TILE).min(w) {
                    let i = (y * w + x) * 3;
                    for c in 0..3 {
                        sum += u64::from(picture.rgb[i + c].abs_diff(screen[i + c]));
                    }
                    n += 3;
                }
            }
            let mean = sum as f64 / n as f64;
            if mean > 6.0 {
                out.push((tx, ty, mean));
            }
        }
    }
    out
}

/// Tiles holding at least one pixel that differs between two screens.
fn changed_tiles(before: &[u8], after: &[u8], width: usize) -> BTreeSet<(usize, usize)> {
    before
        .chunks(3)
        .zip(after.chunks(3))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| ((i % width) / TILE, (i / width) / TILE))
        .collect()
}

/// Tiles the rectangles of region (not refresh) messages cover.
fn covered_tiles(headers: &[FrameHeader]) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for h in headers.iter().filter(|h| h.flags & FLAG_REFRESH == 0) {
        let (x, y) = (h.x as usize, h.y as usize);
        for ty in y / TILE..(y + h.height as usize).div_ceil(TILE) {
            for tx in x / TILE..(x + h.width as usize).div_ceil(TILE) {
                out.insert((tx, ty));
            }
        }
    }
    out
}

/// Reads updates until the composed picture is the screen; returns every header read.
async fn until_composed(ws: &mut Ws, picture: &mut Composed, scene: &Scene) -> Vec<FrameHeader> {
    let screen = scene.rgb();
    let mut headers = Vec::new();
    let start = Instant::now();
    loop {
        if wrong_tiles(picture, &screen).is_empty() {
            return headers;
        }
        headers.extend(next_update(ws, picture).await);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the composed picture never became the screen; wrong tiles {:?}",
            wrong_tiles(picture, &screen)
        );
    }
}

/// One step: do `act` on the scene, then check the updates it caused cover exactly the
/// tiles that changed, are regions (not full frames), and compose to the screen.
async fn step(ws: &mut Ws, picture: &mut Composed, scene: &Scene, what: &str, act: impl FnOnce()) {
    let before = scene.rgb();
    act();
    let after = scene.rgb();
    let changed = changed_tiles(&before, &after, scene.width as usize);
    assert!(!changed.is_empty(), "{what}: the scene must change");
    let mut headers = next_update(ws, picture).await;
    headers.extend(until_composed(ws, picture, scene).await);
    assert!(
        headers.iter().all(|h| !h.is_key()),
        "{what}: regions, not full frames: {headers:?}"
    );
    assert_eq!(
        covered_tiles(&headers),
        changed,
        "{what}: the rectangles cover exactly the changed tiles: {headers:?}"
    );
}

/// Xvfb with one window on a plain background, and a server streaming it.
async fn still_desktop() -> (Xvfb, Scene, TestServer) {
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    std::env::set_var("DISPLAY", &x.display);
    let scene = Scene::open(&x.display, BACKGROUND);
    scene.window(100, 100, 200, 150, 0xe0c040);
    let server = TestServer::start(screen_config()).await;
    (x, scene, server)
}

async fn regions_compose_to_the_screen(xvfb_args: &[&str], backend: &str) {
    let x = Xvfb::start_with(SCREEN.0, SCREEN.1, xvfb_args);
    std::env::set_var("DISPLAY", &x.display);
    let scene = Scene::open(&x.display, BACKGROUND);
    let a = scene.window(40, 40, 150, 100, 0xe0c040);
    let b = scene.window(300, 200, 200, 120, 0x40a0e0);
    let server = TestServer::start(screen_config()).await;
    let (status, _, body) = http_get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
    let health = String::from_utf8_lossy(&body).to_string();
    assert!(health.contains(&format!("capture: {backend}")), "{health}");

    let (mut ws, _) = ws_connect(&server).await;
    let mut picture = Composed::new(SCREEN.0, SCREEN.1);
    let first = next_update(&mut ws, &mut picture).await;
    assert!(
        first.iter().all(|h| h.is_key()),
        "a keyframe first: {first:?}"
    );
    until_composed(&mut ws, &mut picture, &scene).await;

    step(&mut ws, &mut picture, &scene, "window moved", || {
        scene.move_to(a, 260, 330)
    })
    .await;
    step(&mut ws, &mut picture, &scene, "window recoloured", || {
        scene.recolor(b, 0xc03050)
    })
    .await;
    step(&mut ws, &mut picture, &scene, "drawn into a window", || {
        scene.fill(a, 10, 10, 30, 20, 0x101010)
    })
    .await;
    step(
        &mut ws,
        &mut picture,
        &scene,
        "window moved across tile edges",
        || scene.move_to(b, 97, 31),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_updates_cover_what_changed_and_compose_to_the_screen() {
    if !have("Xvfb") {
        return;
    }
    let _turn = DISPLAY.lock().await;
    regions_compose_to_the_screen(&[], "x11-shm+damage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mit_shm_the_getimage_path_streams_the_same() {
    if !have("Xvfb") {
        return;
    }
    let _turn = DISPLAY.lock().await;
    regions_compose_to_the_screen(&["-extension", "MIT-SHM"], "x11-getimage+damage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_screen_sends_nothing_and_one_pixel_sends_one_small_region() {
    if !have("Xvfb") {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (_x, scene, server) = still_desktop().await;
    let stats = server.stats.clone();
    let (mut ws, _) = ws_connect(&server).await;
    let mut picture = Composed::new(SCREEN.0, SCREEN.1);
    next_update(&mut ws, &mut picture).await;

    let (ticks, captures) = (
        stats.ticks.load(Ordering::SeqCst),
        stats.captures.load(Ordering::SeqCst),
    );
    let quiet = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return b,
                Some(Ok(_)) => continue,
                _ => panic!("socket closed"),
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "no message for a still screen: {:?}",
        quiet.map(|b| FrameHeader::decode(&b).map(|h| h.0))
    );
    let ticked = stats.ticks.load(Ordering::SeqCst) - ticks;
    assert!(
        ticked >= 100,
        "the pipeline kept looking: {ticked} ticks in 5 s"
    );
    assert_eq!(
        stats.captures.load(Ordering::SeqCst),
        captures,
        "but captured nothing: XDamage said nothing changed"
    );

    scene.point(333, 222, 0xffffff);
    let headers = next_update(&mut ws, &mut picture).await;
    assert_eq!(headers.len(), 1, "one message: {headers:?}");
    let h = headers[0];
    assert!(!h.is_key());
    assert!(
        h.width <= 64 && h.height <= 64 && h.x <= 333 && h.y <= 222,
        "one small region holding the pixel: {h:?}"
    );
    assert!(333 < h.x + h.width && 222 < h.y + h.height, "{h:?}");
    // One white pixel on dark blue: JPEG keeps its brightness (luma), not its colour.
    let luma =
        |p: [u8; 3]| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let (px, around) = (picture.pixel(333, 222), picture.pixel(340, 230));
    assert!(
        luma(px) > luma(around) + 50.0,
        "the pixel shows bright: {px:?} on {around:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_sends_the_next_parts_headers_right_after_each_picture() {
    use tokio::io::AsyncReadExt;
    if !have("Xvfb") {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (_x, _scene, server) = still_desktop().await;
    let stats = server.stats.clone();
    let mut feed = mjpeg_connect(&server).await;
    // Read the first part whole, and what follows it, on a still screen: browsers show
    // a part once the next one has begun, so its boundary and headers must come now,
    // not with the next picture (seconds later on a still screen).
    let next = b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n";
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let (start, len) = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), feed.read(&mut chunk))
            .await
            .expect("data")
            .expect("read");
        assert!(n > 0, "stream ended");
        buf.extend_from_slice(&chunk[..n]);
        // The part's headers end at the first blank line after its Content-Length
        // (the HTTP response's own headers end earlier).
        let Some(cl) = buf.windows(16).position(|w| w == b"Content-Length: ") else {
            continue;
        };
        if let Some(end) = buf[cl..].windows(4).position(|w| w == b"\r\n\r\n") {
            let len: usize = String::from_utf8_lossy(&buf[cl + 16..cl + end])
                .trim()
                .parse()
                .expect("a Content-Length");
            break (cl + end + 4, len);
        }
    };
    while buf.len() < start + len + next.len() {
        let n = tokio::time::timeout(Duration::from_secs(10), feed.read(&mut chunk))
            .await
            .expect("data")
            .expect("read");
        assert!(n > 0, "stream ended");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(&buf[start..start + 2], &[0xFF, 0xD8], "a JPEG");
    assert_eq!(
        &buf[start + len..start + len + next.len()],
        next,
        "the next part's headers follow the picture"
    );
    let pictures = buf.windows(2).filter(|w| *w == [0xFF, 0xD8]).count();
    assert_eq!(pictures, 1, "and they came before any second picture");
    assert_eq!(
        stats.wholes.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a still screen is encoded once"
    );
    drop(feed);
    server.shutdown().await;
}
