//! A faster path for X11: `GetImage` on one long-lived connection, handing the
//! server's BGRX pixels straight to the encoder with no per-pixel conversion.
//!
//! xcap opens a new connection and converts every pixel on each capture; on a
//! 1920×1080 Xvfb this path takes about half the time. Used when the root window has a
//! 24-bit TrueColor visual with 32 bits per pixel, least significant byte first (every
//! common X server); anything else falls back to xcap.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::{Geometry, PixelLayout, RawFrame};
use crate::error::CaptureError;

/// Captures a rectangle of the X root window.
pub struct X11Capture {
    conn: RustConnection,
    root: Window,
    geometry: Geometry,
}

impl X11Capture {
    /// Connects to `$DISPLAY`; `None` when this is not an X server whose pixels we can
    /// pass through as BGRX.
    pub fn open(geometry: Geometry) -> Option<Self> {
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
        let root = screen.root;
        ok.then_some(X11Capture {
            conn,
            root,
            geometry,
        })
    }

    /// Captures the monitor's rectangle.
    pub fn capture(&mut self) -> Result<RawFrame, CaptureError> {
        let g = self.geometry;
        let err = |e: &dyn std::fmt::Display| CaptureError(format!("x11 GetImage; {e}"));
        let reply = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                g.x as i16,
                g.y as i16,
                g.width as u16,
                g.height as u16,
                !0,
            )
            .map_err(|e| err(&e))?
            .reply()
            .map_err(|e| err(&e))?;
        let expected = g.width as usize * g.height as usize * 4;
        if reply.data.len() != expected {
            return Err(CaptureError(format!(
                "x11 GetImage returned {} bytes, expected {expected}; the screen may have changed size",
                reply.data.len()
            )));
        }
        Ok(RawFrame {
            width: g.width,
            height: g.height,
            layout: PixelLayout::Bgrx,
            pixels: reply.data,
        })
    }
}
