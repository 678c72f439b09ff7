//! The whole way round: a real browser clicks on the streamed desktop, and the X server
//! under it delivers a button press at the matching screen pixel.
//!
//! Chromium (headless) → page → WebSocket → server → enigo → Xvfb → an X client that
//! logs what it received. A binary of its own, because it sets the process-wide
//! DISPLAY that xcap and enigo read.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::xclient::{TestWindow, XEvent};
use common::*;
use deskcast_server::config::SourceSpec;
use deskcast_server::Config;

/// The desktop's size (16:9).
const SCREEN: (u32, u32) = (1280, 720);
/// A square browser window, so the desktop is letterboxed above and below.
const WINDOW: (u32, u32) = (900, 900);
const BACKGROUND: u32 = 0x3366cc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_click_presses_the_button_at_the_matching_screen_pixel() {
    // Every tool checked (no short-circuit), so a skip names all that are missing.
    if !(have("Xvfb") & have("chromium") & have("chromedriver")) {
        return;
    }
    let x = Xvfb::start(SCREEN.0, SCREEN.1);
    // The only test in this binary: nothing else reads DISPLAY concurrently.
    std::env::set_var("DISPLAY", &x.display);
    let window = TestWindow::open(&x.display, BACKGROUND, false);
    let mut config = Config::pattern(1, 1);
    config.source = SourceSpec::Screen { monitor: 0 };
    let server = TestServer::start(config).await;

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
            XEvent::Press { button: 1, x, y } => Some((x, y)),
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
