//! X11 capture on one long-lived connection: MIT-SHM `ShmGetImage` into reused shared
//! segments (the X server writes the pixels straight into our memory), or plain
//! `GetImage` where SHM is refused; XDamage says which parts to look at.
//!
//! Pixels stay in the server's BGRX byte order and go to the encoder unconverted. Used
//! when the root window has a 24-bit TrueColor visual with 32 bits per pixel, least
//! significant byte first (every common X server); anything else falls back to xcap.
//!
//! Damage uses the `NonEmpty` report level: one event when the damage region goes from
//! empty to non-empty, so a still screen costs one non-blocking socket read a tick. On
//! that event, `DamageSubtract` moves the region into an XFixes region and
//! `FetchRegion` reads its rectangles.

use std::sync::Arc;

use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, EventMask, ImageFormat, ImageOrder, Window,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::NONE;

use super::shm::Segment;
use super::{Damage, Geometry, PixelData, PixelLayout, Pixels, Rect};
use crate::error::CaptureError;

/// Which request fetches the pixels.
enum Fetch {
    /// `ShmGetImage` into one of three segments, taking turns: one may be the kept
    /// picture, one being encoded, while the next capture fills the third.
    Shm([Arc<Segment>; 3]),
    /// `GetImage`: the pixels come through the socket.
    GetImage,
}

/// XDamage on the root window.
struct Tracker {
    damage: damage::Damage,
    region: xfixes::Region,
    /// The next call reports everything (the first, or after an error).
    all: bool,
}

/// Captures a rectangle of the X root window.
pub struct X11Capture {
    conn: RustConnection,
    root: Window,
    geometry: Geometry,
    fetch: Fetch,
    tracker: Option<Tracker>,
    /// The root window's size, to tell a RandR resize (ConfigureNotify) from a move.
    root_size: (u16, u16),
    /// The screen changed size since it was opened.
    reshaped: bool,
}

/// Connects to `$DISPLAY`: the connection and its screen (root window, size).
pub fn connect_display() -> Result<(RustConnection, x11rb::protocol::xproto::Screen), String> {
    let (conn, screen) =
        x11rb::connect(None).map_err(|e| format!("cannot connect to the X server; {e}"))?;
    let root = conn
        .setup()
        .roots
        .get(screen)
        .cloned()
        .ok_or("the X server has no such screen")?;
    Ok((conn, root))
}

/// Which capture path to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// MIT-SHM, falling back to `GetImage` when refused.
    Shm,
    /// `GetImage` only.
    GetImage,
}

