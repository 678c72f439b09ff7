//! Remote control end to end on a real X server: WebSocket input → enigo → Xvfb, checked
//! by a real X client that logs what the server delivered.

mod common;

use std::time::Duration;

use common::xclient::{TestWindow, XEvent};
use common::*;
use deskcast_shared::{ErrorCode, Role, ServerMessage};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

/// DISPLAY is process-wide: one test at a time in this binary.
static DISPLAY_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const W: u32 = 1280;
const H: u32 = 720;
const WAIT: Duration = Duration::from_secs(5);

struct Desk {
    _x: Xvfb,
    window: TestWindow,
    server: TestServer,
}

async fn desk() -> Option<Desk> {
    desk_with(false).await
}

async fn desk_with(toggle_on_click: bool) -> Option<Desk> {
    if !have("Xvfb") {
        return None;
    }
    let x = Xvfb::start(W, H);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, toggle_on_click);
    let server = TestServer::start(screen_config()).await;
    Some(Desk {
        _x: x,
        window,
        server,
    })
}

async fn send(ws: &mut Ws, json: &str) {
    ws.send(Message::text(json)).await.expect("send");
}

fn near(a: i16, b: i16) -> bool {
    (a - b).abs() <= 1
}

fn presses(ev: &[XEvent], button: u8) -> Vec<(i16, i16)> {
    ev.iter()
        .filter_map(|e| match e {
            XEvent::Press {
                button: b, x, y, ..
            } if *b == button => Some((*x, *y)),
            _ => None,
        })
        .collect()
}

