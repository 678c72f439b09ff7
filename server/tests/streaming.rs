//! The streaming core over real sockets: WebSocket frames, the shared pipeline, MJPEG.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use deskcast_server::Config;
use deskcast_shared::{FrameHeader, Role, ServerMessage, PROTOCOL_VERSION};
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_sends_hello_then_frames_that_decode_to_the_announced_size() {
    let server = TestServer::start(Config::pattern(320, 240)).await;
    let (mut ws, hello) = ws_connect(&server).await;
    let ServerMessage::Hello {
        width,
        height,
        role,
        protocol,
        input,
        ..
    } = hello
    else {
        panic!("first message must be hello, got {hello:?}");
    };
    assert_eq!((width, height), (320, 240));
    assert_eq!(role, Role::Control);
    assert_eq!(protocol, PROTOCOL_VERSION);
    assert!(!input, "the pattern is not a desktop");

    // The first frame covers the whole screen; later ones only where the box moved.
    let mut picture = Composed::new(320, 240);
    let first = next_update(&mut ws, &mut picture).await;
    assert!(first.iter().all(|h| h.is_key()), "{first:?}");
    let area: u32 = first.iter().map(|h| h.width * h.height).sum();
    assert_eq!(area, 320 * 240, "the keyframe covers the screen");
    let mut last_seq = first[0].seq;
    for _ in 0..10 {
        let msg = next_frame(&mut ws).await;
        let (header, jpeg) = FrameHeader::decode(&msg).expect("frame header");
        assert!(header.seq > last_seq, "frame sequence numbers increase");
        assert_eq!((header.screen_width, header.screen_height), (320, 240));
        if header.is_fill() {
            assert_eq!(jpeg.len(), 3, "a one-colour rectangle is a fill: RGB");
        } else {
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG starts with SOI");
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "JPEG ends with EOI");
        }
        let h = picture.apply(&msg);
        if h.is_last() {
            last_seq = h.seq;
        }
        // Changes lie in the moving box's band; still parts come back only as a
        // sharper refresh.
        let refresh = h.flags & deskcast_shared::FLAG_REFRESH != 0;
        assert!(
            refresh || h.y >= 240 * 2 / 3 - 64,
            "only the moving box's band changes: {h:?}"
        );
    }
    // The composed picture still shows the bars the keyframe drew.
    for (i, rgb) in deskcast_server::capture::PATTERN_BARS.iter().enumerate() {
        let px = picture.pixel((2 * i + 1) * 320 / 16, 60);
        let near = px.iter().zip(rgb).all(|(a, b)| a.abs_diff(*b) <= 24);
        assert!(near, "bar {i}: {px:?} vs {rgb:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_messages_get_errors_and_the_stream_goes_on() {
    let server = TestServer::start(Config::pattern(160, 120)).await;
    let (mut ws, _) = ws_connect(&server).await;
    ws.send(Message::text("not json")).await.expect("send");
    let ServerMessage::Error { code, .. } = next_text(&mut ws).await else {
        panic!("expected error")
    };
    assert_eq!(code, deskcast_shared::ErrorCode::BadMessage);
    ws.send(Message::text(r#"{"type":"click","x":0.5,"y":0.5}"#))
        .await
        .expect("send");
    let ServerMessage::Error { code, .. } = next_text(&mut ws).await else {
        panic!("expected error")
    };
    assert_eq!(
        code,
        deskcast_shared::ErrorCode::NoDesktop,
        "the pattern takes no input"
    );
    let frame = next_frame(&mut ws).await;
    assert!(FrameHeader::decode(&frame).is_ok(), "frames keep coming");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pipeline_serves_every_viewer_and_stops_when_the_last_leaves() {
    let mut config = Config::pattern(320, 240);
    config.fps = 20;
    let server = TestServer::start(config).await;
    let stats = server.stats.clone();
    assert!(
        !stats.running.load(Ordering::SeqCst),
        "idle before anyone watches"
    );
    let captures = || stats.captures.load(Ordering::SeqCst);

    // One viewer: the baseline rate.
    let (mut a, _) = ws_connect(&server).await;
    next_frame(&mut a).await;
    let c0 = captures();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let one_viewer = captures() - c0;

    // Three viewers: two WebSockets and one MJPEG reader.
    let (mut b, _) = ws_connect(&server).await;
    let mut mjpeg = mjpeg_connect(&server).await;
    read_mjpeg_parts(&mut mjpeg, 3, Duration::from_secs(10)).await;
    let c1 = captures();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < until {
            let _ = tokio::time::timeout(Duration::from_millis(100), mjpeg.read(&mut buf)).await;
        }
        mjpeg
    });
    let frames_a = async {
        let mut n = 0;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < until {
            next_frame(&mut a).await;
            n += 1;
        }
        n
    };
    let frames_b = async {
        let mut n = 0;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < until {
            next_frame(&mut b).await;
            n += 1;
        }
        n
    };
    let (na, nb) = tokio::join!(frames_a, frames_b);
    let mjpeg = reader.await.expect("reader");
    let three_viewers = captures() - c1;
    eprintln!("captures in 2 s: one viewer {one_viewer}, three viewers {three_viewers}; frames a={na} b={nb}");
    assert!(
        na >= 5 && nb >= 5,
        "both WebSocket viewers get frames: {na}, {nb}"
    );
    // At 20 fps, 2 s is about 40 captures whatever the number of viewers; a loop per
    // viewer would triple it.
    assert!(
        three_viewers <= 50,
        "captures must not multiply with viewers: {three_viewers} in 2 s at 20 fps"
    );
    assert!(
        three_viewers * 10 <= one_viewer * 15 + 20,
        "one viewer {one_viewer}, three {three_viewers}"
    );

    // Everyone leaves: the pipeline stops and captures stop.
    drop(a);
    drop(b);
    drop(mjpeg);
    assert!(
        wait_until(Duration::from_secs(5), || !stats
            .running
            .load(Ordering::SeqCst))
        .await,
        "pipeline must stop when the last viewer leaves"
    );
    let idle = captures();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(captures(), idle, "no captures while nobody watches");

    // And it starts again for a new viewer.
    let (mut c, _) = ws_connect(&server).await;
    next_frame(&mut c).await;
    assert!(stats.running.load(Ordering::SeqCst));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_feed_decodes_in_ffmpeg_and_ffprobe() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let server = TestServer::start(Config::pattern(320, 240)).await;
    let url = server.url("/video_feed");
    let probe = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-f",
            "mpjpeg",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .await
        .expect("run ffprobe");
    let out = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(out.trim(), "mjpeg,320,240");

    let frames = 5;
    let decode = tokio::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "mpjpeg",
            "-i",
            &url,
            "-frames:v",
            &frames.to_string(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .await
        .expect("run ffmpeg");
    assert!(
        decode.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    assert_eq!(
        decode.stdout.len(),
        frames * 320 * 240 * 3,
        "ffmpeg decoded {frames} whole frames"
    );
    // The first bar is white, the sixth red, in every decoded frame.
    let px = |f: usize, x: usize, y: usize| {
        let i = f * 320 * 240 * 3 + (y * 320 + x) * 3;
        [decode.stdout[i], decode.stdout[i + 1], decode.stdout[i + 2]]
    };
    for f in 0..frames {
        let white = px(f, 20, 60);
        let red = px(f, 220, 60);
        assert!(
            white.iter().all(|c| *c > 230),
            "frame {f} white bar: {white:?}"
        );
        assert!(
            red[0] > 220 && red[1] < 40 && red[2] < 40,
            "frame {f} red bar: {red:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_mjpeg_page_healthz_and_unknown_paths() {
    let server = TestServer::start(Config::pattern(160, 120)).await;
    let (status, head, body) = http_get(server.addr, "/snapshot.jpg", &[]).await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    assert_eq!(decode_rgb(&body).0, 160);

    let (status, _, body) = http_get(server.addr, "/mjpeg", &[]).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(r#"<img src="/video_feed""#));

    let (status, _, body) = http_get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(b"ok\ncapture: pattern"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, _, body) = http_get(server.addr, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("deskcast"));

    for probe in [
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fCargo.toml",
        "/nope.js",
    ] {
        let (status, _, _) = http_get(server.addr, probe, &[]).await;
        assert_eq!(status, 404, "{probe}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let server = TestServer::start(Config::pattern(160, 120)).await;
    let (mut ws, _) = ws_connect(&server).await;
    next_frame(&mut ws).await;
    let mut mjpeg = mjpeg_connect(&server).await;
    read_mjpeg_parts(&mut mjpeg, 1, Duration::from_secs(10)).await;
    // shutdown() asserts the server finishes within 10 s despite the open streams.
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_gets_a_clean_close_back() {
    use futures_util::StreamExt;
    let server = TestServer::start(Config::pattern(160, 120)).await;
    let (mut ws, _) = ws_connect(&server).await;
    next_frame(&mut ws).await;
    ws.send(Message::Close(None)).await.expect("send close");
    // Frames may still be in flight; then the server's close frame, then the end.
    let mut closed = false;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        match msg {
            Ok(Message::Close(_)) => closed = true,
            Ok(_) => {}
            Err(e) => panic!("the socket must close cleanly, not fail: {e}"),
        }
    }
    assert!(closed, "the server answered the close handshake");
    server.shutdown().await;
}
