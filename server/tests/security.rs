//! Each defence of the security model over real sockets: the refusal, and that the
//! legitimate path still works.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::auth::*;
use common::*;
use deskcast_server::Config;
use deskcast_shared::{ClientMessage, ErrorCode, Role, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_one_is_401_everywhere_but_healthz() {
    let server = TestServer::start(secured()).await;
    let wrong_cookie = format!("deskcast_session_{}=nope", server.addr.port());
    for path in [
        "/",
        "/ws",
        "/video_feed",
        "/snapshot.jpg",
        "/mjpeg",
        "/nope.js",
    ] {
        assert_eq!(status(server.addr, path, &[]).await, 401, "{path}");
    }
    // Wrong tokens through each channel (fewer than the lockout needs).
    assert_eq!(
        status(server.addr, "/snapshot.jpg?token=nope", &[]).await,
        401
    );
    let bearer = [("Authorization", "Bearer nope")];
    assert_eq!(status(server.addr, "/snapshot.jpg", &bearer).await, 401);
    let cookie = [("Cookie", wrong_cookie.as_str())];
    let (head, _) = get(server.addr, "/snapshot.jpg", &cookie).await;
    assert_eq!(head.status, 401);
    assert!(
        head.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "a stale cookie is cleared: {}",
        head.head
    );
    // The WebSocket upgrade is refused without a token, and with a wrong one.
    assert_eq!(ws_open(&server, "", &[]).await.err(), Some(401));
    assert_eq!(ws_open(&server, "?token=nope", &[]).await.err(), Some(401));
    // The legitimate paths: health needs nothing, the token opens the rest.
    let (head, body) = get(server.addr, "/healthz", &[]).await;
    assert_eq!(head.status, 200);
    assert!(
        body.starts_with(b"ok\n"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let tok = format!("/snapshot.jpg?token={CONTROL}");
    assert_eq!(status(server.addr, &tok, &[]).await, 200);
    ws_control(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_token_works_by_query_header_and_cookie() {
    let server = TestServer::start(secured()).await;
    // Query.
    let (head, body) = get(server.addr, &format!("/snapshot.jpg?token={CONTROL}"), &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
    // Header.
    let bearer = format!("Bearer {CONTROL}");
    let (head, _) = get(server.addr, "/video_feed", &[("Authorization", &bearer)]).await;
    assert_eq!(head.status, 200);
    assert!(head
        .header("content-type")
        .is_some_and(|c| c.starts_with("multipart/x-mixed-replace")));
    // A page opened with ?token= answers with the cookie and reloads without the token.
    let (head, body) = get(server.addr, &format!("/?token={CONTROL}"), &[]).await;
    assert_eq!(head.status, 200);
    let set = head.header("set-cookie").expect("a cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains(r#"http-equiv="refresh" content="0; url=/""#),
        "{body}"
    );
    assert!(
        !body.contains(CONTROL),
        "the page does not repeat the token"
    );
    let cookie = set.split(';').next().expect("name=value").to_string();
    let (name, value) = cookie.split_once('=').expect("name=value");
    assert_eq!(name, format!("deskcast_session_{}", server.addr.port()));
    assert!(
        value.len() == 32 && value != CONTROL && !value.contains(CONTROL),
        "the cookie carries a session id, never the token: {cookie}"
    );
    // Cookie: the page, the stream and the WebSocket.
    let (head, body) = get(server.addr, "/", &[("Cookie", &cookie)]).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("deskcast"));
    assert!(head.header("set-cookie").is_none());
    assert_eq!(
        status(server.addr, "/mjpeg", &[("Cookie", &cookie)]).await,
        200
    );
    let (mut ws, hello) = ws_open(&server, "", &[("Cookie", &cookie)])
        .await
        .expect("the cookie opens /ws");
    assert_eq!(role_of(&hello), Role::Control);
    next_frame(&mut ws).await;
    let (_, hello) = ws_open(&server, "", &[("Authorization", &bearer)])
        .await
        .expect("the header opens /ws");
    assert_eq!(role_of(&hello), Role::View, "control is taken: views");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_token_views_and_its_input_never_reaches_the_input_thread() {
    let mut config = secured();
    config.test_accept_input = true;
    let mut server = TestServer::start(config).await;
    // The view session comes first, so the seat is free: it still must not take it.
    let (mut view, hello) = ws_open(&server, &format!("?token={VIEW}"), &[])
        .await
        .expect("the view token opens /ws");
    assert_eq!(role_of(&hello), Role::View);
    next_frame(&mut view).await;
    let click = r#"{"type":"click","x":0.25,"y":0.25,"seq":1}"#;
    view.send(Message::text(click)).await.expect("send");
    let ServerMessage::Error { code, .. } = next_text(&mut view).await else {
        panic!("expected an error")
    };
    assert_eq!(code, ErrorCode::ViewOnly);
    // Nor may it ask for control.
    view.send(Message::text(r#"{"type":"request_control"}"#))
        .await
        .expect("send");
    let ServerMessage::Error { code, .. } = next_text(&mut view).await else {
        panic!("expected an error")
    };
    assert_eq!(code, ErrorCode::ViewOnly);

    let (mut control, hello) = ws_control(&server).await;
    assert_eq!(role_of(&hello), Role::Control);
    let click = r#"{"type":"click","x":0.75,"y":0.75,"seq":2}"#;
    control.send(Message::text(click)).await.expect("send");
    // The tap is in order: had the view's click got through, it would come first.
    match server.next_input().await {
        ClientMessage::Click { x, seq, .. } => assert_eq!((x, seq), (0.75, Some(2))),
        other => panic!("expected the control click, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_403_and_the_same_origin_is_101() {
    let server = TestServer::start(secured()).await;
    let q = format!("?token={CONTROL}");
    for origin in [
        "http://evil.example",
        &format!("https://{}", server.addr),
        "null",
    ] {
        assert_eq!(
            ws_open(&server, &q, &[("Origin", origin)]).await.err(),
            Some(403),
            "{origin}"
        );
    }
    let own = format!("http://{}", server.addr);
    let (_, hello) = ws_open(&server, &q, &[("Origin", &own)])
        .await
        .expect("same origin gets 101");
    assert_eq!(role_of(&hello), Role::Control);
    // Non-browser clients send no Origin; they still need the token.
    assert_eq!(ws_open(&server, "", &[]).await.err(), Some(401));
    ws_open(&server, &q, &[])
        .await
        .expect("no Origin, token: 101");
    // --allow-origin admits one more.
    let mut config = secured();
    config.allow_origins = vec!["https://desk.example.org".into()];
    let other = TestServer::start(config).await;
    let origin = [("Origin", "https://desk.example.org")];
    ws_open(&other, &q, &origin).await.expect("allowed origin");
    other.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_403() {
    let server = TestServer::start(secured()).await;
    let tok = format!("/snapshot.jpg?token={CONTROL}");
    for path in ["/", "/healthz", tok.as_str()] {
        let head = get_with_host(server.addr, path, "evil.example").await;
        assert_eq!(head.status, 403, "{path}");
        let head = get_with_host(server.addr, path, "evil.example:80").await;
        assert_eq!(head.status, 403, "{path}");
    }
    let port = server.addr.port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            get_with_host(server.addr, &tok, &host).await.status,
            200,
            "{host}"
        );
    }
    assert_eq!(
        get_with_host(server.addr, &tok, &format!("localhost:{}", port ^ 1))
            .await
            .status,
        403,
        "the right name on another port"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_with_1009_while_others_keep_streaming() {
    let server = TestServer::start(secured()).await;
    let (mut big, _) = ws_control(&server).await;
    let (mut other, _) = ws_control(&server).await;
    next_frame(&mut other).await;
    // Over the 4 KiB message limit: a clean close with 1009.
    big.send(Message::text("x".repeat(6 * 1024)))
        .await
        .expect("send 6 KiB");
    let close = loop {
        if let Message::Close(frame) = next_message(&mut big).await {
            break frame.expect("a close frame with a code");
        }
    };
    assert_eq!(close.code, CloseCode::Size, "1009");
    // Far over it (1 MiB): refused as it arrives, never buffered whole. The server
    // closes while the client still sends, so the client may see a reset instead.
    let (mut huge, _) = ws_control(&server).await;
    let _ = huge.send(Message::text("x".repeat(1024 * 1024))).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match huge.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a 1 MiB message ends its socket");
    for _ in 0..5 {
        next_frame(&mut other).await;
    }
    // Binary messages are refused with an error; the socket stays.
    other
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    let ServerMessage::Error { code, .. } = next_text(&mut other).await else {
        panic!("expected an error")
    };
    assert_eq!(code, ErrorCode::BadMessage);
    next_frame(&mut other).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_probes_are_404_with_a_valid_token() {
    let server = TestServer::start(secured()).await;
    let bearer = format!("Bearer {CONTROL}");
    let auth = [("Authorization", bearer.as_str())];
    for probe in [
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..",
        "/%252e%252e/",
        "/..%2f..%2fCargo.toml",
        "/%2e%2e%5c%2e%2e%5cCargo.toml",
        "/.%2e/.%2e/etc/passwd",
    ] {
        let (head, body) = get(server.addr, probe, &auth).await;
        assert_eq!(head.status, 404, "{probe}");
        assert!(!String::from_utf8_lossy(&body).contains("root:"), "{probe}");
    }
    assert_eq!(status(server.addr, "/", &auth).await, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_viewers_get_503() {
    let mut config = secured();
    config.max_clients = 2;
    let server = TestServer::start(config).await;
    let view = format!("?token={VIEW}");
    let (a, _) = ws_open(&server, &view, &[]).await.expect("first viewer");
    let (_b, _) = ws_open(&server, &view, &[]).await.expect("second viewer");
    assert_eq!(ws_open(&server, &view, &[]).await.err(), Some(503));
    let feed = format!("/video_feed?token={VIEW}");
    assert_eq!(status(server.addr, &feed, &[]).await, 503);
    // The controller is not a viewer: always let in.
    let (_c, hello) = ws_control(&server).await;
    assert_eq!(role_of(&hello), Role::Control);
    // A snapshot is not a viewer.
    let snap = format!("/snapshot.jpg?token={CONTROL}");
    assert_eq!(status(server.addr, &snap, &[]).await, 200);
    // When one leaves, the next gets in.
    drop(a);
    let mut got_in = false;
    for _ in 0..100 {
        let (head, _) = get(server.addr, &feed, &[]).await;
        if head.status == 200 {
            got_in = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(got_in, "a seat frees when a viewer leaves");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_over_the_rate_is_dropped_with_one_error() {
    let mut config = secured();
    config.test_accept_input = true;
    config.max_input_rate = 10;
    let mut server = TestServer::start(config).await;
    let (mut ws, _) = ws_control(&server).await;
    // One write for all 40, so the bucket cannot refill in between.
    for seq in 1..=40u64 {
        let msg = format!(r#"{{"type":"move","x":0.5,"y":0.5,"seq":{seq}}}"#);
        ws.feed(Message::text(msg)).await.expect("queue");
    }
    ws.flush().await.expect("send");
    // Collect what comes back for a second: exactly one rate_limited error.
    let mut limited = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Text(t) = msg {
            match ServerMessage::parse(t.as_str()).expect("server message") {
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => limited += 1,
                ServerMessage::Cursor { .. }
                | ServerMessage::Pointer { .. }
                | ServerMessage::Controller { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(limited, 1, "one error per burst");
    // The first ten went through, in order; the rest did not.
    for seq in 1..=10u64 {
        match server.next_input().await {
            ClientMessage::Move { seq: s, .. } => assert_eq!(s, Some(seq)),
            other => panic!("expected a move, got {other:?}"),
        }
    }
    let tap = server.tap.as_mut().expect("tap");
    assert!(tap.try_recv().is_err(), "nothing past the rate");
    // A release of what the client holds is never dropped, even over the rate: a key
    // must not stay held. Shift down and a drag's start first, within the rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.feed(Message::text(
        r#"{"type":"key","code":"ShiftLeft","down":true,"seq":100}"#,
    ))
    .await
    .expect("queue");
    ws.feed(Message::text(
        r#"{"type":"drag","phase":"start","x":0.5,"y":0.5,"seq":101}"#,
    ))
    .await
    .expect("queue");
    ws.flush().await.expect("send");
    for want in [100, 101] {
        assert_eq!(server.next_input().await.seq(), Some(want));
    }
    for seq in 200..240u64 {
        let msg = format!(r#"{{"type":"move","x":0.5,"y":0.5,"seq":{seq}}}"#);
        ws.feed(Message::text(msg)).await.expect("queue");
    }
    ws.feed(Message::text(
        r#"{"type":"key","code":"ShiftLeft","down":false,"seq":300}"#,
    ))
    .await
    .expect("queue");
    ws.feed(Message::text(
        r#"{"type":"drag","phase":"end","x":0.5,"y":0.5,"seq":301}"#,
    ))
    .await
    .expect("queue");
    // A release of a key it does not hold is input like any other: over the rate.
    ws.feed(Message::text(
        r#"{"type":"key","code":"KeyQ","down":false,"seq":302}"#,
    ))
    .await
    .expect("queue");
    ws.flush().await.expect("send");
    let mut released = Vec::new();
    while released.len() < 2 {
        let m = server.next_input().await;
        if matches!(m, ClientMessage::Key { .. } | ClientMessage::Drag { .. }) {
            released.push(m.seq());
        }
    }
    assert_eq!(released, vec![Some(300), Some(301)]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tap = server.tap.as_mut().expect("tap");
    while let Ok(m) = tap.try_recv() {
        assert_ne!(
            m.seq(),
            Some(302),
            "a release of nothing held went past the rate"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let tap = server.tap.as_mut().expect("tap");
    while tap.try_recv().is_ok() {}
    // Later, within the rate, input flows again.
    let msg = r#"{"type":"move","x":0.5,"y":0.5,"seq":100}"#;
    ws.send(Message::text(msg)).await.expect("send");
    match server.next_input().await {
        ClientMessage::Move { seq, .. } => assert_eq!(seq, Some(100)),
        other => panic!("expected a move, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start(secured()).await;
    let bearer = format!("Bearer {CONTROL}");
    let auth = [("Authorization", bearer.as_str())];
    // Pages: default-src 'self' plus what the wasm client needs, and nothing inline
    // but trunk's one loader script (by hash). Everything else: default-src 'none'.
    for (path, headers, want, page) in [
        ("/", &auth[..], 200, true),
        ("/mjpeg", &auth[..], 200, true),
        ("/mjpeg.css", &auth[..], 200, false),
        ("/healthz", &[][..], 200, false),
        ("/snapshot.jpg", &auth[..], 200, false),
        ("/", &[][..], 401, false),
        ("/nope", &auth[..], 404, false),
    ] {
        let (head, _) = get(server.addr, path, headers).await;
        assert_eq!(head.status, want, "{path}");
        let csp = head.header("content-security-policy").expect("CSP");
        let parts: &[&str] = if page {
            &[
                "default-src 'self'",
                "frame-ancestors 'none'",
                "script-src 'self' 'wasm-unsafe-eval'",
                "object-src 'none'",
            ]
        } else {
            &["default-src 'none'", "frame-ancestors 'none'"]
        };
        for part in parts {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(
            head.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            head.header("referrer-policy").as_deref(),
            Some("no-referrer")
        );
    }
    for path in ["/video_feed", "/snapshot.jpg"] {
        let (head, _) = get(server.addr, path, &auth).await;
        assert_eq!(
            head.header("cache-control").as_deref(),
            Some("no-store"),
            "{path}"
        );
    }
    // Another site's page may not embed the stream (fetch metadata), but may link here.
    let embed = [
        ("Authorization", bearer.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Dest", "image"),
    ];
    assert_eq!(status(server.addr, "/snapshot.jpg", &embed).await, 403);
    let link = [
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "document"),
    ];
    assert_eq!(
        status(server.addr, &format!("/?token={CONTROL}"), &link).await,
        200
    );
    server.shutdown().await;
}

/// Starts the binary; returns its child and its first stdout line that has `needle`.
async fn start_binary(args: &[&str], needle: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .args(args)
        .env_remove("DESKCAST_TOKEN")
        .env_remove("DESKCAST_VIEW_TOKEN")
        .env_remove("DESKCAST_BIND")
        .env_remove("DESKCAST_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start deskcast");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("deskcast exited without printing {needle:?}");
    })
    .await
    .expect("the ready line within 20 s");
    (child, line)
}

fn token_in(line: &str) -> String {
    line.split("token=")
        .nth(1)
        .expect("a token")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_all_without_auth_exits_non_zero_and_with_auth_starts() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .args([
            "--source",
            "pattern",
            "--port",
            "0",
            "--bind",
            "0.0.0.0",
            "--no-auth",
        ])
        .env_remove("DESKCAST_TOKEN")
        .env_remove("DESKCAST_VIEW_TOKEN")
        .output()
        .await
        .expect("run deskcast");
    assert!(!out.status.success(), "must refuse");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-auth"), "says why: {err}");
    let args = ["--source", "pattern", "--port", "0", "--bind", "0.0.0.0"];
    let (mut child, line) = start_binary(&args, "?token=").await;
    assert_eq!(token_in(&line).len(), 32);
    child.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_print_different_tokens() {
    let args = ["--source", "pattern", "--port", "0"];
    let (mut a, line_a) = start_binary(&args, "Control: ").await;
    let (mut b, line_b) = start_binary(&args, "Control: ").await;
    a.kill().await.expect("kill");
    b.kill().await.expect("kill");
    let (ta, tb) = (token_in(&line_a), token_in(&line_b));
    assert_eq!(ta.len(), 32, "{line_a}");
    assert!(ta.chars().all(|c| c.is_ascii_hexdigit()), "{line_a}");
    assert_ne!(ta, tb);
    assert!(
        line_a.starts_with("deskcast is streaming. Control: http://127.0.0.1:"),
        "{line_a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_self_signed_serves_https_with_a_secure_cookie() {
    let server = TlsServer::start(secured()).await;
    let health = server.get("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let page = server.get(&format!("/?token={CONTROL}")).await;
    let cookie = page
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("__Host-deskcast_session_"), "{cookie}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = tokio::time::timeout(
        Duration::from_secs(15),
        http_get_or_nothing(server.addr, "/healthz"),
    )
    .await
    .expect("the server hangs up");
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
    server.shutdown().await;
}

async fn http_get_or_nothing(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_are_closed_soon_authenticated_ones_stay() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = secured();
    config.unauthenticated_timeout = Duration::from_millis(500);
    let server = TestServer::start(config).await;
    let closed_within = |mut s: tokio::net::TcpStream, limit: Duration| async move {
        let mut buf = [0u8; 4096];
        tokio::time::timeout(limit, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    };
    // Silent: connects and says nothing.
    let silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    // Keeps the connection after a 401.
    let mut refused = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    refused.write_all(req.as_bytes()).await.expect("send");
    let (ws_ok, _) = ws_control(&server).await;
    let mut ws = ws_ok;
    let (silent_closed, refused_closed) = tokio::join!(
        closed_within(silent, Duration::from_secs(5)),
        closed_within(refused, Duration::from_secs(5))
    );
    assert!(silent_closed, "a silent connection is hung up on");
    assert!(
        refused_closed,
        "a connection that only got 401 is hung up on"
    );
    // The authenticated socket outlived the deadline and still streams.
    for _ in 0..3 {
        next_frame(&mut ws).await;
    }
    server.shutdown().await;
}