fn releases(ev: &[XEvent], button: u8) -> usize {
    ev.iter()
        .filter(|e| matches!(e, XEvent::Release { button: b, .. } if *b == button))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_double_click_and_right_click_land_on_the_right_pixel() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, hello) = ws_connect(&d.server).await;
    assert!(
        matches!(
            hello,
            ServerMessage::Hello {
                role: Role::Control,
                input: true,
                width: W,
                height: H,
                ..
            }
        ),
        "{hello:?}"
    );

    send(
        &mut ws,
        r#"{"type":"click","x":0.25,"y":0.5,"button":"left"}"#,
    )
    .await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 1);
    let p = presses(&ev, 1);
    assert_eq!(p.len(), 1, "one press: {ev:?}");
    assert!(
        near(p[0].0, 320) && near(p[0].1, 360),
        "click at {:?}, want (320, 360)",
        p[0]
    );
    assert_eq!(releases(&ev, 1), 1);

    d.window.clear();
    send(&mut ws, r#"{"type":"double_click","x":0.75,"y":0.25}"#).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 2);
    let p = presses(&ev, 1);
    assert_eq!(
        (p.len(), releases(&ev, 1)),
        (2, 2),
        "two press/release pairs: {ev:?}"
    );
    for (x, y) in p {
        assert!(
            near(x, 960) && near(y, 180),
            "double click at ({x}, {y}), want (960, 180)"
        );
    }

    d.window.clear();
    send(
        &mut ws,
        r#"{"type":"click","x":0.5,"y":0.5,"button":"right"}"#,
    )
    .await;
    send(
        &mut ws,
        r#"{"type":"click","x":0.5,"y":0.5,"button":"middle"}"#,
    )
    .await;
    let ev = d
        .window
        .wait_for(WAIT, |e| releases(e, 3) >= 1 && releases(e, 2) >= 1);
    assert_eq!(
        presses(&ev, 3),
        vec![(640, 360)],
        "right button is X button 3: {ev:?}"
    );
    assert_eq!(
        presses(&ev, 2),
        vec![(640, 360)],
        "middle button is X button 2: {ev:?}"
    );
    assert!(presses(&ev, 1).is_empty(), "no left press: {ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drag_is_press_motion_release() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    send(
        &mut ws,
        r#"{"type":"drag","phase":"start","x":0.1,"y":0.1,"button":"left"}"#,
    )
    .await;
    send(&mut ws, r#"{"type":"drag","phase":"move","x":0.2,"y":0.3}"#).await;
    send(
        &mut ws,
        r#"{"type":"drag","phase":"move","x":0.25,"y":0.35}"#,
    )
    .await;
    send(&mut ws, r#"{"type":"drag","phase":"end","x":0.3,"y":0.4}"#).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 1);
    let press = ev
        .iter()
        .position(|e| matches!(e, XEvent::Press { button: 1, .. }))
        .expect("press");
    let release = ev
        .iter()
        .position(|e| matches!(e, XEvent::Release { button: 1, .. }))
        .expect("release");
    let motion: Vec<_> = ev[press..release]
        .iter()
        .filter_map(|e| {
            if let XEvent::Motion { x, y } = e {
                Some((*x, *y))
            } else {
                None
            }
        })
        .collect();
    assert!(press < release, "{ev:?}");
    assert!(
        matches!(ev[press], XEvent::Press { x, y, .. } if near(x, 128) && near(y, 72)),
        "{ev:?}"
    );
    assert!(
        motion.iter().any(|(x, y)| near(*x, 256) && near(*y, 216)),
        "motion through (256, 216): {motion:?}"
    );
    assert!(
        matches!(ev[release], XEvent::Release { x, y, .. } if near(x, 384) && near(y, 288)),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_mid_drag_releases_the_button() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    send(
        &mut ws,
        r#"{"type":"drag","phase":"start","x":0.5,"y":0.5}"#,
    )
    .await;
    send(&mut ws, r#"{"type":"key","code":"ShiftLeft","down":true}"#).await;
    let ev = d.window.wait_for(WAIT, |e| !presses(e, 1).is_empty());
    assert_eq!(presses(&ev, 1).len(), 1, "{ev:?}");
    drop(ws); // the socket goes away mid-drag, with Shift held
    let ev = d.window.wait_for(WAIT, |e| {
        releases(e, 1) >= 1
            && e.iter().any(|k| {
                matches!(
                    k,
                    XEvent::Key {
                        keysym: 0xffe1,
                        down: false
                    }
                )
            })
    });
    assert_eq!(
        releases(&ev, 1),
        1,
        "button released after disconnect: {ev:?}"
    );
    assert!(
        ev.iter().any(|k| matches!(
            k,
            XEvent::Key {
                keysym: 0xffe1,
                down: false
            }
        )),
        "Shift released: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wheel_keys_and_text_reach_the_x_server() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    send(&mut ws, r#"{"type":"move","x":0.5,"y":0.5}"#).await;
    send(&mut ws, r#"{"type":"wheel","dx":0,"dy":2}"#).await;
    send(&mut ws, r#"{"type":"wheel","dx":0,"dy":-1}"#).await;
    let ev = d
        .window
        .wait_for(WAIT, |e| releases(e, 5) >= 2 && releases(e, 4) >= 1);
    assert_eq!(
        presses(&ev, 5).len(),
        2,
        "two steps down = X button 5 twice: {ev:?}"
    );
    assert_eq!(presses(&ev, 4).len(), 1, "one step up = X button 4: {ev:?}");

    d.window.clear();
    send(&mut ws, r#"{"type":"text","text":"hi"}"#).await;
    send(&mut ws, r#"{"type":"key","code":"Enter","down":true}"#).await;
    send(&mut ws, r#"{"type":"key","code":"Enter","down":false}"#).await;
    let ev = d.window.wait_for(WAIT, |e| {
        e.iter().any(|k| {
            matches!(
                k,
                XEvent::Key {
                    keysym: 0xff0d,
                    down: false
                }
            )
        })
    });
    let typed: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            XEvent::Key { keysym, down: true } => Some(*keysym),
            _ => None,
        })
        .collect();
    assert_eq!(
        typed,
        vec![u32::from(b'h'), u32::from(b'i'), 0xff0d],
        "h, i, Return: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_at_a_time_and_control_passes_on() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (first, hello1) = ws_connect(&d.server).await;
    let (mut second, hello2) = ws_connect(&d.server).await;
    assert!(
        matches!(
            hello1,
            ServerMessage::Hello {
                role: Role::Control,
                ..
            }
        ),
        "{hello1:?}"
    );
    assert!(
        matches!(
            hello2,
            ServerMessage::Hello {
                role: Role::View,
                ..
            }
        ),
        "{hello2:?}"
    );

    send(&mut second, r#"{"type":"click","x":0.5,"y":0.5}"#).await;
    let reply = next_text(&mut second).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::ViewOnly,
                ..
            }
        ),
        "{reply:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        presses(&d.window.events(), 1).is_empty(),
        "view input must not reach the desktop"
    );

    drop(first);
    let msg = next_text(&mut second).await;
    assert_eq!(
        msg,
        ServerMessage::Role {
            role: Role::Control
        },
        "the viewer is told it has control"
    );
    send(&mut second, r#"{"type":"click","x":0.5,"y":0.5}"#).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 1);
    assert_eq!(presses(&ev, 1), vec![(640, 360)], "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_headers_report_the_last_applied_input() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk_with(true).await else {
        return;
    };
    let (mut ws, _) = ws_connect(&d.server).await;
    let first = next_frame(&mut ws).await;
    assert_eq!(
        deskcast_shared::FrameHeader::decode(&first)
            .expect("header")
            .0
            .input_seq,
        0
    );
    // The click toggles the window's colour, so a new frame follows it.
    send(&mut ws, r#"{"type":"click","x":0.5,"y":0.5,"seq":41}"#).await;
    let mut seen = Vec::new();
    for _ in 0..30 {
        let frame = next_frame(&mut ws).await;
        let seq = deskcast_shared::FrameHeader::decode(&frame)
            .expect("header")
            .0
            .input_seq;
        seen.push(seq);
        if seq == 41 {
            break;
        }
    }
    assert_eq!(
        seen.last(),
        Some(&41),
        "input_seq in frame headers: {seen:?}"
    );
    assert_eq!(d.window.color(), 0xcc3300, "the click toggled the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_screen_keeps_mjpeg_alive_and_a_gone_viewer_is_noticed() {
    use std::sync::atomic::Ordering;
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let mut mjpeg = mjpeg_connect(&d.server).await;
    // The screen does not change, yet a second part arrives: the keepalive repeat.
    read_mjpeg_parts(&mut mjpeg, 2, Duration::from_secs(5)).await;
    assert!(d.server.stats.running.load(Ordering::SeqCst));
    drop(mjpeg);
    let stats = d.server.stats.clone();
    assert!(
        wait_until(Duration::from_secs(10), || !stats
            .running
            .load(Ordering::SeqCst))
        .await,
        "the pipeline stops once the gone MJPEG viewer is noticed"
    );
}

/// Press times (X server milliseconds) of `button`, in order.
fn press_times(ev: &[XEvent], button: u8) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| match e {
            XEvent::Press {
                button: b, time, ..
            } if *b == button => Some(*time),
            _ => None,
        })
        .collect()
}

/// How many clicks an X client with this double-click time (GTK's and Qt's 400 ms)
/// counts for the last press: 1 single, 2 double, 3 triple.
fn counted_clicks(times: &[u32], double_click_ms: u32) -> usize {
    let mut n = 0;
    for (i, t) in times.iter().enumerate() {
        n = if i > 0 && t.wrapping_sub(times[i - 1]) <= double_click_ms {
            n + 1
        } else {
            1
        };
    }
    n
}

fn button(down: bool, clicks: u8) -> String {
    format!(
        r#"{{"type":"button","x":0.5,"y":0.5,"button":"left","down":{down},"clicks":{clicks}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_held_until_its_release_and_modifiers_stay_in_order() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    send(&mut ws, &button(true, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| !presses(e, 1).is_empty());
    assert_eq!(presses(&ev, 1), vec![(640, 360)], "pressed at once: {ev:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(releases(&d.window.events(), 1), 0, "still held");
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) == 1);
    assert_eq!(releases(&ev, 1), 1, "released when told: {ev:?}");

    // Shift+click and Ctrl+click, each modifier let go right after the click, in one
    // burst: every press carries its modifier, none leaks into the next.
    d.window.clear();
    for modifier in ["ShiftLeft", "ControlLeft"] {
        send(
            &mut ws,
            &format!(r#"{{"type":"key","code":"{modifier}","down":true}}"#),
        )
        .await;
        send(&mut ws, &button(true, 1)).await;
        send(&mut ws, &button(false, 1)).await;
        send(
            &mut ws,
            &format!(r#"{{"type":"key","code":"{modifier}","down":false}}"#),
        )
        .await;
    }
    send(&mut ws, &button(true, 1)).await;
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) == 3);
    let states: Vec<u16> = ev
        .iter()
        .filter_map(|e| match e {
            XEvent::Press { state, .. } => Some(state & 0xff),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![1, 4, 0],
        "Shift (1), Control (4), then none: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_the_network_stretched_is_replayed_as_one() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    // A quick double click: exactly two presses, counted as a double click.
    send(&mut ws, &button(true, 1)).await;
    send(&mut ws, &button(false, 1)).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    send(&mut ws, &button(true, 2)).await;
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) == 2);
    let times = press_times(&ev, 1);
    assert_eq!(times.len(), 2, "nothing replayed when on time: {ev:?}");
    assert_eq!(counted_clicks(&times, 400), 2);

    // The same double click with its second click delayed 300 ms more on the way
    // (420 ms apart on arrival): the desktop still counts a double click.
    tokio::time::sleep(Duration::from_millis(800)).await;
    d.window.clear();
    send(&mut ws, &button(true, 1)).await;
    send(&mut ws, &button(false, 1)).await;
    tokio::time::sleep(Duration::from_millis(120 + 300)).await;
    send(&mut ws, &button(true, 2)).await;
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 3);
    let times = press_times(&ev, 1);
    assert!(
        times[1].wrapping_sub(times[0]) > 400,
        "the test stretched the gap past 400 ms: {times:?}"
    );
    assert_eq!(counted_clicks(&times, 400), 2, "a double click: {times:?}");
    // A stretched third click makes it a triple click.
    tokio::time::sleep(Duration::from_millis(450)).await;
    send(&mut ws, &button(true, 3)).await;
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 6);
    let times = press_times(&ev, 1);
    assert_eq!(counted_clicks(&times, 400), 3, "a triple click: {times:?}");
    // A single click later is a single click.
    tokio::time::sleep(Duration::from_millis(600)).await;
    send(&mut ws, &button(true, 1)).await;
    send(&mut ws, &button(false, 1)).await;
    let ev = d.window.wait_for(WAIT, |e| releases(e, 1) >= 7);
    assert_eq!(counted_clicks(&press_times(&ev, 1), 400), 1);
    assert_eq!(press_times(&ev, 1).len(), 7, "{ev:?}");
}

/// How many pixels of a `size`-square box centred on (`cx`, `cy`) of a snapshot are
/// far from the window's colour.
async fn unlike_background(server: &TestServer, (cx, cy): (usize, usize), size: usize) -> usize {
    let (status, _, body) = http_get(server.addr, "/snapshot.jpg", &[]).await;
    assert_eq!(status, 200);
    let (w, _, rgb) = decode_rgb(&body);
    let bg = [0x33u8, 0x66, 0xcc];
    let mut n = 0;
    for y in cy - size / 2..cy + size / 2 {
        for x in cx - size / 2..cx + size / 2 {
            let p = &rgb[(y * w + x) * 3..][..3];
            if p.iter().zip(bg).any(|(a, b)| a.abs_diff(b) > 40) {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_shape_goes_to_viewers_and_is_drawn_into_snapshots() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(d) = desk().await else { return };
    let (mut ws, _) = ws_connect(&d.server).await;
    // The shape comes right after hello: Xvfb's root cursor, the X-shaped one.
    let shape = loop {
        match next_message(&mut ws).await {
            Message::Text(t) => match ServerMessage::parse(t.as_str()).expect("valid") {
                ServerMessage::Cursor {
                    width,
                    height,
                    hot_x,
                    hot_y,
                    rgba,
                    ..
                } => break (width, height, hot_x, hot_y, rgba),
                _ => continue,
            },
            _ => continue,
        }
    };
    let (width, height, hot_x, hot_y, rgba) = shape;
    assert!(
        width > 0 && height > 0 && hot_x < width && hot_y < height,
        "{shape:?}",
        shape = (width, height, hot_x, hot_y)
    );
    let bytes = rgba.len() / 4 * 3 - rgba.matches('=').count();
    assert_eq!(
        bytes,
        usize::from(width) * usize::from(height) * 4,
        "RGBA pixels"
    );

    // A view-only viewer is told where the pointer is; the controller is not.
    let mut view = ws_connect(&d.server).await.0;
    send(&mut ws, r#"{"type":"move","x":0.25,"y":0.5}"#).await;
    let at = tokio::time::timeout(WAIT, async {
        loop {
            if let Message::Text(t) = next_message(&mut view).await {
                if let Ok(ServerMessage::Pointer { x, y }) = ServerMessage::parse(t.as_str()) {
                    if (x - 0.25).abs() < 0.01 {
                        break (x, y);
                    }
                }
            }
        }
    })
    .await
    .expect("the view-only viewer hears where the pointer went");
    assert!((at.1 - 0.5).abs() < 0.01, "{at:?}");

    // The snapshot has the cursor drawn at the pointer, and nothing where it is not.
    let drawn = unlike_background(&d.server, (320, 360), 24).await;
    assert!(
        drawn >= 20,
        "the cursor is drawn at the pointer: {drawn} pixels"
    );
    let elsewhere = unlike_background(&d.server, (960, 360), 24).await;
    assert_eq!(elsewhere, 0, "and nowhere else");
    // It follows the pointer on a still screen.
    send(&mut ws, r#"{"type":"move","x":0.75,"y":0.5}"#).await;
    let moved = wait_until_async(WAIT, || async {
        unlike_background(&d.server, (960, 360), 24).await >= 20
            && unlike_background(&d.server, (320, 360), 24).await == 0
    })
    .await;
    assert!(moved, "the snapshot's cursor followed the pointer");
}

async fn wait_until_async<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cursor_leaves_snapshots_without_it() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(W, H);
    std::env::set_var("DISPLAY", &x.display);
    let _window = TestWindow::open(&x.display, 0x3366cc, false);
    let mut config = screen_config();
    config.draw_cursor = false;
    let server = TestServer::start(config).await;
    let (mut ws, _) = ws_connect(&server).await;
    send(&mut ws, r#"{"type":"move","x":0.25,"y":0.5}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(unlike_background(&server, (320, 360), 24).await, 0);
    server.shutdown().await;
}

/// Threads of this process (the server runs in it).
fn threads() -> u64 {
    proc_status("Threads").unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_flood_on_a_full_queue_adds_no_threads_and_held_keys_still_let_go() {
    let _lock = DISPLAY_LOCK.lock().await;
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(W, H);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, 0x3366cc, false);
    let mut config = screen_config();
    config.max_input_rate = 10_000;
    let server = TestServer::start(config).await;
    let (mut ws, _) = ws_connect(&server).await;
    send(&mut ws, r#"{"type":"key","code":"ShiftLeft","down":true}"#).await;
    window.wait_for(WAIT, |e| {
        e.iter().any(|k| {
            matches!(
                k,
                XEvent::Key {
                    keysym: 0xffe1,
                    down: true
                }
            )
        })
    });
    let before = threads();
    let mut most = before;
    // Button releases of a button not held: each moves the pointer, so the desktop
    // takes them slower than they come and the queue fills.
    for i in 0..2000 {
        ws.feed(Message::text(
            r#"{"type":"button","x":0.5,"y":0.5,"down":false}"#,
        ))
        .await
        .expect("queue");
        if i % 100 == 0 {
            ws.flush().await.expect("send");
            most = most.max(threads());
        }
    }
    ws.flush().await.expect("send");
    for _ in 0..10 {
        most = most.max(threads());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        most <= before + 2,
        "the flood started threads: {before} before, {most} at most"
    );
    // Leaving releases what the connection held, Shift included.
    drop(ws);
    let ev = window.wait_for(WAIT, |e| {
        e.iter().any(|k| {
            matches!(
                k,
                XEvent::Key {
                    keysym: 0xffe1,
                    down: false
                }
            )
        })
    });
    assert!(
        ev.iter().any(|k| matches!(
            k,
            XEvent::Key {
                keysym: 0xffe1,
                down: false
            }
        )),
        "Shift was released when the client left: {:?}",
        &ev[ev.len().saturating_sub(5)..]
    );
    server.shutdown().await;
}
