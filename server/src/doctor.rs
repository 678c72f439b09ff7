//! `deskcast --check`: what works on this machine, and what to do about what does not.

use std::fmt::Write as _;

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::ConnectionExt as _;

use crate::capture::monitors::{self, MonitorChoice};
use crate::capture::FrameSource as _;
use crate::capture::ScreenSource;
use crate::config::{Args, TlsSource};

/// The report, and whether the desktop can be streamed and controlled.
pub fn report(args: &Args) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let _ = writeln!(out, "deskcast {} --check", env!("CARGO_PKG_VERSION"));
    let display = std::env::var("DISPLAY").unwrap_or_default();
    if display.is_empty() {
        let _ = writeln!(
            out,
            "display: MISSING: DISPLAY is unset; run inside your desktop session (or set \
             DISPLAY=:0), or stream a camera or the test pattern (--source camera|pattern)"
        );
        ok = false;
    } else {
        match x11rb::connect(None) {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "display: MISSING: cannot reach the X server {display}; {e}"
                );
                ok = false;
            }
            Ok((conn, screen)) => {
                let root = &conn.setup().roots[screen];
                let _ = writeln!(
                    out,
                    "display: {display}, screen {}x{} (vendor {})",
                    root.width_in_pixels,
                    root.height_in_pixels,
                    String::from_utf8_lossy(&conn.setup().vendor)
                );
                let has = |name: &str| {
                    conn.query_extension(name.as_bytes())
                        .ok()
                        .and_then(|c| c.reply().ok())
                        .is_some_and(|r| r.present)
                };
                let yes = |b: bool| if b { "yes" } else { "no" };
                let _ = writeln!(
                    out,
                    "extensions: MIT-SHM {} (fast capture), DAMAGE {} (capture only what \
                     changed), XFIXES {} (cursor, clipboard), RANDR {} (monitors, resizes)",
                    yes(has("MIT-SHM")),
                    yes(has("DAMAGE")),
                    yes(has("XFIXES")),
                    yes(has("RANDR"))
                );
                let xtest = has("XTEST");
                let _ = writeln!(
                    out,
                    "input: {}",
                    if xtest {
                        "XTEST present: the mouse and keyboard can be replayed"
                    } else {
                        "MISSING: no XTEST extension: the desktop can be watched, not controlled"
                    }
                );
                ok &= xtest;
                match ScreenSource::open(MonitorChoice::Index(0)) {
                    Ok(source) => {
                        let _ = writeln!(out, "capture: {}", source.backend());
                    }
                    Err(e) => {
                        let _ = writeln!(out, "capture: MISSING: {e}");
                        ok = false;
                    }
                }
                if let Ok(text) = monitors::print_list() {
                    let _ = write!(out, "monitors:\n{}", indent(&text));
                }
            }
        }
    }
    let cameras = crate::capture::camera::v4l::list();
    let _ = write!(out, "cameras:\n{}", indent(&cameras));
    let tls = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => {
            match crate::tls::load(
                &TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                args.bind,
                &[],
            ) {
                Ok(t) => format!("certificate loads, SHA-256 {}", t.fingerprint),
                Err(e) => {
                    ok = false;
                    format!("MISSING: {e}")
                }
            }
        }
        (_, _, true) => "a self-signed certificate is made at start".into(),
        _ => {
            "off (fine on loopback; add --tls-self-signed or --tls-cert/--tls-key otherwise)".into()
        }
    };
    let _ = writeln!(out, "tls: {tls}");
    let _ = writeln!(
        out,
        "{}",
        if ok {
            "ready: `deskcast` streams this desktop"
        } else {
            "not ready: see MISSING above"
        }
    );
    (out, ok)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
