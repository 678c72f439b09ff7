//! The whole way round: a real browser clicks on the streamed desktop, and the X server
//! under it delivers a button press at the matching screen pixel.
//!
//! Chromium (headless) → page → WebSocket → server → enigo → Xvfb → an X client that
//! logs what it received. A binary of its own, because it sets the process-wide
//! DISPLAY that the capture and enigo read; its tests take turns for the same reason.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::xclient::{TestWindow, XEvent};
use common::*;

/// The desktop's size (16:9).
const SCREEN: (u32, u32) = (1280, 720);
/// A square browser window, so the desktop is letterboxed above and below.
const WINDOW: (u32, u32) = (900, 900);
const BACKGROUND: u32 = 0x3366cc;

static DISPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_click_presses_the_button_at_the_matching_screen_pixel() {
    // Every tool checked (no short-circuit), so a skip names all that are missing.
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let _turn = DISPLAY.lock().await;
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, BACKGROUND, false);
    let server = TestServer::start(screen_config()).await;

    let browser = Browser::start(WINDOW.0, WINDOW.1).await;
    browser.goto(&server.url("/")).await;
    let layout = browser.wait_until_drawn(Duration::from_secs(20)).await;
    let image = layout.letterbox(SCREEN.0, SCREEN.1);
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
            XEvent::Press { button: 1, x, y, .. } => Some((x, y)),
            _ => None,
        })
    };
    // The page holds a single click back ~300 ms (it might become a double click).
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
    let browser = Browser::start(WINDOW.0, WINDOW.1).await;
    browser.goto(&server.url("/")).await;
    let layout = browser.wait_until_drawn(Duration::from_secs(20)).await;
    let image = layout.letterbox(SCREEN.0, SCREEN.1);

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
