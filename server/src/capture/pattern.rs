//! A synthetic moving test pattern: colour bars with a box sweeping across the bottom.
//!
//! The top two thirds hold eight static colour bars whose colours tests check; the
//! bottom third is dark grey with a white box that moves one step each time the
//! pipeline asks what changed, so every frame differs from the last, in a known place
//! (the box's old and new squares, which is what [`FrameSource::damage`] reports).

use super::{Damage, FrameSource, Geometry, PixelLayout, Pixels, Rect};
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
    /// Whether the first damage (everything) was reported.
    started: bool,
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
            started: false,
            base,
        }
    }

    /// Where the box is at `tick`.
    fn box_at(&self, tick: u64) -> Rect {
        let (w, h) = (self.width, self.height);
        let band = h - h * 2 / 3;
        let side = (band / 2).max(1);
        let top = h * 2 / 3 + (band - side) / 2;
        let travel = w.saturating_sub(side).max(1);
        let step = (w / 64).max(1);
        let left = ((tick * u64::from(step)) % u64::from(travel)) as u32;
        Rect {
            x: left,
            y: top,
            width: side.min(w - left),
            height: side.min(h - top),
        }
    }

    /// Moves the box one step.
    fn advance(&mut self) {
        self.tick += 1;
    }

    /// The whole current picture, tightly packed RGBA.
    pub fn render(&self) -> Vec<u8> {
        let full = Rect::full(self.width, self.height);
        match self.capture_rect(full).data {
            super::PixelData::Owned(v) => v,
            super::PixelData::Shared(_) => unreachable!("the pattern renders into owned memory"),
        }
    }

    fn capture_rect(&self, area: Rect) -> Pixels {
        let area = area.intersect(&Rect::full(self.width, self.height));
        let boxed = self.box_at(self.tick);
        let (aw, w) = (area.width as usize * 4, self.width as usize * 4);
        let mut out = Vec::with_capacity(aw * area.height as usize);
        for y in area.y..area.bottom() {
            let start = y as usize * w + area.x as usize * 4;
            out.extend_from_slice(&self.base[start..start + aw]);
            if y >= boxed.y && y < boxed.bottom() {
                let row = (y - area.y) as usize * aw;
                let cols = boxed.intersect(&Rect {
                    x: area.x,
                    y,
                    width: area.width,
                    height: 1,
                });
                for x in cols.x..cols.right() {
                    let i = row + (x - area.x) as usize * 4;
                    out[i..i + 3].copy_from_slice(&BOX);
                }
            }
        }
        Pixels::owned(area, PixelLayout::Rgba, out)
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

    fn backend(&self) -> &'static str {
        "pattern"
    }

    fn damage(&mut self) -> Result<Damage, CaptureError> {
        if !std::mem::replace(&mut self.started, true) {
            return Ok(Damage::All);
        }
        let before = self.box_at(self.tick);
        self.advance();
        let after = self.box_at(self.tick);
        Ok(Damage::Rects(vec![before, after]))
    }

    fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        Ok(areas.iter().map(|a| self.capture_rect(*a)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_where_tests_expect_them_and_frames_move() {
        let mut p = PatternSource::new(320, 240);
        assert_eq!(
            p.damage().expect("damage"),
            Damage::All,
            "first: everything"
        );
        let a = p.render();
        let Damage::Rects(moved) = p.damage().expect("damage") else {
            panic!("the pattern knows where it changed");
        };
        let b = p.render();
        assert_ne!(a, b, "consecutive frames must differ");
        // Every differing pixel lies in a reported rectangle.
        for (i, (pa, pb)) in a.chunks(4).zip(b.chunks(4)).enumerate() {
            if pa != pb {
                let (x, y) = ((i % 320) as u32, (i / 320) as u32);
                assert!(
                    moved.iter().any(|r| r.contains(&Rect {
                        x,
                        y,
                        width: 1,
                        height: 1
                    })),
                    "change at {x},{y} not in {moved:?}"
                );
            }
        }
        for (i, rgb) in PATTERN_BARS.iter().enumerate() {
            let x = (2 * i + 1) * 320 / 16;
            let idx = (60 * 320 + x) * 4;
            assert_eq!(&a[idx..idx + 3], rgb, "bar {i}");
        }
        // A part of the picture is the same bytes as the whole at that place.
        let part = p.capture_rect(Rect {
            x: 10,
            y: 150,
            width: 100,
            height: 50,
        });
        assert_eq!(part.row(10, 170, 100), &b[(170 * 320 + 10) * 4..][..400]);
    }
}
