//! Shared test fixtures: an in-process server on 127.0.0.1:0, a real Xvfb display,
//! a WebSocket client, and a tiny raw HTTP client. Everything stops on drop.
#![allow(dead_code, missing_docs)]

pub mod auth;
pub mod binary;
pub mod browser;
pub mod nats;
pub mod netns;
pub mod peer;
pub mod xclient;
pub mod xscene;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deskcast_server::pipeline::Stats;
use deskcast_server::{App, Config};
use deskcast_shared::{FrameHeader, ServerMessage};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// Whether a required outside tool exists. Outside CI a missing tool skips the test,
/// loudly; under `CI=true` it fails it.
pub fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is required under CI=true but is not installed");
        }
        eprintln!(
            "\n!!! SKIPPING: {tool} is not installed (run `cargo xtask test` to install it) !!!\n"
        );
    }
    found
}

/// A configuration that streams the desktop on `$DISPLAY` (monitor 0).
pub fn screen_config() -> Config {
    let mut config = Config::pattern(1, 1);
    config.source = deskcast_server::config::SourceSpec::Screen {
        monitor: deskcast_server::capture::monitors::MonitorChoice::Index(0),
    };
    config
}

/// An in-process deskcast server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    /// Every input event the server accepted for the desktop (None: source takes no input).
    pub tap: Option<tokio::sync::broadcast::Receiver<deskcast_shared::ClientMessage>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let app = App::new(&config).expect("server starts");
        let stats = app.stats();
        let tap = app.input_tap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, None, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stats,
            tap,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The next input event the server accepted, within 10 s.
    pub async fn next_input(&mut self) -> deskcast_shared::ClientMessage {
        let tap = self.tap.as_mut().expect("this server takes input");
        tokio::time::timeout(Duration::from_secs(10), tap.recv())
            .await
            .expect("an input event within 10 s")
            .expect("input tap open")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) {
        stop_served(self.stop.take(), self.task.take()).await;
    }
}

