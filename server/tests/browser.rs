//! The WASM client in a real browser (headless Chromium over WebDriver) against the
//! in-process server streaming the test pattern: what the canvas shows, and what the
//! mouse on it sends.
//!
//! The window is square, so the 16:9 image is letterboxed with bars above and below;
//! the tests work out where the image must be from the canvas size alone.

mod common;

use std::time::Duration;

use common::browser::{
    down, keyboard, mouse, move_to, pause, type_keys, up, Browser, Layout, Letterbox, RETURN,
};
use common::*;
use deskcast_server::capture::PATTERN_BARS;
use deskcast_server::Config;
use deskcast_shared::{Button, ClientMessage};

/// Streamed image size (16:9).
const IMAGE: (u32, u32) = (640, 360);
/// Browser window size: square, so the image gets bars above and below.
const WINDOW: (u32, u32) = (900, 900);
/// How far a JPEG-coded, scaled colour may be from the drawn one, per channel.
const JPEG_TOLERANCE: u8 = 48;
/// How far a sent fraction may be from the aimed-at one (a pixel is ~0.0016 here).
const FRACTION_TOLERANCE: f64 = 0.01;

/// One browser at a time in this binary: the double-click test depends on timing.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn tools_present() -> bool {
    // Both checked (no short-circuit), so a skip names every missing tool.
    have("chromium") & have("chromedriver")
}

/// A server streaming the pattern and accepting (recording) input, a browser showing
/// its page, and where the image is on the canvas.
async fn open_page() -> (TestServer, Browser, Layout, Letterbox) {
    let mut config = Config::pattern(IMAGE.0, IMAGE.1);
    config.test_accept_input = true;
    let server = TestServer::start(config).await;
    let browser = Browser::start(WINDOW.0, WINDOW.1).await;
    browser.goto(&server.url("/")).await;
    let layout = browser.wait_until_drawn(Duration::from_secs(20)).await;
    let image = layout.letterbox(IMAGE.0, IMAGE.1);
    assert!(
        image.y >= 50.0 && image.x.abs() < 1.0,
        "a square window must letterbox a 16:9 image top and bottom: {layout:?} {image:?}"
    );
    (server, browser, layout, image)
}

