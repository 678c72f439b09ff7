//! Relays over a real NATS server: a real `nats-server` on a free port, the real
//! deskcast binary as origin and as relays, WebSocket viewers on the relays, and a tap
//! on NATS that records every JPEG the origin published.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::auth::status;
use common::binary::Binary;
use common::nats::NatsServer;
use common::xclient::{TestWindow, XEvent};
use common::*;
use deskcast_server::nats::wire::Assembler;
use deskcast_shared::{ErrorCode, FrameHeader, Role, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// The relays' own tokens: not the origin's.
const RELAY: (&str, &str) = ("relay-control-token-001", "relay-view-token-000001");

/// Each test runs several servers on two cores: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn origin(nats: &NatsServer, stream: &str, args: &[&str], display: Option<&str>) -> Binary {
    let url = nats.url();
    let mut all = vec!["--nats", url.as_str(), "--stream", stream];
    all.extend_from_slice(args);
    Binary::start(&all, display).await
}

async fn relay(nats: &NatsServer, stream: &str) -> Binary {
    let url = nats.url();
    Binary::start_with_tokens(&["relay", "--nats", &url, "--stream", stream], None, RELAY).await
}

/// A viewer of `relay` with `token`: the socket and its `hello`.
async fn viewer(relay: &Binary, token: &str) -> (Ws, ServerMessage) {
    let url = format!("ws://{}/ws?token={token}", relay.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the relay's token opens /ws");
    let hello = next_text(&mut ws).await;
    (ws, hello)
}

/// Every JPEG the origin published on `deskcast.STREAM.frames`, as it was published.
struct Tap {
    jpegs: Arc<Mutex<HashSet<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    async fn start(nats: &NatsServer, stream: &str) -> Tap {
        let client = async_nats::connect(nats.url()).await.expect("tap connects");
        let mut frames = client
            .subscribe(format!("deskcast.{stream}.frames"))
            .await
            .expect("tap subscribes");
        client.flush().await.expect("flush");
        let jpegs = Arc::new(Mutex::new(HashSet::new()));
        let seen = jpegs.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut parts = Assembler::default();
            while let Some(msg) = frames.next().await {
                if let Ok(Some(frame)) = parts.push(msg.payload) {
                    let mut seen = seen.lock().expect("lock");
                    for m in frame.body.messages {
                        seen.insert(jpeg_of(&m).to_vec());
                    }
                }
            }
        });
        Tap { jpegs, task }
    }

    fn has(&self, jpeg: &[u8]) -> bool {
        self.jpegs.lock().expect("lock").contains(jpeg)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The JPEG of a frame message (what follows its header).
fn jpeg_of(msg: &[u8]) -> &[u8] {
    let (_, jpeg) = FrameHeader::decode(msg).expect("a frame header");
    jpeg
}

/// The next `n` frame messages on `ws`, skipping text.
async fn frames(ws: &mut Ws, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(next_frame(ws).await);
    }
    out
}