/// Tells a server started with [`App::serve`] to stop, and waits (10 s at most) until
/// it has finished without an error.
pub async fn stop_served(
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) {
    if let Some(s) = stop {
        let _ = s.send(());
    }
    if let Some(t) = task {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("server stops within 10 s")
            .expect("server task")
            .expect("server result");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Connects to `/ws` and returns the socket with its `hello`.
pub async fn ws_connect(server: &TestServer) -> (Ws, ServerMessage) {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("ws connects");
    let hello = next_text(&mut ws).await;
    (ws, hello)
}

/// The next message of any kind, within 10 s.
pub async fn next_message(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .expect("socket open")
        .expect("valid message")
}

/// The next text message, skipping frames, the remote cursor's `cursor` and
/// `pointer` news (which come whenever the X cursor changes) and `controller` (who
/// controls, after `hello` and on every change).
pub async fn next_text(ws: &mut Ws) -> ServerMessage {
    loop {
        if let Message::Text(t) = next_message(ws).await {
            match ServerMessage::parse(t.as_str()).expect("valid server message") {
                ServerMessage::Cursor { .. }
                | ServerMessage::Pointer { .. }
                | ServerMessage::Controller { .. } => continue,
                other => return other,
            }
        }
    }
}

/// The next text message `want` accepts, within `limit` (skipping frames and any
/// other text); `None` when none came.
pub async fn text_matching(
    ws: &mut Ws,
    limit: Duration,
    want: impl Fn(&ServerMessage) -> bool,
) -> Option<ServerMessage> {
    tokio::time::timeout(limit, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                if let Ok(msg) = ServerMessage::parse(t.as_str()) {
                    if want(&msg) {
                        return Some(msg);
                    }
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Waits for the next `error` on `ws` and checks its code.
pub async fn expect_error(ws: &mut Ws, code: deskcast_shared::ErrorCode) {
    let got = text_matching(ws, Duration::from_secs(5), |m| {
        matches!(m, ServerMessage::Error { .. })
    })
    .await;
    assert!(
        matches!(&got, Some(ServerMessage::Error { code: c, .. }) if *c == code),
        "want a {code:?} error, got {got:?}"
    );
}

/// The next binary frame message, skipping text.
pub async fn next_frame(ws: &mut Ws) -> Vec<u8> {
    loop {
        if let Message::Binary(b) = next_message(ws).await {
            return b.to_vec();
        }
    }
}

/// Opens `/video_feed` on a raw socket (no token: for servers without auth).
pub async fn mjpeg_connect(server: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!("GET /video_feed HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    s.write_all(req.as_bytes()).await.expect("request");
    s
}

/// Reads an MJPEG response until `n` complete JPEG parts arrived, each read within
/// `limit`; checks the multipart headers and returns how many parts were read.
pub async fn read_mjpeg_parts(stream: &mut TcpStream, n: usize, limit: Duration) -> usize {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let count = |b: &[u8]| b.windows(2).filter(|w| *w == [0xFF, 0xD9]).count();
    while count(&buf) < n {
        let read = tokio::time::timeout(limit, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("MJPEG data within {limit:?}"))
            .expect("read");
        assert!(read > 0, "MJPEG stream ended early");
        buf.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&buf[..buf.len().min(400)]).to_string();
    assert!(
        head.contains("multipart/x-mixed-replace; boundary=frame"),
        "{head}"
    );
    assert!(head.contains("Content-Type: image/jpeg"), "{head}");
    assert!(head.contains("Content-Length: "), "{head}");
    count(&buf)
}

/// A raw HTTP/1.1 GET; returns (status, head, body). Reads until the server closes.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response within 10 s")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head, buf[split + 4..].to_vec())
}

/// A number from this process's `/proc/self/status` (`Threads`, `VmRSS` in kB, …).
pub fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// The picture a client composes from region messages, as the browser client does.
pub struct Composed {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Composed {
    pub fn new(width: u32, height: u32) -> Composed {
        Composed {
            width: width as usize,
            height: height as usize,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    /// Pastes one region message at its place (a JPEG, or a fill's colour); returns
    /// its header. Panics on a rectangle outside the screen, a JPEG whose size is not
    /// the header's, or a fill that is not three bytes.
    pub fn apply(&mut self, msg: &[u8]) -> FrameHeader {
        let (h, jpeg) = FrameHeader::decode(msg).expect("frame header");
        let (w, hh, rgb) = if h.is_fill() {
            assert_eq!(jpeg.len(), 3, "a fill carries one RGB colour: {h:?}");
            let n = h.width as usize * h.height as usize;
            (h.width as usize, h.height as usize, jpeg.repeat(n))
        } else {
            decode_rgb(jpeg)
        };
        assert_eq!(
            (w, hh),
            (h.width as usize, h.height as usize),
            "JPEG size = rectangle"
        );
        let (x, y) = (h.x as usize, h.y as usize);
        assert!(
            x + w <= self.width && y + hh <= self.height,
            "{h:?} off screen"
        );
        for row in 0..hh {
            let dst = ((y + row) * self.width + x) * 3;
            self.rgb[dst..dst + w * 3].copy_from_slice(&rgb[row * w * 3..(row + 1) * w * 3]);
        }
        h
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// Reads binary messages until the last rectangle of a frame, pasting each into
/// `picture`; returns the frame's headers in order (all with the same `seq`).
pub async fn next_update(ws: &mut Ws, picture: &mut Composed) -> Vec<FrameHeader> {
    let mut headers = Vec::new();
    loop {
        let msg = next_frame(ws).await;
        let h = picture.apply(&msg);
        if let Some(first) = headers.first() {
            let first: &FrameHeader = first;
            assert_eq!(h.seq, first.seq, "a frame's rectangles share its seq");
        }
        headers.push(h);
        if h.is_last() {
            assert_eq!(
                usize::from(h.rects),
                headers.len(),
                "rects counts the frame"
            );
            return headers;
        }
    }
}

/// Decodes a JPEG to RGB; returns (width, height, pixels).
pub fn decode_rgb(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let img = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).expect("valid JPEG");
    (img.width, img.height, img.pixels)
}

/// A real X server on a free display, killed on drop.
pub struct Xvfb {
    pub display: String,
    child: Child,
    size: (u32, u32),
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Xvfb {
        Xvfb::start_with(width, height, &[])
    }

    /// Starts Xvfb with extra arguments (`-extension MIT-SHM` turns SHM off).
    pub fn start_with(width: u32, height: u32, extra: &[&str]) -> Xvfb {
        let screen = format!("{width}x{height}x24");
        let mut args = vec!["-screen", "0", screen.as_str(), "-nolisten", "tcp"];
        args.extend_from_slice(extra);
        Xvfb::spawn("Xvfb", &args, (width, height))
    }

    /// Starts TigerVNC's `Xvnc` instead: a real X server whose RandR resizes
    /// (`xrandr -s`) and honours `xrandr --setmonitor`, which Xvfb does not. Its VNC
    /// port is on the loopback only.
    pub fn start_xvnc(width: u32, height: u32) -> Xvfb {
        let geometry = format!("{width}x{height}");
        let port = peer::free_port().to_string();
        let args = [
            "-geometry",
            geometry.as_str(),
            "-depth",
            "24",
            "-SecurityTypes",
            "None",
            "-localhost",
            "-rfbport",
            port.as_str(),
            "-nolisten",
            "tcp",
        ];
        Xvfb::spawn("Xvnc", &args, (width, height))
    }

    fn spawn(program: &str, args: &[&str], size: (u32, u32)) -> Xvfb {
        use std::io::BufRead as _;
        // -displayfd: the server picks a free display itself (no races with other test
        // processes) and writes its number to our pipe once it is ready for clients.
        let (width, height) = size;
        let mut child = Command::new(program)
            .args(["-displayfd", "1"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = child.stdout.take().expect("X server stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read Xvfb display number");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{program} did not start: {line:?}"));
        Xvfb {
            display: format!(":{n}"),
            child,
            size: (width, height),
        }
    }

    /// Stops the X server (SIGTERM, as a crash or logout would end it for its clients).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Starts the X server again on the same display (after [`Xvfb::stop`]), and waits
    /// until it takes clients.
    pub fn restart(&mut self) {
        let (w, h) = self.size;
        // -noreset: the server must not reset when our probe (or deskcast's reconnect
        // attempts) disconnect, or the next client's connection is reset.
        self.child = Command::new("Xvfb")
            .args([
                self.display.as_str(),
                "-noreset",
                "-screen",
                "0",
                &format!("{w}x{h}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn Xvfb");
        let start = Instant::now();
        while x11rb::connect(Some(&self.display)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "Xvfb did not come back on {}",
                self.display
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The X server's process id (for CPU accounting in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Copies `text` on this desktop, as an app would (xclip stays as its owner).
    pub fn copy(&self, text: &str) {
        use std::io::Write as _;
        let mut child = Command::new("xclip")
            .args(["-i", "-selection", "clipboard"])
            .env("DISPLAY", &self.display)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("run xclip");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        child.wait().expect("xclip forks and exits");
    }

    /// What Ctrl+V would paste on this desktop: `xclip -o -selection clipboard`.
    pub fn clipboard(&self) -> String {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xclip");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs an X client against this display and asserts it succeeded.
    pub fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(status.success(), "{program} {args:?} failed: {status}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
