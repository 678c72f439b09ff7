//! A session that follows the user (issue 13), on real X servers: control handoff,
//! and a screen resized with RandR (TigerVNC's Xvnc: Xvfb cannot resize).

mod common;

use std::time::Duration;

use common::xclient::{TestWindow, XEvent};
use common::*;
use deskcast_shared::{FrameHeader, Role, ServerMessage};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

/// DISPLAY is process-wide: one test at a time in this binary.
static DISPLAY_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn send(ws: &mut Ws, json: &str) {
    ws.send(Message::text(json)).await.expect("send");
}

fn role_is(role: Role) -> impl Fn(&ServerMessage) -> bool {
    move |m| matches!(m, ServerMessage::Role { role: r } if *r == role)
}

fn ids(hello: &ServerMessage) -> (u64, Role) {
    match hello {
        ServerMessage::Hello { id, role, .. } => (*id, *role),
        other => panic!("expected hello, got {other:?}"),
    }
}

fn shift_up(e: &XEvent) -> bool {
    matches!(
        e,
        XEvent::Key {
            keysym: 0xffe1,
            down: false
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_granted_by_the_controller_swaps_roles_and_releases_its_shift() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(640, 480);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let server = TestServer::start(screen_config()).await;
    let (mut a, hello_a) = ws_connect(&server).await;
    let (mut b, hello_b) = ws_connect(&server).await;
    let (id_a, role_a) = ids(&hello_a);
    let (id_b, role_b) = ids(&hello_b);
    assert_eq!((role_a, role_b), (Role::Control, Role::View));
    assert!(matches!(
        hello_b,
        ServerMessage::Hello {
            may_control: true,
            ..
        }
    ));
    // Everyone hears who controls.
    let told = text_matching(&mut b, Duration::from_secs(2), |m| {
        matches!(m, ServerMessage::Controller { .. })
    })
    .await;
    assert_eq!(told, Some(ServerMessage::Controller { id: Some(id_a) }));
    // A holds Shift; B asks; A is asked.
    send(&mut a, r#"{"type":"key","code":"ShiftLeft","down":true}"#).await;
    window.wait_for(Duration::from_secs(5), |e| {
        e.iter().any(|e| {
            matches!(
                e,
                XEvent::Key {
                    keysym: 0xffe1,
                    down: true
                }
            )
        })
    });
    send(&mut b, r#"{"type":"request_control"}"#).await;
    let asked = text_matching(&mut a, Duration::from_secs(3), |m| {
        matches!(m, ServerMessage::ControlRequested { .. })
    })
    .await;
    assert!(
        matches!(asked, Some(ServerMessage::ControlRequested { by, .. }) if by == id_b),
        "{asked:?}"
    );
    // A grants: the roles swap, and A's Shift is let go of on X.
    window.clear();
    send(&mut a, r#"{"type":"release_control"}"#).await;
    assert!(
        text_matching(&mut b, Duration::from_secs(3), role_is(Role::Control))
            .await
            .is_some()
    );
    assert!(
        text_matching(&mut a, Duration::from_secs(3), role_is(Role::View))
            .await
            .is_some()
    );
    let ev = window.wait_for(Duration::from_secs(3), |e| e.iter().any(shift_up));
    assert!(
        ev.iter().any(shift_up),
        "A's Shift released at the handover: {ev:?}"
    );
    // A's input is refused now; B's lands.
    send(&mut a, r#"{"type":"click","x":0.5,"y":0.5}"#).await;
    expect_error(&mut a, deskcast_shared::ErrorCode::ViewOnly).await;
    window.clear();
    send(&mut b, r#"{"type":"click","x":0.5,"y":0.5}"#).await;
    let ev = window.wait_for(Duration::from_secs(3), |e| {
        e.iter().any(|e| matches!(e, XEvent::Press { .. }))
    });
    assert!(
        ev.iter().any(|e| matches!(e, XEvent::Press { .. })),
        "{ev:?}"
    );
    drop(x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_controller_loses_control_to_a_request_without_answering() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(320, 240);
    std::env::set_var("DISPLAY", &x.display);
    let mut config = screen_config();
    config.handoff_idle = Duration::from_secs(1);
    let server = TestServer::start(config).await;
    let (mut a, _) = ws_connect(&server).await;
    let (mut b, _) = ws_connect(&server).await;
    // A moves, then says nothing more.
    send(&mut a, r#"{"type":"move","x":0.2,"y":0.2}"#).await;
    send(&mut b, r#"{"type":"request_control"}"#).await;
    let asked = text_matching(&mut a, Duration::from_secs(2), |m| {
        matches!(m, ServerMessage::ControlRequested { .. })
    })
    .await;
    assert!(asked.is_some(), "A was asked first");
    assert!(
        text_matching(&mut b, Duration::from_secs(4), role_is(Role::Control))
            .await
            .is_some(),
        "B gets control once A stayed idle"
    );
    assert!(
        text_matching(&mut a, Duration::from_secs(2), role_is(Role::View))
            .await
            .is_some()
    );
    drop(x);
}

/// The rectangles of the next frame whose screen size is `size`, within `limit`.
async fn frame_of_size(ws: &mut Ws, size: (u32, u32), limit: Duration) -> Option<Vec<FrameHeader>> {
    tokio::time::timeout(limit, async {
        let mut rects = Vec::new();
        loop {
            let msg = next_frame(ws).await;
            let (h, _) = FrameHeader::decode(&msg).expect("a frame header");
            if (h.screen_width, h.screen_height) != size {
                rects.clear();
                continue;
            }
            rects.push(h);
            if h.is_last() {
                return rects;
            }
        }
    })
    .await
    .ok()
}

/// Clicks the middle of the image and returns where the X server saw the press.
async fn click_middle(ws: &mut Ws, window: &TestWindow) -> Option<(i16, i16)> {
    window.clear();
    send(ws, r#"{"type":"click","x":0.5,"y":0.5}"#).await;
    let ev = window.wait_for(Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, XEvent::Press { .. }))
    });
    ev.iter().find_map(|e| match e {
        XEvent::Press { x, y, .. } => Some((*x, *y)),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_randr_resize_is_followed_by_viewers_frames_snapshots_and_input() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvnc") || !have("xrandr") {
        return;
    }
    let x = Xvfb::start_xvnc(1920, 1080);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let server = TestServer::start(screen_config()).await;
    let (mut ws, hello) = ws_connect(&server).await;
    assert!(
        matches!(
            hello,
            ServerMessage::Hello {
                width: 1920,
                height: 1080,
                ..
            }
        ),
        "{hello:?}"
    );
    next_frame(&mut ws).await;
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        x.run("xrandr", &["-s", &format!("{w}x{h}")]);
        let t0 = std::time::Instant::now();
        let told = text_matching(&mut ws, Duration::from_secs(2), |m| {
            matches!(m, ServerMessage::Resize { .. })
        })
        .await;
        assert_eq!(
            told,
            Some(ServerMessage::Resize {
                width: w,
                height: h
            }),
            "viewers hear the new size within 2 s"
        );
        eprintln!("{w}x{h} told after {:?}", t0.elapsed());
        let full = frame_of_size(&mut ws, (w, h), Duration::from_secs(2))
            .await
            .expect("frames of the new size");
        assert!(
            full.iter().all(FrameHeader::is_key),
            "a full frame first: {full:?}"
        );
        let covered: u64 = full
            .iter()
            .map(|r| u64::from(r.width) * u64::from(r.height))
            .sum();
        assert_eq!(
            covered,
            u64::from(w) * u64::from(h),
            "the whole new screen: {full:?}"
        );
        let (_, _, jpeg) = http_get(server.addr, "/snapshot.jpg", &[]).await;
        let (sw, sh, _) = decode_rgb(&jpeg);
        assert_eq!((sw as u32, sh as u32), (w, h), "whole frames follow too");
        let at = click_middle(&mut ws, &window).await.expect("a press on X");
        let want = ((w / 2) as i16, (h / 2) as i16);
        assert!(
            (at.0 - want.0).abs() <= 1 && (at.1 - want.1).abs() <= 1,
            "(0.5, 0.5) lands at {at:?}, want {want:?}"
        );
    }
}

fn clipboard_text(m: &ServerMessage) -> Option<&str> {
    match m {
        ServerMessage::Clipboard { text } => Some(text),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_goes_both_ways_for_the_controller_only_and_has_a_limit() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvfb") || !have("xclip") {
        return;
    }
    let x = Xvfb::start(320, 240);
    std::env::set_var("DISPLAY", &x.display);
    let server = TestServer::start(screen_config()).await;
    let (mut control, _) = ws_connect(&server).await;
    let (mut view, _) = ws_connect(&server).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Copied on the desktop: the controller gets it, the viewer does not.
    x.copy("copied on the desktop ✓");
    let got = text_matching(&mut control, Duration::from_secs(3), |m| {
        clipboard_text(m).is_some()
    })
    .await;
    assert_eq!(
        got.as_ref().and_then(clipboard_text),
        Some("copied on the desktop ✓")
    );
    let leaked = text_matching(&mut view, Duration::from_secs(1), |m| {
        clipboard_text(m).is_some()
    })
    .await;
    assert!(
        leaked.is_none(),
        "a view-role viewer gets nothing: {leaked:?}"
    );

    // Pasted in the page, in two pieces: Ctrl+V on the desktop gets the whole text,
    // and it does not come back as a clipboard change.
    send(
        &mut control,
        r#"{"type":"clipboard","text":"pasted from ","more":true}"#,
    )
    .await;
    send(&mut control, r#"{"type":"clipboard","text":"the browser"}"#).await;
    let mut pasted = String::new();
    for _ in 0..50 {
        pasted = x.clipboard();
        if pasted == "pasted from the browser" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pasted, "pasted from the browser");
    let echoed = text_matching(&mut control, Duration::from_secs(1), |m| {
        clipboard_text(m).is_some()
    })
    .await;
    assert!(echoed.is_none(), "no echo: {echoed:?}");

    // 2 MiB is refused with an error; the desktop keeps what it had.
    let piece = "x".repeat(3000);
    let json = format!(r#"{{"type":"clipboard","text":"{piece}","more":true}}"#);
    for _ in 0..(2 * 1024 * 1024 / 3000) {
        control
            .send(Message::text(json.clone()))
            .await
            .expect("send");
    }
    send(&mut control, r#"{"type":"clipboard","text":"end"}"#).await;
    expect_error(&mut control, deskcast_shared::ErrorCode::TooLarge).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(x.clipboard(), "pasted from the browser");
    // The viewer may not set it.
    send(&mut view, r#"{"type":"clipboard","text":"not mine"}"#).await;
    expect_error(&mut view, deskcast_shared::ErrorCode::ViewOnly).await;
    assert_eq!(x.clipboard(), "pasted from the browser");
}

/// The `--list-monitors` lines of `display`: (index, name, geometry).
fn list_monitors(display: &str) -> Vec<(u32, String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .arg("--list-monitors")
        .env("DISPLAY", display)
        .output()
        .expect("run deskcast --list-monitors");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (index, rest) = l.split_once(": ")?;
            let mut words = rest.split_whitespace();
            Some((
                index.parse().ok()?,
                words.next()?.to_string(),
                words.next()?.to_string(),
            ))
        })
        .collect()
}

/// Whether every probed pixel of the snapshot is close to `rgb`.
async fn snapshot_is(server: &TestServer, rgb: [u8; 3]) -> bool {
    let (status, _, jpeg) = http_get(server.addr, "/snapshot.jpg", &[]).await;
    if status != 200 {
        return false;
    }
    let (w, h, px) = decode_rgb(&jpeg);
    [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9), (0.1, 0.9), (0.9, 0.1)]
        .iter()
        .all(|(fx, fy)| {
            let (x, y) = ((w as f64 * fx) as usize, (h as f64 * fy) as usize);
            let i = (y * w + x) * 3;
            px[i..i + 3]
                .iter()
                .zip(rgb)
                .all(|(a, b)| a.abs_diff(b) <= 24)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_are_listed_streamed_alone_and_switched_at_runtime() {
    use deskcast_server::capture::monitors::MonitorChoice;
    use deskcast_server::config::SourceSpec;
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvnc") || !have("xrandr") {
        return;
    }
    const RED: [u8; 3] = [0xcc, 0x33, 0x33];
    const GREEN: [u8; 3] = [0x33, 0xcc, 0x33];
    let x = Xvfb::start_xvnc(1920, 1080);
    std::env::set_var("DISPLAY", &x.display);
    x.run(
        "xrandr",
        &["--setmonitor", "left", "960/254x1080/286+0+0", "none"],
    );
    x.run(
        "xrandr",
        &["--setmonitor", "right", "960/254x1080/286+960+0", "none"],
    );
    let left_window = TestWindow::open_rect(&x.display, 0xcc3333, false, Some((0, 0, 960, 1080)));
    let _right_window =
        TestWindow::open_rect(&x.display, 0x33cc33, false, Some((960, 0, 960, 1080)));
    let monitors = list_monitors(&x.display);
    let find = |name: &str| {
        monitors
            .iter()
            .find(|(_, n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {monitors:?}"))
            .clone()
    };
    let (left, _, left_at) = find("left");
    let (right, _, right_at) = find("right");
    assert_eq!(left_at, "960x1080+0+0");
    assert_eq!(right_at, "960x1080+960+0");

    // Streaming the right monitor shows only its colour.
    let mut config = screen_config();
    config.source = SourceSpec::Screen {
        monitor: MonitorChoice::Index(right as usize),
    };
    let server = TestServer::start(config).await;
    let (mut ws, hello) = ws_connect(&server).await;
    assert!(
        matches!(
            hello,
            ServerMessage::Hello {
                width: 960,
                height: 1080,
                ..
            }
        ),
        "{hello:?}"
    );
    let listed = text_matching(&mut ws, Duration::from_secs(2), |m| {
        matches!(m, ServerMessage::Monitors { .. })
    })
    .await;
    assert!(
        matches!(&listed, Some(ServerMessage::Monitors { monitors, current }) if monitors.len() >= 2 && *current == Some(right)),
        "{listed:?}"
    );
    assert!(snapshot_is(&server, GREEN).await, "only the right monitor");

    // The controller switches to the left one: the stream and input follow.
    send(&mut ws, &format!(r#"{{"type":"monitor","index":{left}}}"#)).await;
    let switched = text_matching(
        &mut ws,
        Duration::from_secs(3),
        |m| matches!(m, ServerMessage::Monitors { current, .. } if *current == Some(left)),
    )
    .await;
    assert!(switched.is_some(), "viewers hear of the switch");
    let mut red = false;
    for _ in 0..40 {
        if snapshot_is(&server, RED).await {
            red = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(red, "the left monitor is streamed now");
    let at = click_middle(&mut ws, &left_window)
        .await
        .expect("a press on the left monitor");
    assert!(
        (at.0 - 480).abs() <= 1 && (at.1 - 540).abs() <= 1,
        "(0.5, 0.5) of the left monitor lands at {at:?}"
    );
    // A monitor that does not exist is refused.
    send(&mut ws, r#"{"type":"monitor","index":99}"#).await;
    expect_error(&mut ws, deskcast_shared::ErrorCode::OutOfRange).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_control_up_sticks_until_asked_for_again() {
    let server = TestServer::start(deskcast_server::Config::pattern(64, 64)).await;
    let (mut a, hello) = ws_connect(&server).await;
    assert_eq!(ids(&hello).1, Role::Control);
    send(&mut a, r#"{"type":"release_control"}"#).await;
    assert!(
        text_matching(&mut a, Duration::from_secs(2), role_is(Role::View))
            .await
            .is_some(),
        "given up"
    );
    let retaken = text_matching(&mut a, Duration::from_secs(1), role_is(Role::Control)).await;
    assert!(retaken.is_none(), "the seat is not taken straight back");
    send(&mut a, r#"{"type":"request_control"}"#).await;
    assert!(
        text_matching(&mut a, Duration::from_secs(2), role_is(Role::Control))
            .await
            .is_some(),
        "asked for again: granted (nobody else controls)"
    );
    server.shutdown().await;
}
