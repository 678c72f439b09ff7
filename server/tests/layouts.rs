//! Keyboard layouts: what the page sends for a character typed on one layout comes out
//! as that character on a desktop with another layout, read back from a real xterm
//! (`cat > file` inside it) on Xvfb with `setxkbmap`.
//!
//! The messages are the ones the page sends (the key state machine in the client crate
//! is unit-tested for them; `browser_desktop.rs` types through Chromium): a character
//! goes as `text`, while the physical modifiers the user holds for it (Shift on a US
//! keyboard, AltGr on a German one) go as `key` down/up around it.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

static DISPLAY_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What to type: the issue's string, with characters from both layouts' AltGr levels.
const TYPED: &str = "a@b|c~é€ß";

/// An xterm filling the top-left of the screen, its shell writing each line to `out`.
struct Xterm(Child);

impl Xterm {
    fn start(display: &str, out: &Path) -> Xterm {
        let child = Command::new("xterm")
            .args(["-display", display, "-geometry", "80x10+0+0", "-u8", "-e"])
            .arg("sh")
            .arg("-c")
            .arg(format!("stty -echo; cat > '{}'", out.display()))
            .env("LC_ALL", "C.UTF-8")
            .spawn()
            .expect("spawn xterm");
        Xterm(child)
    }
}

impl Drop for Xterm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn key(code: &str, down: bool) -> String {
    format!(r#"{{"type":"key","code":"{code}","down":{down}}}"#)
}

fn text(t: &str) -> String {
    serde_json::json!({"type": "text", "text": t}).to_string()
}

/// The page's messages for `TYPED` on a US keyboard: Shift held for @ | ~; é € ß come
/// from an input method (compose, a phone keyboard) as text.
fn us_client() -> Vec<String> {
    let shifted = |c: &str| vec![key("ShiftLeft", true), text(c), key("ShiftLeft", false)];
    let mut m = vec![text("a")];
    m.extend(shifted("@"));
    m.push(text("b"));
    m.extend(shifted("|"));
    m.push(text("c"));
    m.extend(shifted("~"));
    m.extend(["é", "€", "ß"].map(text));
    m
}

/// The page's messages for `TYPED` on a German keyboard: AltGr (sent as `AltGraph`)
/// held for @ | ~ €, é from a dead key (text), ß a plain key. On Windows, AltGr
/// also presses ControlLeft first (Windows reports AltGr as Ctrl+Alt): the server
/// must type the characters without it, or xterm would get Ctrl+@.
fn german_client(windows: bool) -> Vec<String> {
    let altgr = |c: &str| {
        let mut m = vec![key("AltGraph", true), text(c), key("AltGraph", false)];
        if windows {
            m.insert(0, key("ControlLeft", true));
            m.push(key("ControlLeft", false));
        }
        m
    };
    let mut m = vec![text("a")];
    m.extend(altgr("@"));
    m.push(text("b"));
    m.extend(altgr("|"));
    m.push(text("c"));
    m.extend(altgr("~"));
    m.push(text("é"));
    m.extend(altgr("€"));
    m.push(text("ß"));
    m
}

async fn typed_on(server_layout: &str, messages: Vec<String>) -> Option<String> {
    if !(have("Xvfb") & have("xterm") & have("setxkbmap")) {
        return None;
    }
    let x = Xvfb::start(1280, 720);
    let status = Command::new("setxkbmap")
        .args(["-display", &x.display, server_layout])
        .status()
        .expect("run setxkbmap");
    assert!(status.success(), "setxkbmap {server_layout} failed");
    std::env::set_var("DISPLAY", &x.display);
    let dir = std::env::temp_dir().join(format!(
        "deskcast-layout-{}-{server_layout}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("typed.txt");
    let _ = std::fs::remove_file(&out);
    let _xterm = Xterm::start(&x.display, &out);
    // The shell inside has started once the file exists.
    let start = Instant::now();
    while !out.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "xterm never started its shell"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = TestServer::start(screen_config()).await;
    let (mut ws, _) = ws_connect(&server).await;
    // Without a window manager the keyboard follows the pointer: point at the xterm.
    ws.send(Message::text(r#"{"type":"move","x":0.1,"y":0.05}"#))
        .await
        .expect("send");
    for m in messages
        .into_iter()
        .chain([key("Enter", true), key("Enter", false)])
    {
        ws.send(Message::text(m)).await.expect("send");
    }
    let start = Instant::now();
    let got = loop {
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        if got.ends_with('\n') || start.elapsed() > Duration::from_secs(10) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Some(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_us_client_types_exactly_its_characters_on_a_german_desktop() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(got) = typed_on("de", us_client()).await else {
        return;
    };
    eprintln!("typed: {got:?}");
    assert_eq!(got, format!("{TYPED}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_german_windows_client_types_exactly_its_characters_on_a_us_desktop() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(got) = typed_on("us", german_client(true)).await else {
        return;
    };
    eprintln!("typed: {got:?}");
    assert_eq!(got, format!("{TYPED}\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_german_client_types_exactly_its_characters_on_a_german_desktop() {
    let _lock = DISPLAY_LOCK.lock().await;
    let Some(got) = typed_on("de", german_client(false)).await else {
        return;
    };
    eprintln!("typed: {got:?}");
    assert_eq!(got, format!("{TYPED}\n"));
}