impl X11Capture {
    /// Connects to `$DISPLAY`; `None` when this is not an X server whose pixels we can
    /// pass through as BGRX.
    pub fn open(geometry: Geometry, prefer: Prefer) -> Option<Self> {
        let (conn, screen_num) = x11rb::connect(None).ok()?;
        let setup = conn.setup();
        let screen = setup.roots.get(screen_num)?;
        let bpp32 = setup
            .pixmap_formats
            .iter()
            .any(|f| f.depth == screen.root_depth && f.bits_per_pixel == 32);
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == screen.root_visual)?;
        let bgrx = visual.red_mask == 0x00ff_0000
            && visual.green_mask == 0x0000_ff00
            && visual.blue_mask == 0x0000_00ff;
        let fits = geometry.x >= 0
            && geometry.y >= 0
            && geometry.x as u32 + geometry.width <= u32::from(screen.width_in_pixels)
            && geometry.y as u32 + geometry.height <= u32::from(screen.height_in_pixels);
        let ok = screen.root_depth == 24
            && bpp32
            && bgrx
            && setup.image_byte_order == ImageOrder::LSB_FIRST
            && fits;
        if !ok {
            return None;
        }
        let root = screen.root;
        let root_size = (screen.width_in_pixels, screen.height_in_pixels);
        // A RandR resize reconfigures the root window: hear of it.
        let heard = conn
            .change_window_attributes(
                root,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
            )
            .ok()
            .and_then(|c| c.check().ok());
        if heard.is_none() {
            tracing::info!("cannot follow screen resizes (no StructureNotify on the root)");
        }
        let fetch = match prefer {
            Prefer::Shm => match shm_segments(&conn, geometry) {
                Ok(segments) => Fetch::Shm(segments),
                Err(why) => {
                    tracing::info!(%why, "MIT-SHM unavailable; capturing with GetImage");
                    Fetch::GetImage
                }
            },
            Prefer::GetImage => Fetch::GetImage,
        };
        let tracker = match tracker(&conn, root) {
            Ok(t) => Some(t),
            Err(why) => {
                tracing::info!(%why, "XDamage unavailable; comparing the whole screen every tick");
                None
            }
        };
        Some(X11Capture {
            conn,
            root,
            geometry,
            fetch,
            tracker,
            root_size,
            reshaped: false,
        })
    }

    /// `x11-shm` or `x11-getimage`, with `+damage` when XDamage is in use.
    pub fn backend(&self) -> &'static str {
        match (&self.fetch, self.tracker.is_some()) {
            (Fetch::Shm(_), true) => "x11-shm+damage",
            (Fetch::Shm(_), false) => "x11-shm",
            (Fetch::GetImage, true) => "x11-getimage+damage",
            (Fetch::GetImage, false) => "x11-getimage",
        }
    }

    /// Whether the screen changed size (a RandR resize) since it was opened: then it
    /// must be opened again, at its new size.
    pub fn reshaped(&self) -> bool {
        self.reshaped
    }

    /// Whether the X server still answers (one round trip).
    pub fn alive(&self) -> bool {
        self.conn
            .get_input_focus()
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some()
    }

    /// What changed since the last call, in source coordinates.
    pub fn damage(&mut self) -> Result<Damage, CaptureError> {
        let err = |e: &dyn std::fmt::Display| CaptureError(format!("x11 damage; {e}"));
        let mut damaged = false;
        while let Some(event) = self.conn.poll_for_event().map_err(|e| err(&e))? {
            match event {
                Event::DamageNotify(_) => damaged = true,
                Event::ConfigureNotify(c)
                    if c.window == self.root && (c.width, c.height) != self.root_size =>
                {
                    self.reshaped = true;
                }
                _ => {}
            }
        }
        let Some(t) = self.tracker.as_mut() else {
            return Ok(Damage::All);
        };
        let notified = t.all || damaged;
        if !notified {
            return Ok(Damage::Nothing);
        }
        let fetched = self
            .conn
            .damage_subtract(t.damage, NONE, t.region)
            .map_err(|e| err(&e))
            .and_then(|_| self.conn.xfixes_fetch_region(t.region).map_err(|e| err(&e)))
            .and_then(|c| c.reply().map_err(|e| err(&e)));
        let reply = match fetched {
            Ok(r) => r,
            Err(e) => {
                t.all = true;
                return Err(e);
            }
        };
        if std::mem::take(&mut t.all) {
            return Ok(Damage::All);
        }
        let g = self.geometry;
        let monitor = Rect {
            x: g.x as u32,
            y: g.y as u32,
            width: g.width,
            height: g.height,
        };
        let rects: Vec<Rect> = reply
            .rectangles
            .iter()
            .filter_map(|r| {
                let (x, y) = (i64::from(r.x).max(0), i64::from(r.y).max(0));
                let right = i64::from(r.x) + i64::from(r.width);
                let bottom = i64::from(r.y) + i64::from(r.height);
                if right <= x || bottom <= y {
                    return None;
                }
                let on_root = Rect {
                    x: x as u32,
                    y: y as u32,
                    width: (right - x) as u32,
                    height: (bottom - y) as u32,
                };
                let mut r = on_root.intersect(&monitor);
                if r.is_empty() {
                    return None;
                }
                r.x -= monitor.x;
                r.y -= monitor.y;
                Some(r)
            })
            .collect();
        Ok(if rects.is_empty() {
            Damage::Nothing
        } else {
            Damage::Rects(rects)
        })
    }

    /// Captures `areas` (source coordinates) of the monitor. With SHM, all of them go
    /// into one free segment one after the other, requested together (one round trip).
    pub fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        let g = self.geometry;
        let monitor = Rect::full(g.width, g.height);
        let areas: Vec<Rect> = areas
            .iter()
            .map(|a| a.intersect(&monitor))
            .filter(|a| !a.is_empty())
            .collect();
        let at = |a: &Rect| {
            (
                (g.x + a.x as i32) as i16,
                (g.y + a.y as i32) as i16,
                a.width as u16,
                a.height as u16,
            )
        };
        let size = |a: &Rect| a.area() as usize * 4;
        match &mut self.fetch {
            Fetch::Shm(segments) => {
                let err = |e: &dyn std::fmt::Display| CaptureError(format!("x11 ShmGetImage; {e}"));
                // A segment nobody else holds: the X server may write into it.
                let Some(segment) = segments.iter().find(|s| Arc::strong_count(s) == 1) else {
                    return Err(CaptureError(
                        "every shared-memory segment is still in use".into(),
                    ));
                };
                let total: usize = areas.iter().map(size).sum();
                if total > segment.bytes().len() {
                    return Err(CaptureError(format!(
                        "{total} bytes asked of a {}-byte segment",
                        segment.bytes().len()
                    )));
                }
                let mut cookies = Vec::with_capacity(areas.len());
                let mut offset = 0;
                for a in &areas {
                    let (x, y, w, h) = at(a);
                    let cookie = self
                        .conn
                        .shm_get_image(
                            self.root,
                            x,
                            y,
                            w,
                            h,
                            !0,
                            ImageFormat::Z_PIXMAP.into(),
                            segment.id(),
                            offset as u32,
                        )
                        .map_err(|e| err(&e))?;
                    cookies.push((cookie, *a, offset));
                    offset += size(a);
                }
                let mut out = Vec::with_capacity(areas.len());
                for (cookie, rect, offset) in cookies {
                    let reply = cookie.reply().map_err(|e| err(&e))?;
                    if reply.size as usize != size(&rect) {
                        return Err(CaptureError(format!(
                            "x11 ShmGetImage wrote {} bytes, expected {}; the screen may have changed size",
                            reply.size,
                            size(&rect)
                        )));
                    }
                    out.push(Pixels {
                        rect,
                        offset,
                        pitch: rect.width as usize * 4,
                        layout: PixelLayout::Bgrx,
                        data: PixelData::Shared(segment.clone()),
                    });
                }
                Ok(out)
            }
            Fetch::GetImage => {
                let err = |e: &dyn std::fmt::Display| CaptureError(format!("x11 GetImage; {e}"));
                let mut cookies = Vec::with_capacity(areas.len());
                for a in &areas {
                    let (x, y, w, h) = at(a);
                    let cookie = self
                        .conn
                        .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
                        .map_err(|e| err(&e))?;
                    cookies.push((cookie, *a));
                }
                let mut out = Vec::with_capacity(areas.len());
                for (cookie, rect) in cookies {
                    let reply = cookie.reply().map_err(|e| err(&e))?;
                    if reply.data.len() != size(&rect) {
                        return Err(CaptureError(format!(
                            "x11 GetImage returned {} bytes, expected {}; the screen may have changed size",
                            reply.data.len(),
                            size(&rect)
                        )));
                    }
                    out.push(Pixels::owned(rect, PixelLayout::Bgrx, reply.data));
                }
                Ok(out)
            }
        }
    }
}

