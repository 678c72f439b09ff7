//! The remote cursor: its shape (XFixes cursor image) and where the pointer is.
//!
//! One thread with its own X connection. XFixes `SelectCursorInput` delivers an event
//! when the cursor's shape changes; only then is the image fetched (`GetCursorImage`).
//! The position is read with `QueryPointer` [`POLL`] times a second while somebody
//! watches, and not at all while nobody does. Both go out on a `watch` channel:
//! sessions turn them into `cursor` and `pointer` messages, and the pipeline draws the
//! cursor into the whole frames of `/video_feed` and `/snapshot.jpg`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use deskcast_shared::ServerMessage;
use tokio::sync::watch;
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::{ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::capture::{Geometry, PixelLayout};

/// How often the pointer position is read while somebody watches.
const POLL: Duration = Duration::from_millis(16);
/// How often to look again whether somebody watches.
const IDLE: Duration = Duration::from_millis(200);
/// Largest cursor image accepted, per side (X cursors are 16–64 px; HiDPI up to 256).
const MAX_SIDE: u16 = 256;

/// One cursor shape.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// XFixes' serial: changes with every new shape.
    pub serial: u32,
    /// Size, pixels.
    pub width: u16,
    /// Size, pixels.
    pub height: u16,
    /// Hotspot, pixels from the top-left corner.
    pub hot_x: u16,
    /// Hotspot, pixels from the top-left corner.
    pub hot_y: u16,
    /// RGBA, not premultiplied, rows top to bottom.
    pub rgba: Vec<u8>,
}

impl Shape {
    /// The shape from XFixes' premultiplied ARGB words.
    pub fn from_argb(
        serial: u32,
        (width, height): (u16, u16),
        (hot_x, hot_y): (u16, u16),
        argb: &[u32],
    ) -> Self {
        let mut rgba = Vec::with_capacity(argb.len() * 4);
        for &p in argb {
            let [a, r, g, b] = p.to_be_bytes();
            // Undo the premultiplication; a fully transparent pixel stays black.
            let un = |c: u8| {
                if a == 0 {
                    0
                } else {
                    ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8
                }
            };
            rgba.extend_from_slice(&[un(r), un(g), un(b), a]);
        }
        Shape {
            serial,
            width,
            height,
            hot_x: hot_x.min(width.saturating_sub(1)),
            hot_y: hot_y.min(height.saturating_sub(1)),
            rgba,
        }
    }

    /// The `cursor` message for this shape.
    pub fn message(&self) -> ServerMessage {
        ServerMessage::Cursor {
            serial: self.serial,
            width: self.width,
            height: self.height,
            hot_x: self.hot_x,
            hot_y: self.hot_y,
            rgba: base64::engine::general_purpose::STANDARD.encode(&self.rgba),
        }
    }

    /// Blends the cursor into `pixels` (a `width`-pixel-wide picture of `layout`, 4
    /// bytes a pixel), with its hotspot at (`x`, `y`) in picture pixels. Parts off the
    /// picture are skipped.
    pub fn draw(&self, pixels: &mut [u8], layout: PixelLayout, width: u32, at: (i32, i32)) {
        let width = width as usize;
        if width == 0 {
            return;
        }
        let height = pixels.len() / 4 / width;
        let (left, top) = (at.0 - i32::from(self.hot_x), at.1 - i32::from(self.hot_y));
        for cy in 0..usize::from(self.height) {
            let Ok(py) = usize::try_from(top + cy as i32) else {
                continue;
            };
            if py >= height {
                break;
            }
            for cx in 0..usize::from(self.width) {
                let Ok(px) = usize::try_from(left + cx as i32) else {
                    continue;
                };
                if px >= width {
                    break;
                }
                let c = (cy * usize::from(self.width) + cx) * 4;
                let [r, g, b, a] = [
                    self.rgba[c],
                    self.rgba[c + 1],
                    self.rgba[c + 2],
                    self.rgba[c + 3],
                ];
                if a == 0 {
                    continue;
                }
                let o = (py * width + px) * 4;
                let order = match layout {
                    PixelLayout::Rgba => [r, g, b],
                    PixelLayout::Bgrx => [b, g, r],
                };
                for (i, src) in order.into_iter().enumerate() {
                    let dst = u32::from(pixels[o + i]);
                    let (src, a) = (u32::from(src), u32::from(a));
                    pixels[o + i] = ((src * a + dst * (255 - a) + 127) / 255) as u8;
                }
            }
        }
    }
}

