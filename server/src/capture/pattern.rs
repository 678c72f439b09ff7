//! A synthetic moving test pattern: colour bars with a box sweeping across the bottom.
//!
//! The top two thirds hold eight static colour bars whose colours tests check; the
//! bottom third is dark grey with a white box that moves every frame, so every capture
//! differs from the last.

use super::{FrameSource, Geometry, RawFrame};
use crate::error::CaptureError;

/// The bar colours, left to right, as RGB.
pub const PATTERN_BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];

const GROUND: [u8; 3] = [40, 40, 40];
const BOX: [u8; 3] = [255, 255, 255];

/// The test-pattern source.
pub struct PatternSource {
    width: u32,
    height: u32,
    tick: u64,
    /// The static part, rendered once.
    base: Vec<u8>,
}

impl PatternSource {
    /// A pattern of the given size.
    pub fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let mut base = vec![0u8; w * h * 4];
        let bars_end = h * 2 / 3;
        for y in 0..h {
            for x in 0..w {
                let rgb = if y < bars_end {
                    PATTERN_BARS[x * PATTERN_BARS.len() / w]
                } else {
                    GROUND
                };
                let i = (y * w + x) * 4;
                base[i..i + 3].copy_from_slice(&rgb);
                base[i + 3] = 255;
            }
        }
        PatternSource {
            width,
            height,
            tick: 0,
            base,
        }
    }
}

impl FrameSource for PatternSource {
    fn geometry(&self) -> Geometry {
        Geometry {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }
    }

    fn is_desktop(&self) -> bool {
        false
    }

    fn capture(&mut self) -> Result<RawFrame, CaptureError> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rgba = self.base.clone();
        let band = h - h * 2 / 3;
        let side = (band / 2).max(1);
        let top = h * 2 / 3 + (band - side) / 2;
        let travel = w.saturating_sub(side).max(1);
        let step = (w / 64).max(1);
        let left = (self.tick as usize * step) % travel;
        for y in top..(top + side).min(h) {
            for x in left..(left + side).min(w) {
                let i = (y * w + x) * 4;
                rgba[i..i + 3].copy_from_slice(&BOX);
            }
        }
        self.tick += 1;
        Ok(RawFrame {
            width: self.width,
            height: self.height,
            layout: super::PixelLayout::Rgba,
            pixels: rgba,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_where_tests_expect_them_and_frames_move() {
        let mut p = PatternSource::new(320, 240);
        let a = p.capture().expect("capture");
        let b = p.capture().expect("capture");
        assert_ne!(a, b, "consecutive frames must differ");
        for (i, rgb) in PATTERN_BARS.iter().enumerate() {
            let x = (2 * i + 1) * 320 / 16;
            let idx = (60 * 320 + x) * 4;
            assert_eq!(&a.pixels[idx..idx + 3], rgb, "bar {i}");
        }
    }
}
