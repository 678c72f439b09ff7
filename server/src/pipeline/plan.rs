//! What a frame sends, decided from the changed tiles: one full frame or a few
//! rectangles, stripes for the encoder pool, and the high-quality refresh of tiles
//! that went still (TigerVNC's `EncodeManager` makes the same choices).

use std::time::{Duration, Instant};

use crate::capture::Rect;
use crate::tiles::{TileSet, TILE};

/// Above this share of the screen changed (percent), one full frame is cheaper than
/// many rectangles.
pub const FULL_FRAME_PERCENT: u64 = 45;

/// Most rectangles one frame is sent as; more are joined into bounding boxes.
pub const MAX_RECTS: usize = 16;

/// Most separate areas captured in one tick; more are joined.
pub const MAX_CAPTURE_AREAS: usize = 8;

/// A tile unchanged this long since it was last sent below [`REFRESH_QUALITY`] is sent
/// once more at that quality.
pub const REFRESH_AFTER: Duration = Duration::from_millis(150);

/// Quality of refreshes and of keyframes for a viewer who joins or catches up.
pub const REFRESH_QUALITY: u8 = 90;

/// Fewest pixels worth a stripe of their own on the encoder pool.
const MIN_STRIPE_PIXELS: u64 = 128 * 1024;

/// Whether so much changed that one full frame should go instead of rectangles.
pub fn is_full(changed: &TileSet, width: u32, height: u32) -> bool {
    changed.area() * 100 > u64::from(width) * u64::from(height) * FULL_FRAME_PERCENT
}

/// The areas to capture for `damage`: whole tiles, joined into at most
/// [`MAX_CAPTURE_AREAS`], or one bounding box when those would overlap into more pixels
/// than the screen has.
pub fn capture_areas(damage: &[Rect], width: u32, height: u32) -> Vec<Rect> {
    let mut touched = TileSet::new(width, height);
    for r in damage {
        let aligned = touched.align(r);
        for row in aligned.y / TILE..aligned.bottom().div_ceil(TILE) {
            for col in aligned.x / TILE..aligned.right().div_ceil(TILE) {
                touched.set(col, row);
            }
        }
    }
    let areas = touched.rects(MAX_CAPTURE_AREAS);
    let total: u64 = areas.iter().map(Rect::area).sum();
    if total > u64::from(width) * u64::from(height) {
        let bbox = areas.iter().fold(Rect::default(), |a, r| a.union(r));
        return vec![bbox];
    }
    areas
}

/// `rect` cut into horizontal stripes for `workers` encoder threads: each stripe at
/// least [`MIN_STRIPE_PIXELS`] (small rectangles stay whole), heights a multiple of 16
/// (the JPEG MCU), so stripes meet on block edges.
pub fn stripes(rect: Rect, workers: usize) -> Vec<Rect> {
    let by_size = rect.area() / MIN_STRIPE_PIXELS;
    let n = (workers as u64).min(by_size).max(1) as u32;
    if n == 1 {
        return vec![rect];
    }
    let step = (rect.height.div_ceil(n)).div_ceil(16) * 16;
    let mut out = Vec::with_capacity(n as usize);
    let mut y = rect.y;
    while y < rect.bottom() {
        let h = step.min(rect.bottom() - y);
        out.push(Rect {
            x: rect.x,
            y,
            width: rect.width,
            height: h,
        });
        y += h;
    }
    out
}

/// When each tile was last sent below [`REFRESH_QUALITY`] (None: sharp, or never sent).
pub struct Refresh {
    lossy: Vec<Option<Instant>>,
    cols: u32,
    rows: u32,
    width: u32,
    height: u32,
}

impl Refresh {
    /// Nothing lossy on a `width`×`height` screen.
    pub fn new(width: u32, height: u32) -> Refresh {
        let (cols, rows) = (width.div_ceil(TILE), height.div_ceil(TILE));
        Refresh {
            lossy: vec![None; cols as usize * rows as usize],
            cols,
            rows,
            width,
            height,
        }
    }