/// What the cursor looks like and where it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// The current shape; `None` until the first is read.
    pub shape: Option<Arc<Shape>>,
    /// The pointer's hotspot, root-window pixels.
    pub position: Option<(i32, i32)>,
}

impl State {
    /// The shape and where its hotspot is in a `width × height` picture whose top-left
    /// corner is root pixel `origin`; `None` while the pointer is off the picture.
    pub fn drawn_at(
        &self,
        origin: (i32, i32),
        width: u32,
        height: u32,
    ) -> Option<(Arc<Shape>, (i32, i32))> {
        let (x, y) = self.position?;
        let at = (x - origin.0, y - origin.1);
        let inside = u32::try_from(at.0).is_ok_and(|x| x < width)
            && u32::try_from(at.1).is_ok_and(|y| y < height);
        inside.then(|| self.shape.clone().map(|s| (s, at)))?
    }

    /// The pointer as fractions of the streamed `geometry`, when it is over it.
    pub fn fraction(&self, geometry: Geometry) -> Option<(f64, f64)> {
        let (x, y) = self.position?;
        let fx = f64::from(x - geometry.x) / f64::from(geometry.width.max(1));
        let fy = f64::from(y - geometry.y) / f64::from(geometry.height.max(1));
        ((0.0..1.0).contains(&fx) && (0.0..1.0).contains(&fy)).then_some((fx, fy))
    }
}

/// The running cursor watcher.
pub struct Watcher {
    tx: watch::Sender<State>,
}

impl Watcher {
    /// Starts following the cursor of `$DISPLAY`; `None` (logged) when there is no X
    /// server or it lacks XFixes 2. When the X server goes away, the watcher connects
    /// again every second until it is back.
    pub fn start() -> Option<Watcher> {
        let (conn, root) = match open() {
            Ok(c) => c,
            Err(why) => {
                tracing::info!("no remote cursor: {why}");
                return None;
            }
        };
        let (tx, _) = watch::channel(State::default());
        let thread_tx = tx.clone();
        std::thread::Builder::new()
            .name("deskcast-cursor".into())
            .spawn(move || {
                let (mut conn, mut root) = (conn, root);
                loop {
                    follow(&conn, root, &thread_tx);
                    (conn, root) = loop {
                        std::thread::sleep(RECONNECT_EVERY);
                        if let Ok(c) = open() {
                            tracing::info!("remote cursor: X connection back");
                            break c;
                        }
                    };
                }
            })
            .ok()?;
        Some(Watcher { tx })
    }

    /// A watcher fed from elsewhere (a relay's, by the origin over NATS): what is sent
    /// on the returned sender is the cursor.
    pub fn fed() -> (Watcher, watch::Sender<State>) {
        let (tx, _) = watch::channel(State::default());
        (Watcher { tx: tx.clone() }, tx)
    }

    /// The cursor's state as last read.
    pub fn current(&self) -> State {
        self.tx.borrow().clone()
    }

    /// A receiver of the cursor's state; the watcher reads the pointer while any exists.
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.tx.subscribe()
    }
}

/// Resolves when the cursor moved or changed (`true`) or its watcher stopped
/// (`false`); never without a receiver.
pub async fn changed(rx: &mut Option<watch::Receiver<State>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// How often the watcher tries to reach a lost X server again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// Connects to `$DISPLAY` and asks for cursor changes: the connection and its root.
fn open() -> Result<(RustConnection, u32), String> {
    let (conn, screen) = crate::capture::x11::connect_display()?;
    let root = screen.root;
    let supported = conn
        .xfixes_query_version(4, 0)
        .ok()
        .and_then(|c| c.reply().ok())
        .is_some_and(|v| v.major_version >= 2);
    if !supported {
        return Err("the X server lacks XFixes 2".into());
    }
    conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)
        .ok()
        .and_then(|c| c.check().ok())
        .ok_or("the X server refused cursor events")?;
    Ok((conn, root))
}