fn near_colour(got: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| g.abs_diff(w) <= tolerance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_shows_the_stream_letterboxed() {
    if !tools_present() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let (server, browser, layout, image) = open_page().await;

    // The eight bars, at the middle of each, a third of the way down the image.
    let centres: Vec<_> = (0..8)
        .map(|i| image.at((2 * i + 1) as f64 / 16.0, 1.0 / 3.0))
        .collect();
    let got = browser.pixels(&centres).await;
    for (i, (got, want)) in got.iter().zip(PATTERN_BARS).enumerate() {
        assert!(
            near_colour(*got, want, JPEG_TOLERANCE),
            "bar {i} at canvas {:?}: got {got:?}, want {want:?}",
            centres[i]
        );
    }
    // The bottom third is the dark grey ground (away from the moving box's band).
    let ground = browser.pixels(&[image.at(0.5, 0.7)]).await[0];
    assert!(
        near_colour(ground, [40, 40, 40], 24),
        "ground {ground:?}, want dark grey"
    );

    // The bars above and below the image are the page's black.
    let mut bars = Vec::new();
    for fx in [0.05, 0.3, 0.5, 0.7, 0.95] {
        let x = image.x + fx * image.width;
        bars.push((x, image.y / 2.0));
        bars.push((x, image.y + image.height + image.y / 2.0));
        bars.push((x, 1.0)); // the canvas's very top and bottom rows
        bars.push((x, layout.height - 2.0));
    }
    for (at, px) in bars.iter().zip(browser.pixels(&bars).await) {
        assert!(
            near_colour(px, [0, 0, 0], 8),
            "letterbox bar at canvas {at:?} is {px:?}, want black"
        );
    }
    browser.close().await;
    server.shutdown().await;
}

/// The next input the server accepted, skipping hover moves (a mouse crossing the
/// image sends them; they are not what these tests are about).
async fn next_gesture(server: &mut TestServer) -> ClientMessage {
    loop {
        match server.next_input().await {
            ClientMessage::Move { .. } => continue,
            other => return other,
        }
    }
}

fn assert_at(what: &str, got: (f64, f64), want: (f64, f64)) {
    assert!(
        (got.0 - want.0).abs() <= FRACTION_TOLERANCE
            && (got.1 - want.1).abs() <= FRACTION_TOLERANCE,
        "{what} at {got:?}, want {want:?}"
    );
}

/// A `button` message's parts.
#[derive(Debug)]
struct Press {
    at: (f64, f64),
    button: Button,
    down: bool,
    clicks: u8,
}

/// The next `button` message, skipping moves; anything else fails the test.
async fn next_button(server: &mut TestServer, what: &str) -> Press {
    match next_gesture(server).await {
        ClientMessage::Button {
            x,
            y,
            button,
            down,
            clicks,
            ..
        } => Press {
            at: (x, y),
            button,
            down,
            clicks,
        },
        other => panic!("want {what} as a button message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_releases_double_clicks_drags_and_right_clicks_reach_the_server() {
    if !tools_present() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let (mut server, browser, layout, image) = open_page().await;
    // The viewport point over image fraction (fx, fy), and the fraction that point
    // really is (the driver moves in whole CSS pixels).
    let point = |fx: f64, fy: f64| {
        let (x, y) = layout.css(image.at(fx, fy));
        let css = (x.round(), y.round());
        (css, image.fraction(layout.canvas(css)))
    };

    // A click on the black bar above the image sends nothing: the first gesture the
    // server sees is the press of the click on the image that follows it.
    let bar = layout.css((image.x + image.width / 2.0, image.y / 2.0));
    browser.click(bar, 0).await;
    let (at, want) = point(0.25, 0.5);
    browser.click(at, 0).await;
    let p = next_button(&mut server, "the press at (0.25, 0.5), nothing for the bar").await;
    assert!(p.down && p.button == Button::Left && p.clicks == 1, "{p:?}");
    assert_at("press", p.at, want);
    assert_at("press", p.at, (0.25, 0.5));
    let r = next_button(&mut server, "the release").await;
    assert!(!r.down && r.button == Button::Left, "{r:?}");
    assert_at("release", r.at, want);

    // A double click: two presses, the second marked as the second click.
    let (at, want) = point(0.6, 0.4);
    browser
        .perform(mouse(vec![
            move_to(at.0, at.1, 0),
            down(0),
            up(0),
            down(0),
            up(0),
        ]))
        .await;
    let mut clicks = Vec::new();
    for _ in 0..4 {
        let p = next_button(&mut server, "a double click's presses and releases").await;
        assert_at("double click", p.at, want);
        clicks.push((p.down, p.clicks));
    }
    assert_eq!(
        clicks,
        [(true, 1), (false, 1), (true, 2), (false, 1)],
        "press, release, second press (clicks 2), release"
    );

    // A drag: press where pressed, moves on the way, release where released.
    let (from, want_from) = point(0.2, 0.3);
    let (to, want_to) = point(0.6, 0.7);
    let mut steps = vec![move_to(from.0, from.1, 0), down(0)];
    for i in 1..=5 {
        let t = f64::from(i) / 5.0;
        let (x, y) = (from.0 + t * (to.0 - from.0), from.1 + t * (to.1 - from.1));
        // Each step spans a few animation frames: the page sends one move per frame.
        steps.push(move_to(x, y, 60));
        steps.push(pause(40));
    }
    steps.push(up(0));
    browser.perform(mouse(steps)).await;
    let p = next_button(&mut server, "the drag's press").await;
    assert!(p.down && p.clicks == 1, "a new series: {p:?}");
    assert_at("drag press", p.at, want_from);
    let mut moves = 0;
    loop {
        match server.next_input().await {
            ClientMessage::Move { x, y, .. } => {
                assert!(
                    (want_from.0 - 0.01..=want_to.0 + 0.01).contains(&x)
                        && (want_from.1 - 0.01..=want_to.1 + 0.01).contains(&y),
                    "drag move at ({x}, {y}) is off the path"
                );
                moves += 1;
            }
            ClientMessage::Button {
                x, y, down: false, ..
            } => {
                assert_at("drag release", (x, y), want_to);
                break;
            }
            other => panic!("want moves then the release, got {other:?}"),
        }
    }
    assert!(moves >= 1, "a drag over several frames sends moves");

    // A right click, with its button.
    let (at, want) = point(0.5, 0.5);
    browser.click(at, 2).await;
    for down in [true, false] {
        let p = next_button(&mut server, "the right click").await;
        assert!(p.button == Button::Right && p.down == down, "{p:?}");
        assert_at("right click", p.at, want);
    }

    browser.release().await;
    browser.close().await;
    server.shutdown().await;
}

/// A keyboard message as a short string, without its sequence number.
fn typed(msg: ClientMessage) -> String {
    match msg {
        ClientMessage::Text { text, .. } => format!("text {text}"),
        ClientMessage::Key { code, down, .. } => {
            format!("key {code} {}", if down { "down" } else { "up" })
        }
        other => format!("{other:?}"),
    }
}

/// What a phone keyboard and an IME send, as the page sees them: events on the
/// keyboard textarea that no real key of the driver can produce.
const PHONE_AND_IME: &str = r#"
const k = document.getElementById('keyboard');
k.dispatchEvent(new CompositionEvent('compositionstart', { data: '' }));
k.dispatchEvent(new KeyboardEvent('keydown', { key: 'n', code: 'KeyN', isComposing: true, bubbles: true }));
k.dispatchEvent(new InputEvent('input', { inputType: 'insertCompositionText', data: 'に', isComposing: true }));
k.dispatchEvent(new CompositionEvent('compositionend', { data: '日本' }));
k.dispatchEvent(new KeyboardEvent('keydown', { key: 'Unidentified', bubbles: true }));
k.dispatchEvent(new InputEvent('input', { inputType: 'insertText', data: 'é' }));
k.dispatchEvent(new InputEvent('input', { inputType: 'deleteContentBackward' }));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_on_the_focused_screen_reaches_the_server() {
    if !tools_present() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let (mut server, browser, layout, image) = open_page().await;

    // A click on the screen gives it the keyboard.
    browser.click(layout.css(image.at(0.5, 0.5)), 0).await;
    for _ in 0..2 {
        match next_gesture(&mut server).await {
            ClientMessage::Button { .. } => {}
            other => panic!("want the click that focuses the screen, got {other:?}"),
        }
    }
    let focused = browser
        .execute("return document.activeElement.id", serde_json::json!([]))
        .await;
    assert_eq!(
        focused, "keyboard",
        "a click on the screen focuses the keyboard input"
    );

    // Printable keys go out as text, Enter as a key pressed and released.
    browser
        .perform(keyboard(type_keys(&format!("ab{RETURN}"))))
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(typed(next_gesture(&mut server).await));
    }
    assert_eq!(
        got,
        ["text a", "text b", "key Enter down", "key Enter up"],
        "what the server received for a, b, Enter"
    );

    // A composition sends only its result; a phone's input events are typed.
    browser.execute(PHONE_AND_IME, serde_json::json!([])).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(typed(next_gesture(&mut server).await));
    }
    assert_eq!(
        got,
        [
            "text 日本",
            "text é",
            "key Backspace down",
            "key Backspace up"
        ],
        "what the server received for a composition and a phone's input"
    );
    let left = browser
        .execute(
            "return document.getElementById('keyboard').value",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(left, "", "the keyboard input is emptied after each input");

    browser.release().await;
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_acks_what_it_draws_and_shows_the_measured_link() {
    if !tools_present() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let (server, browser, _, _) = open_page().await;
    // Only a client that acks gets `stats` (round trip from acks) from the server;
    // the overlay shows it, with the frames' quality.
    let line = browser
        .wait_for(
            Duration::from_secs(10),
            r#"const t = document.getElementById('status').textContent;
               return /rtt \d+ ms/.test(t) && / q\d+/.test(t) ? t : null;"#,
        )
        .await;
    let Some(line) = line else {
        panic!(
            "the overlay never showed a round trip; console:\n{}",
            browser.console().await
        );
    };
    let text = line.as_str().unwrap_or_default().to_string();
    assert!(!text.contains("clock diff"), "{text}");
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_menu_sends_combinations_the_browser_keeps_for_itself() {
    if !tools_present() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let (mut server, browser, _layout, _image) = open_page().await;
    let hidden = browser
        .execute(
            "document.getElementById('keys-button').click(); return document.getElementById('keys-menu').hidden",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(hidden, false, "the keys button opens the menu");
    browser
        .execute(
            "document.querySelector('[data-keys=\"ControlLeft AltLeft Delete\"]').click()",
            serde_json::json!([]),
        )
        .await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(typed(next_gesture(&mut server).await));
    }
    assert_eq!(
        got,
        [
            "key ControlLeft down",
            "key AltLeft down",
            "key Delete down",
            "key Delete up",
            "key AltLeft up",
            "key ControlLeft up"
        ],
        "Ctrl+Alt+Del: pressed in order, released in reverse"
    );
    let pressed = browser
        .execute(
            "const b = document.getElementById('trackpad-button'); b.click(); return b.getAttribute('aria-pressed')",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(pressed, "true", "the trackpad button toggles trackpad mode");
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_load_leaves_no_warnings_or_errors_in_the_console() {
    if !(have("chromium") & have("chromedriver")) {
        return;
    }
    let mut config = Config::pattern(IMAGE.0, IMAGE.1);
    config.test_accept_input = true;
    let server = TestServer::start(config).await;
    let browser = Browser::start(WINDOW.0, WINDOW.1).await;
    browser.goto(&server.url("/")).await;
    // Connected, and frames flowing (read from the DOM: reading the canvas back would
    // make Chromium warn about the test's own getImageData).
    let flowing = browser
        .wait_for(
            Duration::from_secs(20),
            r#"const t = document.getElementById('status').textContent;
               return /connected .* [1-9][0-9]* fps/.test(t) ? t : null;"#,
        )
        .await;
    assert!(flowing.is_some(), "the page connected and drew");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let console = browser.console().await;
    let bad: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("\"WARNING\"") || l.contains("\"SEVERE\""))
        .collect();
    assert!(bad.is_empty(), "the console on a clean load:\n{console}");
    browser.close().await;
    server.shutdown().await;
}
