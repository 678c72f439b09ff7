//! Cameras end to end, with a stand-in IP camera (these machines have no /dev/video*):
//! a small HTTP server looping known JPEGs as `multipart/x-mixed-replace`, as nearly
//! every IP camera, ustreamer and mjpg-streamer do.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use deskcast_server::capture::camera::CameraSpec;
use deskcast_server::config::SourceSpec;
use deskcast_server::Config;
use deskcast_shared::{ErrorCode, FrameHeader, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const W: usize = 320;
const H: usize = 240;

/// Three known pictures, as the camera encodes them.
fn pictures() -> Vec<Vec<u8>> {
    [[200u8, 40, 40], [40, 200, 40], [40, 40, 200]]
        .iter()
        .map(|rgb| {
            let mut pixels = Vec::with_capacity(W * H * 3);
            for i in 0..W * H {
                // A little texture, so each is a real picture.
                let shade = (i % W / 8) as u8;
                pixels.extend(rgb.iter().map(|c| c.saturating_add(shade)));
            }
            let image = turbojpeg::Image {
                pixels: pixels.as_slice(),
                width: W,
                pitch: W * 3,
                height: H,
                format: turbojpeg::PixelFormat::RGB,
            };
            turbojpeg::compress(image, 85, turbojpeg::Subsamp::Sub2x2)
                .expect("encode")
                .to_vec()
        })
        .collect()
}

/// The stand-in camera on `addr`: every connection gets the pictures in a loop at
/// 30 fps, every other part without a Content-Length (cameras do both). Stops (and
/// drops every connection) when `stop` turns true.
async fn camera(addr: SocketAddr, stop: watch::Receiver<bool>) -> SocketAddr {
    camera_counting(addr, stop, Arc::default()).await
}

/// [`camera`], counting the connections open in `open`.
async fn camera_counting(
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind the camera");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut stop_accept = stop.clone();
        loop {
            let (mut s, _) = tokio::select! {
                c = listener.accept() => c.expect("accept"),
                _ = stop_accept.wait_for(|s| *s) => return,
            };
            let mut stop = stop.clone();
            let open = open.clone();
            tokio::spawn(async move {
                open.fetch_add(1, Ordering::SeqCst);
                let _open = Counted(open);
                let mut req = [0u8; 2048];
                let _ = s.read(&mut req).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=cam\r\nCache-Control: no-store\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let pics = pictures();
                for n in 0.. {
                    let jpeg = &pics[n % pics.len()];
                    let part_head = if n % 2 == 0 {
                        format!(
                            "--cam\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                            jpeg.len()
                        )
                    } else {
                        "--cam\r\nContent-Type: image/jpeg\r\n\r\n".to_string()
                    };
                    let mut part = part_head.into_bytes();
                    part.extend_from_slice(jpeg);
                    part.extend_from_slice(b"\r\n");
                    tokio::select! {
                        r = s.write_all(&part) => if r.is_err() { return },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    tokio::time::sleep(Duration::from_millis(33)).await;
                }
            });
        }
    });
    addr
}

/// Counts down when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn camera_config(addr: SocketAddr) -> Config {
    let mut config = Config::pattern(1, 1);
    config.source = SourceSpec::Camera {
        camera: CameraSpec::Url(format!("http://{addr}/stream")),
        wanted: Default::default(),
    };
    config
}

/// The JPEG a `/ws` frame message carries.
fn jpeg_of(msg: &[u8]) -> Vec<u8> {
    let (header, payload) = FrameHeader::decode(msg).expect("a frame header");
    assert!(header.is_last(), "one rectangle a frame");
    assert_eq!((header.width, header.height), (W as u32, H as u32));
    payload.to_vec()
}

/// The JPEGs of `n` parts of `/video_feed`.
async fn mjpeg_parts(server: &TestServer, n: usize) -> Vec<Vec<u8>> {
    let mut s = mjpeg_connect(server).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut parts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while parts.len() < n {
        assert!(Instant::now() < deadline, "MJPEG parts within 10 s");
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("MJPEG data")
            .expect("read");
        assert!(read > 0, "the stream ended");
        buf.extend_from_slice(&chunk[..read]);
        let Some(head_end) = find(&buf, b"\r\n\r\n") else {
            continue;
        };
        let body = dechunk(&buf[head_end + 4..]);
        // Each part: headers, a blank line, the JPEG, then "\r\n--frame".
        let buf = &body;
        parts.clear();
        let mut at = 0;
        while let Some(start) = find(&buf[at..], b"Content-Type: image/jpeg") {
            let Some(body) = find(&buf[at + start..], b"\r\n\r\n") else {
                break;
            };
            let from = at + start + body + 4;
            let Some(len) = find(&buf[from..], b"\r\n--frame") else {
                break;
            };
            parts.push(buf[from..from + len].to_vec());
            at = from + len;
        }
    }
    parts
}

