//! What viewers see while the real source is gone: a frame at the last size that says
//! what happened ("NO SIGNAL", then why, that deskcast retries, and for how long), as
//! ustreamer does, renewed once a second. The pipeline swaps it in for the lost source, so viewers, MJPEG readers and
//! snapshots all get it through the usual path, and swaps the real one back when it
//! returns.

use std::time::Instant;

use font8x8::UnicodeFonts as _;

use super::{Damage, FrameSource, Geometry, PixelLayout, Pixels, Rect};
use crate::error::CaptureError;

const GROUND: [u8; 3] = [24, 24, 32];
const INK: [u8; 3] = [230, 230, 230];
const MUTED: [u8; 3] = [170, 170, 180];

/// A "no signal" picture in place of a lost source, drawn anew once a second with how
/// long the source has been gone, so viewers see it is live.
pub struct Placeholder {
    geometry: Geometry,
    desktop: bool,
    title: String,
    detail: String,
    since: Instant,
    /// The whole seconds shown in the picture now; `None` before the first capture.
    shown: Option<u64>,
}

impl Placeholder {
    /// A placeholder for a source with `geometry`, with a `title` and a line of `detail`.
    pub fn new(geometry: Geometry, desktop: bool, title: &str, detail: &str) -> Self {
        Placeholder {
            geometry,
            desktop,
            title: title.to_string(),
            detail: detail.to_string(),
            since: Instant::now(),
            shown: None,
        }
    }

    /// The picture for `seconds` since the source went away.
    fn draw(&self, seconds: u64) -> Vec<u8> {
        let (w, h) = (self.geometry.width as usize, self.geometry.height as usize);
        let mut image = Vec::with_capacity(w * h * 4);
        for _ in 0..w * h {
            image.extend_from_slice(&[GROUND[0], GROUND[1], GROUND[2], 255]);
        }
        let mut canvas = Canvas {
            pixels: &mut image,
            width: w,
            height: h,
        };
        let title = &self.title;
        let detail = format!("{} ({seconds} s)", self.detail);
        // The title as large as a third of the width allows; the detail smaller.
        let title_scale = (w / 3 / (8 * title.chars().count().max(1))).clamp(1, 12);
        let detail_scale = (w * 9 / 10 / (8 * detail.chars().count().max(1))).clamp(1, 3);
        let total = 8 * title_scale + 4 * detail_scale + 8 * detail_scale;
        let top = h.saturating_sub(total) / 2;
        canvas.text_centred(title, top, title_scale, INK);
        canvas.text_centred(
            &detail,
            top + 8 * title_scale + 4 * detail_scale,
            detail_scale,
            MUTED,
        );
        image
    }

    fn seconds(&self) -> u64 {
        self.since.elapsed().as_secs()
    }
}

struct Canvas<'a> {
    pixels: &'a mut [u8],
    width: usize,
    height: usize,
}

impl Canvas<'_> {
    fn text_centred(&mut self, text: &str, top: usize, scale: usize, rgb: [u8; 3]) {
        let advance = 8 * scale;
        let width = advance * text.chars().count();
        let mut left = self.width.saturating_sub(width) / 2;
        for c in text.chars() {
            let glyph = font8x8::BASIC_FONTS
                .get(c)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.block(left + col * scale, top + row * scale, scale, rgb);
                    }
                }
            }
            left += advance;
        }
    }

    fn block(&mut self, x: usize, y: usize, size: usize, rgb: [u8; 3]) {
        for yy in y..(y + size).min(self.height) {
            for xx in x..(x + size).min(self.width) {
                let i = (yy * self.width + xx) * 4;
                self.pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }
}

impl FrameSource for Placeholder {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn is_desktop(&self) -> bool {
        self.desktop
    }

    fn backend(&self) -> &'static str {
        "placeholder"
    }

    fn damage(&mut self) -> Result<Damage, CaptureError> {
        Ok(if self.shown == Some(self.seconds()) {
            Damage::Nothing
        } else {
            Damage::All
        })
    }

    fn capture(&mut self, _areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        let seconds = self.seconds();
        self.shown = Some(seconds);
        let full = Rect::full(self.geometry.width, self.geometry.height);
        Ok(vec![Pixels::owned(
            full,
            PixelLayout::Rgba,
            self.draw(seconds),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_one_still_frame_with_text_on_it() {
        let g = Geometry {
            x: 0,
            y: 0,
            width: 1280,
            height: 720,
        };
        let mut p = Placeholder::new(g, true, "NO SIGNAL", "the X display :9 is gone");
        assert_eq!(p.damage().expect("damage"), Damage::All);
        let pixels = p.capture(&[Rect::full(1280, 720)]).expect("capture");
        assert_eq!(pixels[0].rect, Rect::full(1280, 720));
        assert!(pixels[0].is_complete());
        let inked = pixels[0]
            .bytes()
            .chunks(4)
            .filter(|px| px[..3] == INK)
            .count();
        assert!(inked > 1000, "the title is drawn large: {inked} pixels");
        assert_eq!(
            p.damage().expect("damage"),
            Damage::Nothing,
            "still within the second"
        );
        p.since -= std::time::Duration::from_secs(1);
        assert_eq!(
            p.damage().expect("damage"),
            Damage::All,
            "renewed each second"
        );
    }
}