/// Three segments, each big enough for the whole monitor.
fn shm_segments(conn: &RustConnection, g: Geometry) -> Result<[Arc<Segment>; 3], String> {
    let version = conn
        .shm_query_version()
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("MIT-SHM not offered by the X server; {e}"))?;
    if (version.major_version, version.minor_version) < (1, 2) {
        return Err(format!(
            "MIT-SHM {}.{} cannot pass memory files (1.2 needed)",
            version.major_version, version.minor_version
        ));
    }
    let len = (g.width as usize * g.height as usize * 4).max(4);
    Ok([
        Arc::new(Segment::attach(conn, len)?),
        Arc::new(Segment::attach(conn, len)?),
        Arc::new(Segment::attach(conn, len)?),
    ])
}

fn tracker(conn: &RustConnection, root: Window) -> Result<Tracker, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    conn.xfixes_query_version(5, 0)
        .map_err(|x| e(&x))?
        .reply()
        .map_err(|x| format!("XFixes not offered; {x}"))?;
    conn.damage_query_version(1, 1)
        .map_err(|x| e(&x))?
        .reply()
        .map_err(|x| format!("XDamage not offered; {x}"))?;
    let region = conn.generate_id().map_err(|x| e(&x))?;
    conn.xfixes_create_region(region, &[])
        .map_err(|x| e(&x))?
        .check()
        .map_err(|x| e(&x))?;
    let damage = conn.generate_id().map_err(|x| e(&x))?;
    conn.damage_create(damage, root, ReportLevel::NON_EMPTY)
        .map_err(|x| e(&x))?
        .check()
        .map_err(|x| e(&x))?;
    Ok(Tracker {
        damage,
        region,
        all: true,
    })
}
