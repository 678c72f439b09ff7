//! The hostile battery of issue 11 over real sockets (and, where it matters, the real
//! binary and a real X server): each refusal, and that the legitimate path still works.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::auth::*;
use common::binary::Binary;
use common::xclient::{TestWindow, XEvent};
use common::*;
use deskcast_server::Config;
use deskcast_shared::{Role, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn secured() -> Config {
    Config::pattern(160, 120).with_tokens(CONTROL, VIEW)
}

fn role_of(hello: &ServerMessage) -> Role {
    match hello {
        ServerMessage::Hello { role, .. } => *role,
        other => panic!("expected hello, got {other:?}"),
    }
}

/// A TCP connection from source address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// Whether the peer closes `s` within `limit` (EOF or reset).
async fn closed_within(mut s: TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_token_gets_in_after_500_wrong_ones_and_wrong_ones_slow_down() {
    let server = TestServer::start(secured()).await;
    let addr = server.addr;
    // 500 wrong tokens from across 127.0.0.0/8 (all of it counts as one address), each
    // left as soon as it is sent: an attacker does not wait for the answers.
    let guesses: Vec<_> = (0..500u32)
        .map(|i| {
            tokio::spawn(async move {
                let from = IpAddr::from([127, 0, 1 + (i / 250) as u8, 2 + (i % 250) as u8]);
                let Ok(mut s) = connect_from(from, addr).await else {
                    return;
                };
                let req =
                    format!("GET /snapshot.jpg?token=guess{i} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                let _ = s.write_all(req.as_bytes()).await;
                let mut buf = [0u8; 256];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
            })
        })
        .collect();
    for g in guesses {
        g.await.expect("guess task");
    }
    // The owner, from the same (loopback) address, is let in at once, by every path.
    let good = format!("/snapshot.jpg?token={CONTROL}");
    let (head, body) = get(addr, &good, &[]).await;
    assert_eq!(head.status, 200, "{}", head.head);
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
    let (_ws, hello) = ws_control(&server).await;
    assert_eq!(role_of(&hello), Role::Control);
    // A further wrong token is refused (401, never 429), and only after a delay.
    let t0 = Instant::now();
    let head = get_from([127, 0, 0, 9].into(), addr, "/snapshot.jpg?token=nope").await;
    let waited = t0.elapsed();
    assert_eq!(head.status, 401);
    assert!(
        waited >= Duration::from_secs(1),
        "a wrong token after 500 is answered late, got {waited:?}"
    );
    eprintln!("the 501st wrong token was answered after {waited:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_a_session_a_planted_one_does_not_break_ws_and_sign_out_ends_it() {
    let server = TestServer::start(secured()).await;
    let name = format!("deskcast_session_{}", server.addr.port());
    let (head, _) = get(server.addr, &format!("/?token={CONTROL}"), &[]).await;
    let set = head.header("set-cookie").expect("a session cookie");
    let cookie = set.split(';').next().expect("name=value").to_string();
    let id = cookie
        .strip_prefix(&format!("{name}="))
        .expect("our cookie");
    assert!(id.len() == 32 && id != CONTROL, "{cookie}");
    // Another server on this host planted a cookie of the same name with a narrower
    // path: the browser sends it first. Ours still opens /ws.
    let both = format!("{name}=planted-by-another-port; {cookie}");
    let (mut ws, hello) = ws_open(&server, "", &[("Cookie", &both)])
        .await
        .expect("the session opens /ws despite the planted cookie");
    assert_eq!(role_of(&hello), Role::Control);
    // A viewer that keeps reading (as a page does), until its socket is closed.
    let reader = tokio::spawn(async move {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                other => {
                    eprintln!("the socket ended without a close frame: {other:?}");
                    return None;
                }
            }
        }
    });
    // A planted cookie alone is refused, and costs no delay.
    let t0 = Instant::now();
    let planted = format!("{name}=planted-by-another-port");
    assert_eq!(status(server.addr, "/", &[("Cookie", &planted)]).await, 401);
    assert!(t0.elapsed() < Duration::from_secs(1));
    // Sign out: DELETE /session ends it and clears the cookie.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!(
        "DELETE /session HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(answer.contains("Max-Age=0"), "{answer}");
    assert_eq!(status(server.addr, "/", &[("Cookie", &cookie)]).await, 401);
    assert_eq!(
        ws_open(&server, "", &[("Cookie", &cookie)]).await.err(),
        Some(401),
        "a revoked session is refused"
    );
    // The socket opened with it is closed too.
    let closed = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    assert_eq!(closed, Some(4001), "signed out: the open socket closes");
    // The token still signs in anew.
    let (head, _) = get(server.addr, &format!("/?token={VIEW}"), &[]).await;
    let again = head.header("set-cookie").expect("a new session");
    assert!(!again.contains(id));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_400_one_is_200() {
    let server = TestServer::start(secured()).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!(
        "GET /snapshot.jpg?token={CONTROL} HTTP/1.1\r\nHost: {}\r\nHost: evil.example\r\n\
         Connection: close\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let ok = format!("/snapshot.jpg?token={CONTROL}");
    assert_eq!(status(server.addr, &ok, &[]).await, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_lock_tls_clients_out() {
    let server = TlsServer::start(secured()).await;
    // 64 sockets that connect and never start their handshake.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(
            connect_from([127, 0, 0, 2].into(), server.addr)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Those past the per-address cap are closed at once.
    let last = idle.pop().expect("one");
    assert!(
        closed_within(last, Duration::from_secs(2)).await,
        "the 64th idle socket from one address is hung up on"
    );
    // A TLS client from another address gets through at once.
    let answer = server.get(&format!("/snapshot.jpg?token={CONTROL}")).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    drop(idle);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_viewers_do_not_take_the_controllers_seat() {
    let server = TestServer::start(secured()).await;
    let bearer = format!("Bearer {VIEW}");
    let mut readers = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        let req = format!(
            "GET /video_feed HTTP/1.1\r\nHost: {}\r\nAuthorization: {bearer}\r\n\r\n",
            server.addr
        );
        s.write_all(req.as_bytes()).await.expect("send");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.expect("a status line");
        assert_eq!(&head, b"HTTP/1.1 200");
        readers.push(s);
    }
    // Every viewer seat is taken: another viewer waits…
    let (head, _) = get(server.addr, "/video_feed", &[("Authorization", &bearer)]).await;
    assert_eq!(head.status, 503, "the 17th viewer");
    assert_eq!(
        ws_open(&server, &format!("?token={VIEW}"), &[]).await.err(),
        Some(503)
    );
    // …and the owner still gets in, and controls.
    let (mut ws, hello) = ws_control(&server).await;
    assert_eq!(role_of(&hello), Role::Control);
    next_frame(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mjpeg_reader_is_dropped_and_its_seat_freed() {
    let mut config = Config::pattern(640, 480).with_tokens(CONTROL, VIEW);
    config.max_clients = 1;
    config.write_timeout = Duration::from_secs(1);
    let server = TestServer::start(config).await;
    // A reader with a small receive buffer that never reads.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stalled = socket.connect(server.addr).await.expect("connect");
    let req = format!(
        "GET /video_feed HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {VIEW}\r\n\r\n",
        server.addr
    );
    stalled.write_all(req.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bearer = format!("Bearer {VIEW}");
    let (head, _) = get(server.addr, "/video_feed", &[("Authorization", &bearer)]).await;
    assert_eq!(head.status, 503, "the one seat is the stalled reader's");
    // Once its writes stall for the write timeout, it is dropped and the seat is free.
    let t0 = Instant::now();
    let mut freed = false;
    while t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (head, _) = get(server.addr, "/video_feed", &[("Authorization", &bearer)]).await;
        if head.status == 200 {
            freed = true;
            break;
        }
    }
    assert!(freed, "the stalled reader still holds its seat after 20 s");
    eprintln!("a stalled reader was dropped after {:?}", t0.elapsed());
    drop(stalled);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_leaves_the_server_flat() {
    let server = Binary::start(&["--source", "pattern"], None).await;
    let mut ws = server.ws().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss();
    // Up to 50 MB of pings, never reading a pong (or a frame).
    let payload = vec![7u8; 125];
    let mut sent = 0u64;
    for _ in 0..400_000 {
        let ping = Message::Ping(payload.clone().into());
        match tokio::time::timeout(Duration::from_secs(2), ws.send(ping)).await {
            Ok(Ok(())) => sent += 1,
            // The server closed the socket, or stopped reading it: either bounds it.
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = server.rss().saturating_sub(before);
    eprintln!("{sent} pings, the server grew {} KB", grown / 1024);
    assert!(
        grown < 5 * 1024 * 1024,
        "{sent} pings grew the server by {} KB",
        grown / 1024
    );
    // Others are unharmed.
    let _other = server.ws().await;
}

fn shift(down: bool) -> impl Fn(&XEvent) -> bool {
    move |e| {
        matches!(
            e,
            XEvent::Key { keysym: 0xffe1, down: d } if *d == down
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_shift_is_held_releases_it_before_the_process_exits() {
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(640, 480);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let mut server = Binary::start(&[], Some(&x.display)).await;
    let mut ws = server.ws().await;
    ws.send(Message::text(
        r#"{"type":"key","code":"ShiftLeft","down":true}"#,
    ))
    .await
    .expect("send");
    let ev = window.wait_for(Duration::from_secs(5), |e| e.iter().any(shift(true)));
    assert!(ev.iter().any(shift(true)), "Shift went down: {ev:?}");
    window.clear();
    let pid = server.child.id().expect("running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits within 10 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "a clean exit: {status}");
    // The close reached the client as 1001, going away.
    let close = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Close(frame)) = m {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert_eq!(close, Some(1001));
    // The X server saw the release (it does not undo XTEST presses of a client that
    // goes away: without the release, Shift would stay down for the next user).
    let ev = window.wait_for(Duration::from_secs(2), |e| e.iter().any(shift(false)));
    assert!(ev.iter().any(shift(false)), "Shift released: {ev:?}");
}

/// The colour of the snapshot's pixel at (10, 10).
async fn snapshot_pixel(addr: SocketAddr) -> Option<[u8; 3]> {
    let (status, _, body) = http_get(addr, "/snapshot.jpg", &[]).await;
    if status != 200 {
        return None;
    }
    let (w, _, rgb) = decode_rgb(&body);
    let i = (10 * w + 10) * 3;
    Some([rgb[i], rgb[i + 1], rgb[i + 2]])
}

/// Sends a click and expects the `input_unavailable` error back.
async fn click_is_refused_as_unavailable(ws: &mut Ws) {
    ws.send(Message::text(
        r#"{"type":"click","x":0.5,"y":0.5,"button":"left"}"#,
    ))
    .await
    .expect("send");
    expect_error(ws, deskcast_shared::ErrorCode::InputUnavailable).await;
}

fn close_to(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 24)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_x_server_is_told_and_survived_and_streaming_resumes_when_it_returns() {
    if !have("Xvfb") {
        return;
    }
    const BLUE: [u8; 3] = [0x33, 0x66, 0xcc];
    let mut x = Xvfb::start(640, 480);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let server = TestServer::start(screen_config()).await;
    let (mut ws, hello) = ws_connect(&server).await;
    assert!(
        matches!(hello, ServerMessage::Hello { input: true, .. }),
        "{hello:?}"
    );
    next_frame(&mut ws).await;
    let (status, _, body) = http_get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("input: ok"));
    assert_eq!(
        snapshot_pixel(server.addr).await.map(|p| close_to(p, BLUE)),
        Some(true)
    );

    // The X server goes away.
    drop(window);
    x.stop();
    let down = text_matching(&mut ws, Duration::from_secs(3), |m| {
        matches!(m, ServerMessage::Source { up: false, .. })
    })
    .await;
    assert!(down.is_some(), "viewers are told the source is down");
    let (status, _, body) = http_get(server.addr, "/healthz", &[]).await;
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("source down: the X display"), "{body}");
    assert!(body.contains("input: unavailable"), "{body}");
    // The picture is a placeholder, not the last frame.
    let placeholder = snapshot_pixel(server.addr).await.expect("a snapshot");
    assert!(!close_to(placeholder, BLUE), "{placeholder:?}");
    // Input says it is unavailable.
    click_is_refused_as_unavailable(&mut ws).await;

    // It comes back on the same display: frames again within 3 s, input too.
    x.restart();
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let t0 = Instant::now();
    let up = text_matching(&mut ws, Duration::from_secs(3), |m| {
        matches!(m, ServerMessage::Source { up: true, .. })
    })
    .await;
    assert!(up.is_some(), "viewers are told the source is back");
    let mut blue = false;
    while t0.elapsed() < Duration::from_secs(3) {
        if snapshot_pixel(server.addr)
            .await
            .is_some_and(|p| close_to(p, BLUE))
        {
            blue = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blue, "the desktop streams again within 3 s");
    eprintln!(
        "streaming again {:?} after the X server returned",
        t0.elapsed()
    );
    assert_eq!(http_get(server.addr, "/healthz", &[]).await.0, 200);
    ws.send(Message::text(
        r#"{"type":"click","x":0.5,"y":0.5,"button":"left"}"#,
    ))
    .await
    .expect("send");
    let ev = window.wait_for(Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, XEvent::Press { .. }))
    });
    assert!(
        ev.iter().any(|e| matches!(e, XEvent::Press { .. })),
        "a click reaches the new X server: {ev:?}"
    );
    // The clipboard follows the new X server too.
    if have("xclip") {
        x.copy("copied after the restart");
        let copied = text_matching(&mut ws, Duration::from_secs(4), |m| {
            matches!(m, ServerMessage::Clipboard { text } if text == "copied after the restart")
        })
        .await;
        assert!(copied.is_some(), "the clipboard reconnected");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_without_xtest_says_input_false_and_refuses_input_clearly() {
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start_with(320, 240, &["-extension", "XTEST"]);
    let server = Binary::start(&[], Some(&x.display)).await;
    let mut ws = server
        .ws_with_hello(|hello| {
            assert!(
                matches!(hello, ServerMessage::Hello { input: false, .. }),
                "{hello:?}"
            );
        })
        .await;
    let (_, _, body) = http_get(server.addr, "/healthz", &[]).await;
    let health = String::from_utf8_lossy(&body).to_string();
    assert!(health.contains("input: unavailable"), "{health}");
    click_is_refused_as_unavailable(&mut ws).await;
}
