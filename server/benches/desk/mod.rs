//! The benchmarks' desktop: a realistic 1920×1080 picture on Xvfb, a 640×360 video
//! or full motion played by a second process, and per-process CPU from /proc.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::peer::Killed;
use super::common::Xvfb;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat,
    Rectangle, WindowClass,
};
use x11rb::rust_connection::RustConnection;

pub const W: u32 = 1920;
pub const H: u32 = 1080;
pub const VIDEO: (u32, u32) = (640, 360);
pub const VIDEO_AT: (i16, i16) = (900, 600);
pub const VIDEO_FRAMES: u32 = 90;
pub const SECONDS: u64 = 10;

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Raw BGRX frames from an ffmpeg lavfi source.
pub fn ffmpeg_frames(source: &str, frames: u32, (w, h): (u32, u32)) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i", source])
        .args(["-frames:v", &frames.to_string()])
        .args([
            "-s",
            &format!("{w}x{h}"),
            "-pix_fmt",
            "bgr0",
            "-f",
            "rawvideo",
            "pipe:1",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.len(),
        (w * h * 4 * frames) as usize,
        "ffmpeg {source}"
    );
    out.stdout
}

/// Uploads BGRX pixels into `drawable` at (x, y), in requests that fit.
pub fn put(conn: &RustConnection, drawable: u32, gc: u32, x: i16, y: i16, w: u32, pixels: &[u8]) {
    let rows = ((conn.maximum_request_bytes() - 64) / (w as usize * 4)).max(1);
    for (i, strip) in pixels.chunks(rows * w as usize * 4).enumerate() {
        let h = strip.len() / (w as usize * 4);
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            drawable,
            gc,
            w as u16,
            h as u16,
            x,
            y + (i * rows) as i16,
            0,
            24,
            strip,
        )
        .expect("put_image");
    }
}

pub const WORDS: &[&str] = &[
    "pipeline",
    "capture",
    "damage",
    "tile",
    "encode",
    "viewer",
    "region",
    "frame",
    "keyframe",
    "socket",
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "desktop",
    "browser",
    "latency",
    "bandwidth",
    "refresh",
    "quality",
    "stripe",
    "worker",
    "segment",
    "shared",
    "memory",
];

/// The desktop picture, drawn into a pixmap: a photo-like background, a fractal photo,
/// three windows of text in the server's own font.
pub fn desktop(conn: &RustConnection, root: u32, width: u32) -> u32 {
    let pixmap = conn.generate_id().expect("id");
    conn.create_pixmap(24, pixmap, root, width as u16, H as u16)
        .expect("pixmap");
    let gc = conn.generate_id().expect("id");
    conn.create_gc(gc, pixmap, &CreateGCAux::new()).expect("gc");
    // A wallpaper (smooth), two detailed "photos", three windows of text.
    let background = ffmpeg_frames("gradients=s=1920x1080:n=5:seed=7", 1, (W, H));
    let photo = ffmpeg_frames("mandelbrot=s=800x500:maxiter=400", 1, (800, 500));
    let photo2 = ffmpeg_frames(
        "mandelbrot=s=560x380:start_x=-0.743643887037151:start_y=0.131825904205330:start_scale=0.02",
        1,
        (560, 380),
    );
    for x0 in (0..width).step_by(W as usize) {
        put(conn, pixmap, gc, x0 as i16, 0, W, &background);
        put(conn, pixmap, gc, x0 as i16 + 1040, 60, 800, &photo);
        put(conn, pixmap, gc, x0 as i16 + 1300, 640, 560, &photo2);
        let font = conn.generate_id().expect("id");
        let have_font = conn
            .open_font(font, b"fixed")
            .ok()
            .and_then(|c| c.check().ok())
            .is_some();
        for (i, (wx, wy)) in [(40i16, 40i16), (60, 560), (760, 620)]
            .into_iter()
            .enumerate()
        {
            let (ww, wh) = (660u16, 440u16);
            conn.change_gc(
                gc,
                &x11rb::protocol::xproto::ChangeGCAux::new().foreground(0xf4f4f4),
            )
            .expect("gc");
            conn.poly_fill_rectangle(
                pixmap,
                gc,
                &[Rectangle {
                    x: x0 as i16 + wx,
                    y: wy,
                    width: ww,
                    height: wh,
                }],
            )
            .expect("fill");
            if !have_font {
                continue;
            }
            let text_gc = conn.generate_id().expect("id");
            conn.create_gc(
                text_gc,
                pixmap,
                &CreateGCAux::new()
                    .foreground(0x202020)
                    .background(0xf4f4f4)
                    .font(font),
            )
            .expect("gc");
            for line in 0..32u32 {
                let mut s = String::new();
                let mut k = (line as usize * 7 + i * 13) % WORDS.len();
                while s.len() < 100 {
                    s.push_str(WORDS[k]);
                    s.push(' ');
                    k = (k * 5 + 3) % WORDS.len();
                }
                conn.image_text8(
                    pixmap,
                    text_gc,
                    x0 as i16 + wx + 8,
                    wy + 16 + line as i16 * 13,
                    s.as_bytes(),
                )
                .expect("text");
            }
        }
    }
    conn.flush().expect("flush");
    pixmap
}