/// Whether every JPEG in `got` is one the origin published, byte for byte; each
/// decodes to the size its header says.
async fn all_published(tap: &Tap, got: &[Vec<u8>]) {
    // The tap is one more NATS subscriber: give it the moment it may be behind.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, m) in got.iter().enumerate() {
        let (h, jpeg) = FrameHeader::decode(m).expect("a frame header");
        assert!(
            tap.has(jpeg),
            "message {i} ({}x{} at {},{}) is not a JPEG the origin published",
            h.width,
            h.height,
            h.x,
            h.y
        );
        if !h.is_fill() {
            let (w, hh, _) = decode_rgb(jpeg);
            assert_eq!((w as u32, hh as u32), (h.width, h.height));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_pass_the_origins_jpegs_through_and_losing_one_leaves_the_other() {
    if !have("nats-server") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let nats = NatsServer::start();
    let tap = Tap::start(&nats, "two").await;
    let origin = origin(
        &nats,
        "two",
        &["--source", "pattern", "--size", "320x240"],
        None,
    )
    .await;
    let mut a = relay(&nats, "two").await;
    let b = relay(&nats, "two").await;
    let (mut va, hello_a) = viewer(&a, RELAY.1).await;
    let (mut vb, _) = viewer(&b, RELAY.1).await;
    assert!(
        matches!(
            hello_a,
            ServerMessage::Hello {
                role: Role::View,
                ..
            }
        ),
        "{hello_a:?}"
    );
    let t0 = Instant::now();
    let got_a = frames(&mut va, 40).await;
    let got_b = frames(&mut vb, 40).await;
    eprintln!("40 frames on each relay in {:?}", t0.elapsed());
    all_published(&tap, &got_a).await;
    all_published(&tap, &got_b).await;
    // The first is a keyframe at the origin's size.
    let (first, _) = FrameHeader::decode(&got_a[0]).expect("header");
    assert!(first.is_key(), "a joiner starts from a keyframe: {first:?}");
    assert_eq!((first.screen_width, first.screen_height), (320, 240));

    a.child.kill().await.expect("kill relay a");
    drop(va);
    let t1 = Instant::now();
    let more = frames(&mut vb, 40).await;
    eprintln!(
        "relay b: 40 more frames in {:?} after relay a was killed",
        t1.elapsed()
    );
    all_published(&tap, &more).await;
    // Its chain never broke: sequence numbers only grow.
    let seqs: Vec<u64> = got_b
        .iter()
        .chain(&more)
        .map(|m| FrameHeader::decode(m).expect("header").0.seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    drop(origin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_recover_after_the_nats_server_restarts() {
    if !have("nats-server") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut nats = NatsServer::start();
    let _origin = origin(
        &nats,
        "back",
        &["--source", "pattern", "--size", "320x240"],
        None,
    )
    .await;
    let relay = relay(&nats, "back").await;
    let (mut ws, _) = viewer(&relay, RELAY.1).await;
    frames(&mut ws, 10).await;

    nats.kill();
    let down = text_matching(&mut ws, Duration::from_secs(10), |m| {
        matches!(m, ServerMessage::Source { up: false, .. })
    })
    .await;
    let Some(ServerMessage::Source { message, .. }) = &down else {
        panic!("no word of the lost origin within 10 s");
    };
    assert!(message.contains("origin unreachable"), "{message}");
    let (code, _, body) = http_get(relay.addr, "/healthz", &[]).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("origin unreachable"), "{body}");

    nats.restart();
    let t0 = Instant::now();
    let up = text_matching(&mut ws, Duration::from_secs(10), |m| {
        matches!(m, ServerMessage::Source { up: true, .. })
    })
    .await;
    assert!(up.is_some(), "the origin is not back within 10 s");
    // Frames from the origin again: not the placeholder.
    loop {
        let m = next_frame(&mut ws).await;
        let (h, _) = FrameHeader::decode(&m).expect("header");
        if h.screen_width == 320 {
            break;
        }
    }
    let took = t0.elapsed();
    eprintln!("relay recovered {took:?} after nats-server came back");
    assert!(
        took < Duration::from_secs(5),
        "the issue asks for recovery within 5 s; took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_lets_in_only_its_own_tokens() {
    if !have("nats-server") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let nats = NatsServer::start();
    let _origin = origin(
        &nats,
        "tokens",
        &["--source", "pattern", "--size", "160x120"],
        None,
    )
    .await;
    let relay = relay(&nats, "tokens").await;
    for path in ["/ws", "/snapshot.jpg", "/video_feed", "/metrics", "/"] {
        assert_eq!(
            status(relay.addr, path, &[]).await,
            401,
            "{path} with no token"
        );
        let origin_token = format!("{path}?token={}", common::auth::CONTROL);
        assert_eq!(
            status(relay.addr, &origin_token, &[]).await,
            401,
            "{path} with the origin's token"
        );
    }
    let snapshot = format!("/snapshot.jpg?token={}", RELAY.1);
    let (code, _, _) = http_get(relay.addr, &snapshot, &[]).await;
    assert_eq!(code, 200, "the relay's view token gets a snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_through_a_relay_reaches_the_origins_desktop_only_with_relay_control() {
    if !have("nats-server") || !have("Xvfb") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let x = Xvfb::start(640, 480);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let nats = NatsServer::start();

    // With --relay-control: the relay's controller controls the origin's desktop.
    let origin_on = origin(&nats, "ctl", &["--relay-control"], Some(&x.display)).await;
    let relay_on = relay(&nats, "ctl").await;
    wait_for_health(&relay_on, "input: ok").await;
    let (mut ws, hello) = viewer(&relay_on, RELAY.0).await;
    assert!(
        matches!(
            hello,
            ServerMessage::Hello {
                role: Role::Control,
                may_control: true,
                input: true,
                ..
            }
        ),
        "{hello:?}"
    );
    frames(&mut ws, 1).await;
    window.clear();
    ws.send(Message::text(r#"{"type":"click","x":0.5,"y":0.5}"#))
        .await
        .expect("send");
    let events = window.wait_for(Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, XEvent::Release { .. }))
    });
    let press = events.iter().find_map(|e| match e {
        XEvent::Press { x, y, button, .. } => Some((*x, *y, *button)),
        _ => None,
    });
    assert_eq!(press, Some((320, 240, 1)), "X saw {events:?}");
    // A viewer of the relay sees the origin's cursor where the click put it.
    let (mut watcher, _) = viewer(&relay_on, RELAY.1).await;
    let (mut shape, mut pointer) = (false, None);
    let t0 = Instant::now();
    while !(shape && pointer.is_some()) && t0.elapsed() < Duration::from_secs(10) {
        if let Message::Text(t) = next_message(&mut watcher).await {
            match ServerMessage::parse(t.as_str()).expect("valid") {
                ServerMessage::Cursor { .. } => shape = true,
                ServerMessage::Pointer { x, y } => pointer = Some((x, y)),
                _ => {}
            }
        }
    }
    assert!(shape, "no cursor shape through the relay");
    let (px, py) = pointer.expect("the pointer through the relay");
    assert!(
        (px - 0.5).abs() < 0.01 && (py - 0.5).abs() < 0.01,
        "pointer at {px},{py}"
    );
    drop(watcher);
    drop(ws);
    drop(relay_on);
    drop(origin_on);

    // Without it: the relay's control token gets a view-only session.
    let _origin_off = origin(&nats, "ctl2", &[], Some(&x.display)).await;
    let relay_off = relay(&nats, "ctl2").await;
    wait_for_health(&relay_off, "input: view-only").await;
    let (mut ws, hello) = viewer(&relay_off, RELAY.0).await;
    assert!(
        matches!(
            hello,
            ServerMessage::Hello {
                role: Role::View,
                may_control: false,
                ..
            }
        ),
        "{hello:?}"
    );
    window.clear();
    ws.send(Message::text(r#"{"type":"click","x":0.5,"y":0.5}"#))
        .await
        .expect("send");
    expect_error(&mut ws, ErrorCode::ViewOnly).await;
    ws.send(Message::text(r#"{"type":"request_control"}"#))
        .await
        .expect("send");
    expect_error(&mut ws, ErrorCode::ViewOnly).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !window
            .events()
            .iter()
            .any(|e| matches!(e, XEvent::Press { .. })),
        "a view-only relay's click reached X: {:?}",
        window.events()
    );
}

/// Waits (15 s at most) until the relay's `/healthz` says `what`: it heard the origin.
async fn wait_for_health(relay: &Binary, what: &str) {
    let t0 = Instant::now();
    loop {
        let (_, _, body) = http_get(relay.addr, "/healthz", &[]).await;
        let body = String::from_utf8_lossy(&body);
        if body.contains(what) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the relay's /healthz never said {what:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts the NATS messages on one subject.
struct Counter {
    seen: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counter {
    async fn start(nats: &NatsServer, subject: String) -> Counter {
        let client = async_nats::connect(nats.url()).await.expect("connects");
        let mut sub = client.subscribe(subject).await.expect("subscribes");
        client.flush().await.expect("flush");
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            while sub.next().await.is_some() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Counter { seen, task }
    }

    fn get(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the origin's pipeline runs, from its `/metrics`.
async fn capturing(origin: &Binary) -> bool {
    let bearer = format!("Bearer {}", common::auth::CONTROL);
    let (code, _, body) = http_get(origin.addr, "/metrics", &[("Authorization", &bearer)]).await;
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    let line = text
        .lines()
        .find(|l| l.contains("pipeline_running") && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no pipeline_running in /metrics:\n{text}"));
    line.trim().ends_with(" 1")
}

/// Waits (5 s at most) until the origin captures, or stops, as `want` says.
async fn until_capturing(origin: &Binary, want: bool) {
    let t0 = Instant::now();
    while capturing(origin).await != want {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the origin's pipeline_running did not turn {want} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_captures_only_while_relays_watch_and_sends_whole_frames_only_for_mjpeg() {
    if !have("nats-server") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let nats = NatsServer::start();
    let frames_sent = Counter::start(&nats, "deskcast.idle.frames".into()).await;
    let wholes_sent = Counter::start(&nats, "deskcast.idle.whole".into()).await;
    let origin = origin(
        &nats,
        "idle",
        &["--source", "pattern", "--size", "160x120"],
        None,
    )
    .await;
    let relay = relay(&nats, "idle").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !capturing(&origin).await,
        "nobody watches, yet the origin captures"
    );
    assert_eq!(frames_sent.get(), 0, "nobody watches, yet frames went out");

    // A /ws viewer at the relay: region updates, no whole frames.
    let (mut ws, _) = viewer(&relay, RELAY.1).await;
    frames(&mut ws, 5).await;
    assert!(capturing(&origin).await);
    assert!(frames_sent.get() > 0);
    assert_eq!(
        wholes_sent.get(),
        0,
        "whole frames went out with no MJPEG reader"
    );
    drop(ws);
    until_capturing(&origin, false).await;

    // An MJPEG reader at the relay: whole frames now, and the relay streams them.
    let mut mjpeg = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    let req = format!(
        "GET /video_feed?token={} HTTP/1.1\r\nHost: {}\r\n\r\n",
        RELAY.1, relay.addr
    );
    tokio::io::AsyncWriteExt::write_all(&mut mjpeg, req.as_bytes())
        .await
        .expect("request");
    let parts = read_mjpeg_parts(&mut mjpeg, 5, Duration::from_secs(10)).await;
    assert!(parts >= 5);
    assert!(
        wholes_sent.get() > 0,
        "the relay streamed MJPEG without whole frames?"
    );
    drop(mjpeg);
    until_capturing(&origin, false).await;
    let after = wholes_sent.get();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wholes_sent.get(),
        after,
        "whole frames still go out with nobody reading"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_and_tls_are_used() {
    if !have("nats-server") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("deskcast-nats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).expect("write key");
    let creds = dir.join("nats.secret");
    std::fs::write(&creds, "deskcast:a-long-nats-password\n").expect("write creds");
    let (c, k) = (cert_pem.to_string_lossy(), key_pem.to_string_lossy());
    let nats = NatsServer::start_with(&[
        "--user",
        "deskcast",
        "--pass",
        "a-long-nats-password",
        "--tls",
        "--tlscert",
        &c,
        "--tlskey",
        &k,
    ]);
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let creds_arg = creds.to_string_lossy().to_string();
    let with_creds = ["--nats-creds", creds_arg.as_str(), "--nats-ca", &c];
    let mut origin_args = vec!["--source", "pattern", "--size", "160x120"];
    origin_args.extend_from_slice(&["--nats", &url, "--stream", "sec"]);
    origin_args.extend_from_slice(&with_creds);
    let _origin = Binary::start(&origin_args, None).await;
    let mut relay_args = vec!["relay", "--nats", &url, "--stream", "sec"];
    relay_args.extend_from_slice(&with_creds);
    let relay = Binary::start_with_tokens(&relay_args, None, RELAY).await;
    let (mut ws, _) = viewer(&relay, RELAY.1).await;
    let got = frames(&mut ws, 5).await;
    assert_eq!(
        got.len(),
        5,
        "frames through a password- and TLS-protected NATS"
    );

    // Without the password, a relay never hears the origin.
    let no_creds = ["relay", "--nats", &url, "--stream", "sec", "--nats-ca", &c];
    let locked_out = Binary::start_with_tokens(&no_creds, None, RELAY).await;
    wait_for_health(&locked_out, "origin unreachable").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_viewer_of_a_still_screen_the_origin_already_streams_gets_a_picture() {
    if !have("nats-server") || !have("Xvfb") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let x = Xvfb::start(320, 240);
    let _window = TestWindow::open(&x.display, 0x3366cc, false);
    let nats = NatsServer::start();
    let origin = origin(&nats, "still", &[], Some(&x.display)).await;
    // The origin streams to its own viewer, then the screen stays still: no update
    // comes that a relay could start from.
    let mut local = origin.ws().await;
    frames(&mut local, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relay = relay(&nats, "still").await;
    let (mut ws, _) = viewer(&relay, RELAY.1).await;
    // The whole first frame: a keyframe of the window's colour (full screen), in
    // JPEG rectangles or solid fills.
    let near =
        |p: &[u8]| p[0].abs_diff(0x33) < 24 && p[1].abs_diff(0x66) < 24 && p[2].abs_diff(0xcc) < 24;
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        let mut messages = Vec::new();
        loop {
            let m = next_frame(&mut ws).await;
            let last = FrameHeader::decode(&m).expect("header").0.is_last();
            messages.push(m);
            if last {
                return messages;
            }
        }
    })
    .await
    .expect("a first frame within 10 s");
    for m in &first {
        let (h, payload) = FrameHeader::decode(m).expect("header");
        assert!(h.is_key(), "{h:?}");
        assert_eq!((h.screen_width, h.screen_height), (320, 240));
        let pixel = if h.is_fill() {
            payload.to_vec()
        } else {
            let (w, hh, rgb) = decode_rgb(payload);
            let mid = (hh / 2 * w + w / 2) * 3;
            rgb[mid..mid + 3].to_vec()
        };
        assert!(near(&pixel), "the window's colour, got {pixel:?}");
    }
}