    /// Tiles sent now below the refresh quality: every tile with `all`, else `changed`.
    pub fn sent_lossy(&mut self, changed: &TileSet, all: bool, now: Instant) {
        for row in 0..self.rows {
            for col in 0..self.cols {
                if all || changed.get(col, row) {
                    self.lossy[(row * self.cols + col) as usize] = Some(now);
                }
            }
        }
    }

    /// Tiles due for a refresh at `now`: lossy, unchanged for [`REFRESH_AFTER`], and
    /// not changed in this frame. They count as sharp from here on.
    pub fn due(&mut self, changed: &TileSet, now: Instant) -> TileSet {
        let mut due = TileSet::new(self.width, self.height);
        for row in 0..self.rows {
            for col in 0..self.cols {
                let slot = &mut self.lossy[(row * self.cols + col) as usize];
                if changed.get(col, row) {
                    continue;
                }
                if slot.is_some_and(|t| now.duration_since(t) >= REFRESH_AFTER) {
                    *slot = None;
                    due.set(col, row);
                }
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_split_big_rectangles_on_block_edges_and_leave_small_ones() {
        let full = Rect::full(1920, 1080);
        let s = stripes(full, 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].height % 16, 0);
        assert_eq!(s.iter().map(Rect::area).sum::<u64>(), full.area());
        assert_eq!(s[1].bottom(), 1080);
        let small = Rect {
            x: 64,
            y: 64,
            width: 320,
            height: 240,
        };
        assert_eq!(stripes(small, 4), vec![small]);
        assert_eq!(stripes(full, 1), vec![full]);
    }

    #[test]
    fn capture_areas_cover_the_damage_in_whole_tiles() {
        let damage = [
            Rect {
                x: 5,
                y: 5,
                width: 10,
                height: 10,
            },
            Rect {
                x: 600,
                y: 300,
                width: 100,
                height: 20,
            },
        ];
        let areas = capture_areas(&damage, 1280, 720);
        for d in &damage {
            assert!(areas.iter().any(|a| a.contains(d)), "{d:?} in {areas:?}");
        }
        for a in &areas {
            assert_eq!((a.x % TILE, a.y % TILE), (0, 0));
        }
        let total: u64 = areas.iter().map(Rect::area).sum();
        assert!(
            total <= 64 * 64 + 192 * 64,
            "only the touched tiles: {areas:?}"
        );
    }

    #[test]
    fn a_still_tile_is_refreshed_once_after_the_delay_and_a_changing_one_never() {
        let t0 = Instant::now();
        let mut r = Refresh::new(128, 64);
        let mut changed = TileSet::new(128, 64);
        changed.set(0, 0);
        changed.set(1, 0);
        r.sent_lossy(&changed, false, t0);
        // Tile 1 keeps changing; tile 0 went still.
        let mut still_changing = TileSet::new(128, 64);
        still_changing.set(1, 0);
        assert!(r
            .due(&still_changing, t0 + Duration::from_millis(50))
            .is_empty());
        let later = t0 + REFRESH_AFTER;
        let due = r.due(&still_changing, later);
        assert!(due.get(0, 0) && !due.get(1, 0));
        // The pipeline sends the changing tile again, lossy.
        r.sent_lossy(&still_changing, false, later);
        let none = TileSet::new(128, 64);
        assert!(
            r.due(&none, later + Duration::from_millis(1)).is_empty(),
            "tile 0 is sharp now, tile 1 was just sent"
        );
        let again = r.due(&none, later + REFRESH_AFTER);
        assert!(!again.get(0, 0), "tile 0 refreshed once only");
        assert!(again.get(1, 0), "tile 1 went still too");
        assert!(
            r.due(&none, later + REFRESH_AFTER * 3).is_empty(),
            "both sharp now"
        );
    }

    #[test]
    fn full_frame_above_the_threshold() {
        let mut t = TileSet::new(640, 640);
        for row in 0..4 {
            for col in 0..10 {
                t.set(col, row);
            }
        }
        assert!(!is_full(&t, 640, 640), "40 %");
        t.set(0, 4);
        t.set(1, 4);
        t.set(2, 4);
        t.set(3, 4);
        t.set(4, 4);
        t.set(5, 4);
        assert!(is_full(&t, 640, 640), "46 %");
    }
}