/// The animation process: `video` plays a 640×360 clip at 30 fps in a window; `full`
/// slides the whole desktop by 16 px a frame at 60 fps, so every pixel changes.
pub fn animate(scene: &str) {
    let (conn, n) = x11rb::connect(None).expect("connect X");
    let root = conn.setup().roots[n].root;
    let gc = conn.generate_id().expect("id");
    conn.create_gc(gc, root, &CreateGCAux::new()).expect("gc");
    let (size, at, frames, period, source) = match scene {
        "video" => {
            let clip = ffmpeg_frames("mandelbrot=s=640x360:rate=30", VIDEO_FRAMES, VIDEO);
            let strip = conn.generate_id().expect("id");
            conn.create_pixmap(
                24,
                strip,
                root,
                VIDEO.0 as u16,
                (VIDEO.1 * VIDEO_FRAMES) as u16,
            )
            .expect("pixmap");
            put(&conn, strip, gc, 0, 0, VIDEO.0, &clip);
            (
                VIDEO,
                VIDEO_AT,
                VIDEO_FRAMES,
                Duration::from_secs_f64(1.0 / 30.0),
                strip,
            )
        }
        _ => {
            let wide = desktop(&conn, root, 2 * W);
            (
                (W, H),
                (0, 0),
                W / 16,
                Duration::from_secs_f64(1.0 / 60.0),
                wide,
            )
        }
    };
    let window = conn.generate_id().expect("id");
    conn.create_window(
        24,
        window,
        root,
        at.0,
        at.1,
        size.0 as u16,
        size.1 as u16,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().override_redirect(1),
    )
    .expect("window");
    conn.map_window(window).expect("map");
    conn.flush().expect("flush");
    let start = Instant::now();
    for i in 0u64.. {
        let f = (i % u64::from(frames)) as i16;
        let (sx, sy) = if scene == "video" {
            (0, f * VIDEO.1 as i16)
        } else {
            (f * 16, 0)
        };
        conn.copy_area(
            source,
            window,
            gc,
            sx,
            sy,
            0,
            0,
            size.0 as u16,
            size.1 as u16,
        )
        .expect("copy");
        // Wait for the server to have drawn it, then for the next frame's time.
        let _ = conn.get_input_focus().map(|c| c.reply());
        let next = start + period * (i as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// CPU seconds a process used so far (user + system).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat; `after` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds per thread name of a process (threads of one name summed).
pub fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let tid: u32 = task.file_name().to_string_lossy().parse().unwrap_or(0);
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_string();
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let secs = (ticks(11) + ticks(12)) / 100.0;
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => *s += secs,
            None => out.push((name, secs)),
        }
    }
    out
}

pub fn start_animation(display: &str, scene: &str) -> Killed {
    let exe = std::env::current_exe().expect("bench exe");
    let child = Command::new(exe)
        .env("DESKCAST_BENCH_ANIMATE", scene)
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the animation");
    // Give it time to render its clip and start playing.
    std::thread::sleep(Duration::from_secs(4));
    Killed(child)
}

/// Xvfb at 1920×1080 (kept when its last client goes) with the desktop picture as its
/// root background.
pub fn dressed_xvfb() -> Xvfb {
    let x = Xvfb::start_with(W, H, &["-noreset"]);
    let (conn, n) = x11rb::connect(Some(&x.display)).expect("connect X");
    let root = conn.setup().roots[n].root;
    let pixmap = desktop(&conn, root, W);
    conn.change_window_attributes(
        root,
        &ChangeWindowAttributesAux::new().background_pixmap(pixmap),
    )
    .expect("background");
    conn.clear_area(false, root, 0, 0, 0, 0).expect("clear");
    conn.free_pixmap(pixmap).expect("free");
    let _ = conn.get_input_focus().map(|c| c.reply());
    x
}

/// Starts `cmd` (a deskcast) and returns it with the host:port of the URL it prints.
pub fn spawn_deskcast(mut cmd: Command) -> (Killed, String) {
    use std::io::BufRead as _;
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start deskcast");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let host = loop {
        let line = lines
            .next()
            .expect("deskcast printed its URL")
            .expect("read");
        if let Some(i) = line.find("http://") {
            break line[i + 7..].split('/').next().expect("host").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), host)
}
