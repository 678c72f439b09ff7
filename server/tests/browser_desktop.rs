//! The whole way round: a real browser clicks on the streamed desktop, and the X server
//! under it delivers a button press at the matching screen pixel.
//!
//! Chromium (headless) → page → WebSocket → server → enigo → Xvfb → an X client that
//! logs what it received. A binary of its own, because it sets the process-wide
//! DISPLAY that the capture and enigo read; its tests take turns for the same reason.

mod common;

use std::time::Duration;

use common::browser::{down, mouse, move_to, pause, up, Browser};
use common::xclient::{TestWindow, XEvent};
use common::*;
use serde_json::json;

/// The desktop's size (16:9).
const SCREEN: (u32, u32) = (1280, 720);
/// A square browser window, so the desktop is letterboxed above and below.
const WINDOW: (u32, u32) = (900, 900);
const BACKGROUND: u32 = 0x3366cc;

static DISPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A desktop of one colour: Xvfb (made `DISPLAY`) with a logging test window.
fn desktop() -> (Xvfb, TestWindow) {
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, BACKGROUND, false);
    (x, window)
}

/// Chromium showing `server`'s page, once it drew; with where the desktop is drawn.
async fn open_page(
    server: &TestServer,
) -> (Browser, common::browser::Layout, common::browser::Letterbox) {
    let browser = Browser::start(WINDOW.0, WINDOW.1).await;
    browser.goto(&server.url("/")).await;
    let layout = browser.wait_until_drawn(Duration::from_secs(20)).await;
    let image = layout.letterbox(SCREEN.0, SCREEN.1);
    (browser, layout, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_click_presses_the_button_at_the_matching_screen_pixel() {
    // Every tool checked (no short-circuit), so a skip names all that are missing.
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (x, window) = desktop();
    let server = TestServer::start(screen_config()).await;

    let (browser, layout, image) = open_page(&server).await;
    assert!(
        image.y >= 50.0,
        "the desktop must be letterboxed top and bottom: {layout:?} {image:?}"
    );
    // The page shows the desktop: the window's colour in the middle of the image.
    let [r, g, b] = browser.pixels(&[image.at(0.5, 0.5)]).await[0];
    let want = BACKGROUND.to_be_bytes();
    assert!(
        r.abs_diff(want[1]) <= 16 && g.abs_diff(want[2]) <= 16 && b.abs_diff(want[3]) <= 16,
        "the canvas shows ({r}, {g}, {b}), want the desktop's #{BACKGROUND:06x}"
    );

    // Click at a quarter across, half down the image: screen pixel (320, 360).
    let (cx, cy) = layout.css(image.at(0.25, 0.5));
    browser.click((cx.round(), cy.round()), 0).await;
    let pressed = |ev: &[XEvent]| {
        ev.iter().find_map(|e| match *e {
            XEvent::Press {
                button: 1, x, y, ..
            } => Some((x, y)),
            _ => None,
        })
    };
    let released = |ev: &[XEvent]| {
        ev.iter()
            .any(|e| matches!(*e, XEvent::Release { button: 1, .. }))
    };
    let events = window.wait_for(Duration::from_secs(10), |ev| {
        pressed(ev).is_some() && released(ev)
    });
    let Some((px, py)) = pressed(&events) else {
        panic!(
            "no button 1 press reached the X server; it saw {events:?}; page console:\n{}",
            browser.console().await
        );
    };
    let want = (
        (0.25 * f64::from(SCREEN.0)) as i16,
        (0.5 * f64::from(SCREEN.1)) as i16,
    );
    assert!(
        (px - want.0).abs() <= 1 && (py - want.1).abs() <= 1,
        "button 1 pressed at ({px}, {py}), want {want:?} ±1"
    );
    assert!(
        released(&events),
        "the button was released again: {events:?}"
    );

    browser.close().await;
    server.shutdown().await;
    drop(window);
    drop(x);
}

/// Canvas points to compare with the screen: a grid, skipping points near an edge in
/// the screen's picture (the page scales the image, which blurs edges).
fn flat_points(screen: &[u8], width: usize, height: usize) -> Vec<(usize, usize)> {
    let at = |x: usize, y: usize| &screen[(y * width + x) * 3..][..3];
    let mut out = Vec::new();
    for y in (6..height - 6).step_by(12) {
        for x in (6..width - 6).step_by(12) {
            let c = at(x, y);
            let flat = (y - 5..=y + 5).all(|yy| (x - 5..=x + 5).all(|xx| at(xx, yy) == c));
            if flat {
                out.push((x, y));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_windows_move_about_the_canvas_is_the_screen() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    std::env::set_var("DISPLAY", &x.display);
    let scene = common::xscene::Scene::open(&x.display, 0x305070);
    let windows = [
        scene.window(50, 50, 300, 200, 0xe0c040),
        scene.window(500, 300, 250, 180, 0x40c080),
        scene.window(900, 100, 200, 400, 0xc04060),
    ];
    let server = TestServer::start(screen_config()).await;
    let (browser, layout, image) = open_page(&server).await;

    // Windows move about, over each other and across tile edges, while the page watches.
    let moves = [
        (0, 413, 77),
        (1, 37, 395),
        (2, 611, 251),
        (0, 820, 430),
        (1, 1000, 13),
    ];
    for (i, x, y) in moves {
        scene.move_to(windows[i], x, y);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    scene.recolor(windows[2], 0x8040c0);

    let screen = scene.rgb();
    let (w, h) = (SCREEN.0 as usize, SCREEN.1 as usize);
    let points = flat_points(&screen, w, h);
    assert!(points.len() > 2000, "enough flat points: {}", points.len());
    let canvas_points: Vec<(f64, f64)> = points
        .iter()
        .map(|&(px, py)| image.at((px as f64 + 0.5) / w as f64, (py as f64 + 0.5) / h as f64))
        .collect();
    // (point, seen, wanted) for each point the canvas gets wrong.
    type Mismatch = ((usize, usize), [u8; 3], [u8; 3]);
    let wrong = |seen: &[[u8; 3]]| -> Vec<Mismatch> {
        points
            .iter()
            .zip(seen)
            .filter_map(|(&(px, py), got)| {
                let want = [
                    screen[(py * w + px) * 3],
                    screen[(py * w + px) * 3 + 1],
                    screen[(py * w + px) * 3 + 2],
                ];
                let off = got.iter().zip(want).any(|(a, b)| a.abs_diff(b) > 20);
                off.then_some(((px, py), *got, want))
            })
            .collect()
    };
    let start = std::time::Instant::now();
    let mut bad = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        bad = wrong(&browser.pixels(&canvas_points).await);
        if bad.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        bad.is_empty(),
        "{} of {} points differ from the screen (stale tiles or seams), first: {:?}; console:\n{}",
        bad.len(),
        points.len(),
        &bad[..bad.len().min(5)],
        browser.console().await
    );
    // The letterbox bars above and below the image stay dark.
    let bars: Vec<(f64, f64)> = [0.1, 0.5, 0.9]
        .iter()
        .flat_map(|&fx| {
            [
                (layout.width * fx, image.y / 2.0),
                (
                    layout.width * fx,
                    image.y + image.height + (layout.height - image.y - image.height) / 2.0,
                ),
            ]
        })
        .collect();
    for px in browser.pixels(&bars).await {
        assert!(px.iter().all(|&c| c < 16), "letterbox bar pixel {px:?}");
    }
    browser.close().await;
    server.shutdown().await;
}

/// X press and release times of button 1, in order.
fn button_times(ev: &[XEvent]) -> (Vec<u32>, Vec<u32>) {
    let mut presses = Vec::new();
    let mut releases = Vec::new();
    for e in ev {
        match *e {
            XEvent::Press {
                button: 1, time, ..
            } => presses.push(time),
            XEvent::Release {
                button: 1, time, ..
            } => releases.push(time),
            _ => {}
        }
    }
    (presses, releases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_press_and_modifier_clicks_reach_x_as_the_user_made_them() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (x, window) = desktop();
    let server = TestServer::start(screen_config()).await;
    let (browser, layout, image) = open_page(&server).await;
    let (cx, cy) = layout.css(image.at(0.5, 0.5));
    let at = (cx.round(), cy.round());

    // A press held for a second: X sees the press when it happened, not at the release.
    browser
        .perform(mouse(vec![
            move_to(at.0, at.1, 0),
            down(0),
            pause(1000),
            up(0),
        ]))
        .await;
    let ev = window.wait_for(Duration::from_secs(10), |e| button_times(e).1.len() == 1);
    let (presses, releases) = button_times(&ev);
    assert!(
        presses.len() == 1 && releases.len() == 1,
        "one press and one release: {ev:?}"
    );
    let held = releases[0].wrapping_sub(presses[0]);
    assert!(
        (900..1500).contains(&held),
        "the X server saw the button held {held} ms (the page held it 1000 ms)"
    );

    // Shift+click and Ctrl+click, the modifier let go 5 ms after the click: the X
    // press carries the modifier. WebDriver plays the two sources tick by tick.
    for (key, mask, name) in [("\u{E008}", 1u16, "Shift"), ("\u{E009}", 4, "Control")] {
        window.clear();
        let actions = json!([
            {
                "type": "key",
                "id": "keyboard",
                "actions": [
                    { "type": "keyDown", "value": key },
                    pause(0),
                    pause(0),
                    pause(5),
                    { "type": "keyUp", "value": key },
                ],
            },
            {
                "type": "pointer",
                "id": "mouse",
                "parameters": { "pointerType": "mouse" },
                "actions": [move_to(at.0, at.1, 0), down(0), up(0), pause(5), pause(0)],
            },
        ]);
        browser.perform(actions).await;
        let ev = window.wait_for(Duration::from_secs(10), |e| !button_times(e).1.is_empty());
        let state = ev.iter().find_map(|e| match *e {
            XEvent::Press {
                button: 1, state, ..
            } => Some(state),
            _ => None,
        });
        assert!(
            state.is_some_and(|s| s & mask != 0),
            "{name}+click: the X press carries {name} (mask {mask}): {ev:?}"
        );
    }
    browser.close().await;
    server.shutdown().await;
    drop(window);
    drop(x);
}

/// The XFixes cursor image's (width, height, xhot, yhot, serial) right now.
fn xfixes_cursor(display: &str) -> (u16, u16, u16, u16, u32) {
    use x11rb::protocol::xfixes::ConnectionExt as _;
    let (conn, _) = x11rb::connect(Some(display)).expect("connect to X");
    conn.xfixes_query_version(4, 0)
        .expect("request")
        .reply()
        .expect("XFixes");
    let c = conn
        .xfixes_get_cursor_image()
        .expect("request")
        .reply()
        .expect("cursor image");
    (c.width, c.height, c.xhot, c.yhot, c.cursor_serial)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_an_xterm_the_page_shows_the_xterm_cursor() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver") & have("xterm")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    std::env::set_var("DISPLAY", &x.display);
    let mut xterm = std::process::Command::new("xterm")
        .args(["-display", &x.display, "-geometry", "220x30+0+0"])
        .spawn()
        .expect("spawn xterm");
    let root = xfixes_cursor(&x.display);
    let server = TestServer::start(screen_config()).await;
    let (browser, layout, image) = open_page(&server).await;
    // Hover over the xterm (top-left of the screen): the remote pointer goes there and
    // X shows xterm's cursor.
    let (hx, hy) = layout.css(image.at(0.1, 0.1));
    let mut over = root;
    let start = std::time::Instant::now();
    while over.4 == root.4 && start.elapsed() < Duration::from_secs(10) {
        browser
            .perform(mouse(vec![
                move_to(hx.round(), hy.round(), 0),
                pause(50),
                move_to(hx.round() + 3.0, hy.round(), 0),
            ]))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        over = xfixes_cursor(&x.display);
    }
    assert_ne!(over.4, root.4, "X shows xterm's cursor over the xterm");
    let (_, _, xhot, yhot, _) = over;
    let want = format!(" {xhot} {yhot}, default");
    let css = browser
        .wait_for(
            Duration::from_secs(10),
            &format!(
                "const c = document.getElementById('screen').style.cursor; \
                 return c.startsWith('url(\"data:image/png') && c.endsWith('{want}') ? c : null;"
            ),
        )
        .await;
    let got = browser
        .execute(
            "return document.getElementById('screen').style.cursor",
            json!([]),
        )
        .await;
    assert!(
        css.is_some(),
        "the canvas's CSS cursor is xterm's image with its hotspot ({xhot}, {yhot}); it is {got}"
    );
    browser.close().await;
    server.shutdown().await;
    let _ = xterm.kill();
    let _ = xterm.wait();
    drop(x);
}

/// One finger's action chain for [`Browser::perform`].
fn finger(id: &str, steps: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "type": "pointer",
        "id": id,
        "parameters": { "pointerType": "touch" },
        "actions": steps,
    })
}

/// Two fingers moving from `a0`/`b0` to `a1`/`b1` in `n` steps, then lifting.
fn two_fingers(
    a0: (f64, f64),
    b0: (f64, f64),
    a1: (f64, f64),
    b1: (f64, f64),
    n: u32,
) -> serde_json::Value {
    let chain = |from: (f64, f64), to: (f64, f64)| {
        let mut steps = vec![move_to(from.0, from.1, 0), down(0)];
        for i in 1..=n {
            let t = f64::from(i) / f64::from(n);
            steps.push(move_to(
                from.0 + t * (to.0 - from.0),
                from.1 + t * (to.1 - from.1),
                30,
            ));
        }
        steps.push(up(0));
        steps
    };
    json!([finger("a", chain(a0, a1)), finger("b", chain(b0, b1))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fingers_scroll_the_desktop_and_a_pinch_zooms_the_page() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (x, window) = desktop();
    let mut server = TestServer::start(screen_config()).await;
    let (browser, layout, image) = open_page(&server).await;
    let (cx, cy) = layout.css(image.at(0.5, 0.5));
    let (cx, cy) = (cx.round(), cy.round());

    // Two fingers dragged up together: wheel steps down (X button 5).
    browser
        .perform(two_fingers(
            (cx - 50.0, cy + 100.0),
            (cx + 50.0, cy + 100.0),
            (cx - 50.0, cy - 100.0),
            (cx + 50.0, cy - 100.0),
            10,
        ))
        .await;
    let ev = window.wait_for(Duration::from_secs(10), |e| {
        e.iter()
            .any(|e| matches!(e, XEvent::Release { button: 5, .. }))
    });
    let down_steps = ev
        .iter()
        .filter(|e| matches!(e, XEvent::Press { button: 5, .. }))
        .count();
    assert!(
        down_steps >= 3,
        "a 200 px two-finger drag scrolls several steps: {ev:?}"
    );
    assert!(
        !ev.iter()
            .any(|e| matches!(e, XEvent::Press { button: 1 | 3, .. })),
        "and clicks nothing: {ev:?}"
    );

    // A pinch from 80 to 320 px apart around the centre: the page zooms 4x there,
    // locally (nothing reaches X), and a tap then lands on the zoomed pixel.
    window.clear();
    browser
        .perform(two_fingers(
            (cx - 40.0, cy),
            (cx + 40.0, cy),
            (cx - 160.0, cy),
            (cx + 160.0, cy),
            12,
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !window
            .events()
            .iter()
            .any(|e| matches!(e, XEvent::Press { .. })),
        "a pinch sends no input: {:?}",
        window.events()
    );
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), async {
        Ok::<_, ()>(server.next_input().await)
    })
    .await
    {}
    let tap = (cx + 100.0, cy);
    browser
        .perform(json!([finger(
            "a",
            vec![move_to(tap.0, tap.1, 0), down(0), pause(50), up(0)]
        )]))
        .await;
    let press = loop {
        match server.next_input().await {
            deskcast_shared::ClientMessage::Button {
                x, y, down: true, ..
            } => break (x, y),
            _ => continue,
        }
    };
    let image_css = image.width * layout.css_width / layout.width;
    let want = 0.5 + 100.0 / (image_css * 4.0);
    assert!(
        (press.0 - want).abs() < 0.01 && (press.1 - 0.5).abs() < 0.01,
        "the tap 100 px right of the centre of a 4x view presses at x {want:.3}, got {press:?}; console:\n{}",
        browser.console().await
    );
    browser.close().await;
    server.shutdown().await;
    drop(window);
    drop(x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_only_page_draws_the_remote_pointer_where_it_is() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (x, window) = desktop();
    let server = TestServer::start(screen_config()).await;
    // A script takes control first: the page is view-only.
    let (mut control, _) = ws_connect(&server).await;
    let (browser, layout, image) = open_page(&server).await;
    use futures_util::SinkExt as _;
    control
        .send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"type":"move","x":0.25,"y":0.75}"#,
        ))
        .await
        .expect("send");
    // The drawn pointer's hotspot: its box's corner plus the cursor's hotspot.
    let (_, _, xhot, yhot, _) = xfixes_cursor(&x.display);
    let (want_x, want_y) = layout.css(image.at(0.25, 0.75));
    // Drawn at its box's corner minus the cursor's hotspot: wait for it to get there.
    let script = format!(
        "const p = document.getElementById('pointer'); if (p.hidden) return null; \
         const r = p.getBoundingClientRect(); \
         const x = r.left + {xhot}, y = r.top + {yhot}; \
         return r.width > 0 && Math.abs(x - {want_x}) <= 2 && Math.abs(y - {want_y}) <= 2 ? [x, y] : null;"
    );
    let got = browser.wait_for(Duration::from_secs(10), &script).await;
    let seen = browser
        .execute(
            "const p = document.getElementById('pointer'); const r = p.getBoundingClientRect(); \
             return [p.hidden, r.left, r.top, r.width];",
            json!([]),
        )
        .await;
    assert!(
        got.is_some(),
        "the view-only page draws the remote pointer's hotspot at ({want_x}, {want_y}); \
         the pointer element is [hidden, left, top, width] {seen}; console:\n{}",
        browser.console().await
    );
    browser.close().await;
    server.shutdown().await;
    drop(window);
    drop(x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_reaches_the_page_and_a_paste_in_the_page_reaches_the_desktop() {
    if !(have("Xvfb") & have("chromium") & have("chromedriver") & have("xclip")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let (x, _window) = desktop();
    let server = TestServer::start(screen_config()).await;
    let (browser, layout, image) = open_page(&server).await;
    // Copied on the desktop: the page has it (in its clipboard panel at least).
    x.copy("copied on the desktop");
    let shown = browser
        .wait_for(
            Duration::from_secs(5),
            "return document.getElementById('clipboard-text').value === 'copied on the desktop' || null",
        )
        .await;
    assert!(shown.is_some(), "the page got the remote clipboard");
    // A paste in the page (the keyboard has focus after a press on the screen): the
    // desktop's clipboard holds what was pasted.
    let (cx, cy) = layout.css(image.at(0.5, 0.5));
    browser.click((cx.round(), cy.round()), 0).await;
    browser
        .execute(
            "const dt = new DataTransfer(); dt.setData('text/plain', arguments[0]); \
             document.getElementById('keyboard').dispatchEvent(new ClipboardEvent('paste', \
             {clipboardData: dt, bubbles: true, cancelable: true})); return true;",
            json!(["pasted in the page ✓"]),
        )
        .await;
    let mut pasted = String::new();
    for _ in 0..60 {
        pasted = x.clipboard();
        if pasted == "pasted in the page ✓" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pasted, "pasted in the page ✓");
    browser.close().await;
}
