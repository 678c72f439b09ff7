//! A real browser for tests: headless Chromium driven by chromedriver through a minimal
//! W3C WebDriver client (JSON over plain HTTP/1.1). The driver runs on a free port, is
//! waited for through its own `/status`, and is stopped on drop together with the
//! browser and its throw-away profile.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where `tool` lives on PATH.
fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// One HTTP/1.1 request to the driver; returns (status, JSON body). Blocking: async
/// code goes through [`Browser::command`].
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    try_http(port, method, path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
}

fn try_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let bad = |what: &str| std::io::Error::other(format!("bad answer from chromedriver: {what}"));
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    // Generous: a navigation or an action chain can take a while on a busy machine.
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    // chromedriver answers `Connection: close` but keeps the socket open: read the head,
    // then exactly `Content-Length` bytes.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("closed before the end of the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("no content-length"))?;
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("closed before the end of the body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A free loopback port, released for the driver to take.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A fresh, empty directory for one browser: its profile and its temporary files.
fn fresh_dir() -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "deskcast-chromium-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tmp")).expect("create a browser directory");
    dir
}

/// Starts chromedriver on a free port and waits until its `/status` says ready. It and
/// the browser it starts keep their temporary files in `tmp`.
fn start_driver(tmp: PathBuf) -> (Child, u16) {
    let exe = on_path("chromedriver").expect("chromedriver on PATH");
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(&exe)
            .arg(format!("--port={port}"))
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                break; // lost the port to someone else: try another
            }
            if let Ok((200, body)) = try_http(port, "GET", "/status", None) {
                if body["value"]["ready"] == json!(true) {
                    return (child, port);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("chromedriver did not become ready");
}

/// A headless Chromium session. Closed (browser, driver, profile) on drop.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
    /// The browser's process, from the session's capabilities.
    browser_pid: Option<u32>,
    /// Profile and temporary files, removed on drop.
    dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width × height` window.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = on_path("chromium").expect("chromium on PATH");
        let dir = fresh_dir();
        let tmp = dir.join("tmp");
        let (driver, port) = tokio::task::spawn_blocking(move || start_driver(tmp))
            .await
            .expect("driver start");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", dir.join("profile").display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let mut browser = Browser {
            port,
            session: String::new(),
            driver,
            browser_pid: None,
            dir,
        };
        let value = browser.command("POST", "/session", Some(caps)).await;
        browser.session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.browser_pid = value["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok());
        browser.set_window_size(width, height).await;
        browser
    }

    /// Sends one WebDriver command; returns its `value`, panicking on a WebDriver error.
    pub async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (port, method_owned, path_owned) = (self.port, method.to_string(), path.to_string());
        let (status, answer) = tokio::task::spawn_blocking(move || {
            http(port, &method_owned, &path_owned, body.as_ref())
        })
        .await
        .expect("WebDriver request");
        assert!(
            status == 200,
            "WebDriver {method} {path} failed ({status}): {answer}"
        );
        answer["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Sets the browser window's outer size (headless: the viewport's size).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.command("POST", &self.path("/window/rect"), Some(body))
            .await;
    }

    /// Loads `url` and waits for the document to have loaded.
    pub async fn goto(&self, url: &str) {
        let body = json!({ "url": url });
        self.command("POST", &self.path("/url"), Some(body)).await;
    }

    /// Runs `script` (a function body; arguments in `arguments`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.command("POST", &self.path("/execute/sync"), Some(body))
            .await
    }

    /// Runs `script` every 50 ms until it returns something other than `null`/`false`,
    /// up to `limit`; returns that value, or `None` on time-out.
    pub async fn wait_for(&self, limit: Duration, script: &str) -> Option<Value> {
        let start = Instant::now();
        loop {
            let v = self.execute(script, json!([])).await;
            if !(v.is_null() || v == json!(false)) {
                return Some(v);
            }
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Performs W3C input actions (one pointer's list of steps, for example).
    pub async fn perform(&self, actions: Value) {
        let body = json!({ "actions": actions });
        self.command("POST", &self.path("/actions"), Some(body))
            .await;
    }

    /// Releases every input source the actions pressed.
    pub async fn release(&self) {
        self.command("DELETE", &self.path("/actions"), None).await;
    }

    /// The page's console messages so far (for failure messages), one per line.
    pub async fn console(&self) -> String {
        let body = json!({ "type": "browser" });
        let (port, path) = (self.port, self.path("/se/log"));
        let answer =
            tokio::task::spawn_blocking(move || try_http(port, "POST", &path, Some(&body))).await;
        match answer {
            Ok(Ok((_, answer))) => answer["value"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| format!("{} {}", e["level"], e["message"]))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            other => format!("(no console log: {other:?})"),
        }
    }

    /// Ends the session, which closes the browser.
    pub async fn close(mut self) {
        let (port, path) = (self.port, self.path(""));
        self.session.clear();
        let _ = tokio::task::spawn_blocking(move || http(port, "DELETE", &path, None)).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Let chromedriver close the browser; killing the driver alone would orphan it.
            let path = self.path("");
            let _ = try_http(self.port, "DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // The browser may still be writing its profile while it exits: wait for it.
        let start = Instant::now();
        while let Some(pid) = self.browser_pid {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .starts_with('Z')
            });
            if !alive || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..5 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One pointer action chain for the mouse, ready for [`Browser::perform`].
pub fn mouse(steps: Vec<Value>) -> Value {
    json!([{
        "type": "pointer",
        "id": "mouse",
        "parameters": { "pointerType": "mouse" },
        "actions": steps,
    }])
}

/// Moves the mouse to viewport CSS pixel (`x`, `y`) in `ms` milliseconds.
pub fn move_to(x: f64, y: f64, ms: u64) -> Value {
    json!({
        "type": "pointerMove",
        "origin": "viewport",
        "x": x.round() as i64,
        "y": y.round() as i64,
        "duration": ms,
    })
}

/// Presses mouse button `button` (0 left, 1 middle, 2 right).
pub fn down(button: u8) -> Value {
    json!({ "type": "pointerDown", "button": button })
}

/// Releases mouse button `button`.
pub fn up(button: u8) -> Value {
    json!({ "type": "pointerUp", "button": button })
}

/// Waits `ms` milliseconds inside an action chain.
pub fn pause(ms: u64) -> Value {
    json!({ "type": "pause", "duration": ms })
}

/// One key action chain for the keyboard, ready for [`Browser::perform`].
pub fn keyboard(steps: Vec<Value>) -> Value {
    json!([{ "type": "key", "id": "keyboard", "actions": steps }])
}

/// Presses and releases each key of `keys` in turn: characters, or WebDriver's
/// special keys such as [`RETURN`].
pub fn type_keys(keys: &str) -> Vec<Value> {
    keys.chars()
        .flat_map(|k| {
            let k = k.to_string();
            [
                json!({ "type": "keyDown", "value": k }),
                json!({ "type": "keyUp", "value": k }),
            ]
        })
        .collect()
}

/// WebDriver's Return key: `key` "Enter", `code` "Enter" (its "Enter" is the keypad's).
pub const RETURN: char = '\u{E006}';

/// The page's canvas as laid out in the browser.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Canvas left edge in the viewport, CSS pixels.
    pub left: f64,
    /// Canvas top edge in the viewport, CSS pixels.
    pub top: f64,
    /// Canvas size in CSS pixels.
    pub css_width: f64,
    /// Canvas size in CSS pixels.
    pub css_height: f64,
    /// Backing store size (`canvas.width`), in canvas pixels.
    pub width: f64,
    /// Backing store size (`canvas.height`), in canvas pixels.
    pub height: f64,
}

/// Where the image sits in the canvas, in canvas (backing) pixels.
#[derive(Debug, Clone, Copy)]
pub struct Letterbox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Layout {
    /// Where an `image_width × image_height` image must be drawn: as large as fits with
    /// its aspect ratio kept, centred, bars on the other two sides, in whole canvas
    /// pixels (size rounded, offset rounded down: the page's documented contract).
    pub fn letterbox(&self, image_width: u32, image_height: u32) -> Letterbox {
        let (iw, ih) = (f64::from(image_width), f64::from(image_height));
        let scale = (self.width / iw).min(self.height / ih);
        let (width, height) = ((iw * scale).round(), (ih * scale).round());
        Letterbox {
            x: ((self.width - width) / 2.0).floor(),
            y: ((self.height - height) / 2.0).floor(),
            width,
            height,
        }
    }

    /// The viewport CSS point over canvas pixel (`x`, `y`).
    pub fn css(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            self.left + x * self.css_width / self.width,
            self.top + y * self.css_height / self.height,
        )
    }

    /// The canvas pixel under viewport CSS point (`x`, `y`).
    pub fn canvas(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            (x - self.left) * self.width / self.css_width,
            (y - self.top) * self.height / self.css_height,
        )
    }
}

impl Letterbox {
    /// The canvas pixel at image fraction (`fx`, `fy`).
    pub fn at(&self, fx: f64, fy: f64) -> (f64, f64) {
        (self.x + fx * self.width, self.y + fy * self.height)
    }

    /// The image fraction at canvas pixel (`x`, `y`).
    pub fn fraction(&self, (x, y): (f64, f64)) -> (f64, f64) {
        ((x - self.x) / self.width, (y - self.y) / self.height)
    }
}

/// Returns the canvas layout once some pixel on the canvas's middle column is not black
/// (the first frame was drawn), else `null`.
const DRAWN: &str = r#"
const c = document.getElementById('screen');
if (!c || c.width < 2 || c.height < 2) return null;
const col = c.getContext('2d').getImageData(Math.floor(c.width / 2), 0, 1, c.height).data;
for (let i = 0; i < col.length; i += 4) {
  if (col[i] + col[i + 1] + col[i + 2] > 60) {
    const r = c.getBoundingClientRect();
    return { left: r.left, top: r.top, cssWidth: r.width, cssHeight: r.height,
             width: c.width, height: c.height };
  }
}
return null;
"#;

/// RGB of canvas pixels at the given (x, y) canvas coordinates.
const PIXELS: &str = r#"
const ctx = document.getElementById('screen').getContext('2d');
return arguments[0].map(([x, y]) =>
  Array.from(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3)));
"#;

impl Browser {
    /// Waits until the page has drawn a frame on its canvas; returns the canvas layout.
    pub async fn wait_until_drawn(&self, limit: Duration) -> Layout {
        let Some(v) = self.wait_for(limit, DRAWN).await else {
            panic!(
                "the page drew nothing within {limit:?}; its console:\n{}",
                self.console().await
            );
        };
        let n = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("layout {k}: {v}"));
        Layout {
            left: n("left"),
            top: n("top"),
            css_width: n("cssWidth"),
            css_height: n("cssHeight"),
            width: n("width"),
            height: n("height"),
        }
    }

    /// The RGB colour of each canvas pixel in `points` (canvas coordinates).
    pub async fn pixels(&self, points: &[(f64, f64)]) -> Vec<[u8; 3]> {
        let pts: Vec<[f64; 2]> = points.iter().map(|&(x, y)| [x, y]).collect();
        let v = self.execute(PIXELS, json!([pts])).await;
        v.as_array()
            .expect("an array of pixels")
            .iter()
            .map(|p| {
                let c = |i: usize| p[i].as_u64().and_then(|c| u8::try_from(c).ok());
                [c(0), c(1), c(2)].map(|c| c.unwrap_or_else(|| panic!("pixel {p}")))
            })
            .collect()
    }

    /// Clicks `button` (0 left, 2 right) at viewport CSS point `at`.
    pub async fn click(&self, at: (f64, f64), button: u8) {
        self.perform(mouse(vec![
            move_to(at.0, at.1, 0),
            down(button),
            up(button),
        ]))
        .await;
    }
}

/// Installed in the page: times each `pointerdown` until the canvas `arguments[0]`
/// shows another colour at its backing pixel (`arguments[1]`, `arguments[2]`).
/// Results collect in `window.__photon` (ms); `window.__downs` has each press's wall
/// clock time (ms since the epoch).
const PHOTON_PROBE: &str = r#"
const [sel, px, py] = arguments;
window.__photon = [];
window.__downs = [];
const colour = () => {
  const c = document.querySelector(sel);
  const p = c.getContext('2d').getImageData(Math.floor(px), Math.floor(py), 1, 1).data;
  return p[0] + ',' + p[1] + ',' + p[2];
};
window.addEventListener('pointerdown', (e) => {
  const t0 = e.timeStamp;
  window.__downs.push(performance.timeOrigin + e.timeStamp);
  const before = colour();
  const poll = () => {
    if (colour() !== before) { window.__photon.push(performance.now() - t0); return; }
    if (performance.now() - t0 > 5000) { window.__photon.push(NaN); return; }
    setTimeout(poll, 0);
  };
  poll();
}, true);
return true;
"#;

/// The viewport CSS point over backing pixel (`arguments[1]`, `arguments[2]`) of the
/// canvas `arguments[0]` (its centre when they are null), and that backing pixel.
pub const CANVAS_POINT: &str = r#"
const c = document.querySelector(arguments[0]);
if (!c) return null;
const r = c.getBoundingClientRect();
const px = arguments[1] ?? c.width / 2, py = arguments[2] ?? c.height / 2;
return [Math.round(r.left + px * r.width / c.width), Math.round(r.top + py * r.height / c.height), px, py];
"#;

impl Browser {
    /// Clicks `n` times over backing pixel `at` of the canvas `selector` (its centre
    /// when `None`) and times each click from the page's `pointerdown` until the canvas
    /// shows another colour there. Returns the times, ms, sorted; clicks that showed
    /// nothing within 5 s are left out.
    pub async fn click_to_photon(
        &self,
        selector: &str,
        at: Option<(f64, f64)>,
        n: usize,
    ) -> Vec<f64> {
        let (px, py) = at.map_or((Value::Null, Value::Null), |(x, y)| (json!(x), json!(y)));
        let point = self.execute(CANVAS_POINT, json!([selector, px, py])).await;
        let n_at = |i: usize| {
            point[i]
                .as_f64()
                .unwrap_or_else(|| panic!("no canvas {selector}: {point}"))
        };
        let (x, y, px, py) = (n_at(0), n_at(1), n_at(2), n_at(3));
        self.execute(PHOTON_PROBE, json!([selector, px, py])).await;
        for i in 0..n {
            // Spread clicks over the capture period so the phase flatters nobody.
            tokio::time::sleep(Duration::from_millis(250 + (i as u64 * 7) % 33)).await;
            self.perform(mouse(vec![move_to(x, y, 0), down(0), pause(20), up(0)]))
                .await;
            self.wait_for(
                Duration::from_secs(6),
                &format!("return window.__photon.length >= {} ? true : null;", i + 1),
            )
            .await;
        }
        let got = self.execute("return window.__photon", json!([])).await;
        let mut ms: Vec<f64> = got
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_f64)
                    .filter(|v| v.is_finite())
                    .collect()
            })
            .unwrap_or_default();
        ms.sort_by(|a, b| a.total_cmp(b));
        ms
    }
}