/// The data of the complete chunks of a `Transfer-Encoding: chunked` body so far.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = find(body, b"\r\n") {
        let size = std::str::from_utf8(&body[..line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size else { break };
        let start = line + 2;
        if size == 0 || body.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The next `/ws` frame's JPEG and, on the way, whether a `source` message said
/// `up` as `want`, within `limit`.
async fn frame_after_source(ws: &mut Ws, want: bool, limit: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(limit, async {
        let mut told = false;
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Text(t) => {
                    if let Ok(ServerMessage::Source { up, .. }) = ServerMessage::parse(t.as_str()) {
                        told |= up == want;
                    }
                }
                Message::Binary(b) if told => return Some(jpeg_of(&b)),
                _ => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_camera_is_passed_through_byte_for_byte_and_survives_going_away() {
    let pics = pictures();
    let (stop_tx, stop) = watch::channel(false);
    let addr = camera("127.0.0.1:0".parse().expect("addr"), stop).await;
    let server = TestServer::start(camera_config(addr)).await;
    let (mut ws, hello) = ws_connect(&server).await;
    let ServerMessage::Hello {
        width,
        height,
        input,
        ..
    } = hello
    else {
        panic!("{hello:?}")
    };
    assert_eq!((width, height), (W as u32, H as u32));
    assert!(!input, "a camera is not a desktop");

    // Every JPEG on /ws, /video_feed and /snapshot.jpg is one the camera sent.
    for _ in 0..10 {
        let jpeg = jpeg_of(&next_frame(&mut ws).await);
        assert!(
            pics.contains(&jpeg),
            "a /ws frame differs from the camera's"
        );
    }
    for part in mjpeg_parts(&server, 5).await {
        assert!(
            pics.contains(&part),
            "a /video_feed part differs from the camera's"
        );
    }
    let (status, _, snapshot) = http_get(server.addr, "/snapshot.jpg", &[]).await;
    assert_eq!(status, 200);
    assert!(pics.contains(&snapshot));
    // Input is refused: there is nothing to control.
    ws.send(Message::text(r#"{"type":"click","x":0.5,"y":0.5}"#))
        .await
        .expect("send");
    loop {
        if let ServerMessage::Error { code, .. } = next_text(&mut ws).await {
            assert_eq!(code, ErrorCode::NoDesktop);
            break;
        }
    }

    // The camera goes away: a placeholder within 2 s, the server lives on.
    let _ = stop_tx.send(true);
    let t0 = Instant::now();
    let placeholder = frame_after_source(&mut ws, false, Duration::from_secs(2))
        .await
        .expect("a placeholder frame within 2 s");
    eprintln!("placeholder after {:?}", t0.elapsed());
    assert!(!pics.contains(&placeholder));
    let (w, h, _) = decode_rgb(&placeholder);
    assert_eq!((w, h), (W, H), "at the camera's size");
    let (status, body, _) = http_get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 503, "{body}");

    // It comes back on the same URL: its frames again within 3 s.
    let (stop_tx, stop) = watch::channel(false);
    camera(addr, stop).await;
    let t0 = Instant::now();
    let back = frame_after_source(&mut ws, true, Duration::from_secs(3))
        .await
        .expect("camera frames within 3 s");
    eprintln!("frames again after {:?}", t0.elapsed());
    assert!(pics.contains(&back));
    let jpeg = jpeg_of(&next_frame(&mut ws).await);
    assert!(pics.contains(&jpeg));
    assert_eq!(http_get(server.addr, "/healthz", &[]).await.0, 200);
    let _ = stop_tx.send(true);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_camera_is_a_clear_error_and_listing_none_is_fine() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .args([
            "--source",
            "camera",
            "--camera",
            "/dev/video97",
            "--port",
            "0",
        ])
        .env_remove("DESKCAST_TOKEN")
        .env_remove("DESKCAST_VIEW_TOKEN")
        .output()
        .await
        .expect("run deskcast");
    assert!(!out.status.success(), "no camera: a non-zero exit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no camera found: "), "{err}");
    assert!(
        err.contains("pass --camera /dev/videoN, or an MJPEG URL"),
        "{err}"
    );
    // A camera URL nobody answers is as clear.
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/stream", dead.local_addr().expect("addr"));
    drop(dead);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .args(["--source", "camera", "--camera", &url, "--port", "0"])
        .output()
        .await
        .expect("run deskcast");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no camera found: cannot connect to"), "{err}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .arg("--list-cameras")
        .output()
        .await
        .expect("run deskcast");
    assert!(out.status.success(), "listing no cameras is not an error");
    let listed = String::from_utf8_lossy(&out.stdout);
    if std::path::Path::new("/dev/video0").exists() {
        assert!(listed.contains("0: "), "{listed}");
    } else {
        assert!(listed.starts_with("no cameras found"), "{listed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_capture_serves_every_viewer_and_the_camera_is_let_go_when_nobody_watches() {
    let (stop_tx, stop) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let addr = camera_counting("127.0.0.1:0".parse().expect("addr"), stop, open.clone()).await;
    let server = TestServer::start(camera_config(addr)).await;
    let (mut a, _) = ws_connect(&server).await;
    let (mut b, _) = ws_connect(&server).await;
    for _ in 0..5 {
        next_frame(&mut a).await;
        next_frame(&mut b).await;
    }
    assert_eq!(
        open.load(Ordering::SeqCst),
        1,
        "one connection to the camera for all"
    );
    // Nobody watches: the pipeline idles and lets go of the camera.
    drop(a);
    drop(b);
    let let_go = wait_until(Duration::from_secs(5), || open.load(Ordering::SeqCst) == 0).await;
    assert!(let_go, "the camera connection closes when nobody watches");
    let captures = server.stats.captures.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.stats.captures.load(Ordering::SeqCst),
        captures,
        "no frames taken while idle"
    );
    // A new viewer gets the camera again.
    let (mut c, _) = ws_connect(&server).await;
    let jpeg = jpeg_of(&next_frame(&mut c).await);
    assert!(pictures().contains(&jpeg));
    let _ = stop_tx.send(true);
    server.shutdown().await;
}