fn shape(conn: &RustConnection) -> Option<Shape> {
    let img = conn.xfixes_get_cursor_image().ok()?.reply().ok()?;
    if img.width == 0 || img.height == 0 || img.width > MAX_SIDE || img.height > MAX_SIDE {
        return None;
    }
    let n = usize::from(img.width) * usize::from(img.height);
    let pixels = img.cursor_image.get(..n)?;
    Some(Shape::from_argb(
        img.cursor_serial,
        (img.width, img.height),
        (img.xhot, img.yhot),
        pixels,
    ))
}

fn follow(conn: &RustConnection, root: u32, tx: &watch::Sender<State>) {
    let mut fresh_shape = true;
    loop {
        if tx.is_closed() {
            std::thread::sleep(IDLE);
            // Even unwatched, drain events so the connection's queue stays small.
            while let Ok(Some(_)) = conn.poll_for_event() {}
            fresh_shape = true;
            continue;
        }
        loop {
            match conn.poll_for_event() {
                Ok(Some(Event::XfixesCursorNotify(_))) => fresh_shape = true,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(cause = %e, "remote cursor: X connection lost");
                    return;
                }
            }
        }
        let position = conn
            .query_pointer(root)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|p| (i32::from(p.root_x), i32::from(p.root_y)));
        let new_shape = if fresh_shape {
            fresh_shape = false;
            shape(conn).map(Arc::new)
        } else {
            None
        };
        tx.send_if_modified(|st| {
            let mut changed = false;
            if let Some(s) = new_shape {
                if st.shape.as_ref().is_none_or(|old| old.serial != s.serial) {
                    st.shape = Some(s);
                    changed = true;
                }
            }
            if position.is_some() && st.position != position {
                st.position = position;
                changed = true;
            }
            changed
        });
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_argb_becomes_straight_rgba() {
        // Opaque red, half-transparent white (premultiplied: 0x80 each), transparent.
        let s = Shape::from_argb(1, (3, 1), (9, 9), &[0xffff_0000, 0x8080_8080, 0]);
        assert_eq!(s.rgba, vec![255, 0, 0, 255, 255, 255, 255, 128, 0, 0, 0, 0]);
        assert_eq!((s.hot_x, s.hot_y), (2, 0), "hotspot kept on the image");
    }

    #[test]
    fn drawing_blends_at_the_hotspot_and_clips_at_the_edges() {
        // A 2x2 cursor, hotspot at its bottom-right pixel, opaque white.
        let s = Shape::from_argb(1, (2, 2), (1, 1), &[0xffff_ffff; 4]);
        let mut pic = vec![0u8; 4 * 4 * 4];
        s.draw(&mut pic, PixelLayout::Bgrx, 4, (1, 1));
        let white = |x: usize, y: usize| pic[(y * 4 + x) * 4] == 255;
        assert!(white(0, 0) && white(1, 0) && white(0, 1) && white(1, 1));
        assert!(!white(2, 2) && !white(2, 1));
        // At the corner, three of its pixels are off the picture: no panic, one drawn
        // (its three colour bytes; the unused fourth is left alone).
        let mut pic = vec![0u8; 4 * 4 * 4];
        s.draw(&mut pic, PixelLayout::Bgrx, 4, (0, 0));
        assert_eq!(&pic[..4], &[255, 255, 255, 0]);
        assert_eq!(pic.iter().filter(|&&b| b == 255).count(), 3);
        let mut pic = vec![0u8; 4 * 4 * 4];
        s.draw(&mut pic, PixelLayout::Rgba, 4, (10, 10));
        assert!(pic.iter().all(|&b| b == 0), "off the picture");
    }

    #[test]
    fn the_position_maps_to_fractions_of_the_monitor() {
        let g = Geometry {
            x: 100,
            y: 0,
            width: 200,
            height: 100,
        };
        let st = State {
            shape: None,
            position: Some((150, 25)),
        };
        assert_eq!(st.fraction(g), Some((0.25, 0.25)));
        let off = State {
            shape: None,
            position: Some((50, 25)),
        };
        assert_eq!(off.fraction(g), None);
    }
}
