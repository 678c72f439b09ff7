//! What a frame sends, decided from the changed tiles: one full frame or a few
//! rectangles, stripes for the encoder pool, a lower quality for areas in motion, and
//! the high-quality refresh of tiles that went still (TigerVNC's `EncodeManager` and
//! KasmVNC's dynamic quality make the same choices).

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

/// A tile that changed this many times, each within [`MOTION_GAP`] of the last, is in
/// motion (a video, a scroll, a drag).
pub const MOTION_AFTER: u8 = 3;

/// Longest pause between two changes of a tile in motion.
pub const MOTION_GAP: Duration = Duration::from_millis(150);

/// The quality for areas in motion: three quarters of the stream's (at least 30).
/// Artefacts do not show on a moving picture, and the refresh sharpens it once still.
pub fn motion_quality(quality: u8) -> u8 {
    ((u16::from(quality) * 3 / 4) as u8).max(30).min(quality)
}

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
        touched.mark(r);
    }
    let areas = touched.rects(MAX_CAPTURE_AREAS);
    let total: u64 = areas.iter().map(Rect::area).sum();
    if total > u64::from(width) * u64::from(height) {
        let bbox = areas.iter().fold(Rect::default(), |a, r| a.union(r));
        return vec![bbox];
    }
    areas
}

/// `rect` (whole changed tiles) trimmed to the bounding box of the damage inside it:
/// damage never under-reports, so every changed pixel stays in, and the static rim of
/// the tiles around a window or video is not encoded again every frame.
pub fn trim(rect: Rect, damage: &[Rect]) -> Rect {
    let inside = damage
        .iter()
        .map(|d| d.intersect(&rect))
        .filter(|d| !d.is_empty())
        .fold(Rect::default(), |acc, d| acc.union(&d));
    if inside.is_empty() {
        rect
    } else {
        inside
    }
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

/// Per tile: when it was last sent below [`REFRESH_QUALITY`] (None: sharp, or never
/// sent), and how it has been changing.
pub struct Tiles {
    lossy: Vec<Option<Instant>>,
    /// When the tile last changed, and how many changes in a row came within
    /// [`MOTION_GAP`] of each other.
    motion: Vec<(Option<Instant>, u8)>,
    /// The last update that sent the tile: a viewer at update N catches up on the
    /// tiles sent after N.
    sent_in: Vec<u64>,
    cols: u32,
    rows: u32,
    width: u32,
    height: u32,
}

impl Tiles {
    /// Nothing lossy, nothing moving, on a `width`×`height` screen.
    pub fn new(width: u32, height: u32) -> Tiles {
        let (cols, rows) = (width.div_ceil(TILE), height.div_ceil(TILE));
        let n = cols as usize * rows as usize;
        Tiles {
            lossy: vec![None; n],
            motion: vec![(None, 0); n],
            sent_in: vec![0; n],
            cols,
            rows,
            width,
            height,
        }
    }

    fn index(&self, col: u32, row: u32) -> usize {
        (row * self.cols + col) as usize
    }

    /// The tiles `rect` touches.
    fn touched(&self, rect: &Rect) -> impl Iterator<Item = (u32, u32)> {
        let r = rect.intersect(&Rect::full(self.width, self.height));
        let (c0, c1) = (r.x / TILE, r.right().div_ceil(TILE));
        let (r0, r1) = (r.y / TILE, r.bottom().div_ceil(TILE));
        (r0..r1).flat_map(move |row| (c0..c1).map(move |col| (col, row)))
    }

    /// The tiles in `changed` changed at `now`.
    pub fn changed(&mut self, changed: &TileSet, now: Instant) {
        for row in 0..self.rows {
            for col in 0..self.cols {
                if !changed.get(col, row) {
                    continue;
                }
                let i = self.index(col, row);
                let (last, count) = self.motion[i];
                let in_a_row = last.is_some_and(|t| now.duration_since(t) <= MOTION_GAP);
                self.motion[i] = (
                    Some(now),
                    if in_a_row { count.saturating_add(1) } else { 1 },
                );
            }
        }
    }

    /// Whether most of the tiles `rect` touches are in motion at `now`.
    pub fn is_moving(&self, rect: &Rect, now: Instant) -> bool {
        let (mut moving, mut all) = (0, 0);
        for (col, row) in self.touched(rect) {
            let (last, count) = self.motion[self.index(col, row)];
            all += 1;
            if count >= MOTION_AFTER && last.is_some_and(|t| now.duration_since(t) <= MOTION_GAP) {
                moving += 1;
            }
        }
        all > 0 && moving * 2 >= all
    }

    /// `rect` was sent at `quality` at `now`: below the refresh quality, its tiles
    /// are due for a refresh once they stay still.
    pub fn sent(&mut self, rect: &Rect, quality: u8, now: Instant) {
        if quality >= REFRESH_QUALITY {
            return;
        }
        let touched: Vec<_> = self.touched(rect).collect();
        for (col, row) in touched {
            let i = self.index(col, row);
            self.lossy[i] = Some(now);
        }
    }

    /// `rect` went out in update `seq`.
    pub fn sent_in(&mut self, rect: &Rect, seq: u64) {
        let touched: Vec<_> = self.touched(rect).collect();
        for (col, row) in touched {
            let i = self.index(col, row);
            self.sent_in[i] = seq;
        }
    }

    /// The tiles sent in updates after `seq`: what a viewer at `seq` lacks.
    pub fn sent_after(&self, seq: u64) -> TileSet {
        let mut out = TileSet::new(self.width, self.height);
        for row in 0..self.rows {
            for col in 0..self.cols {
                if self.sent_in[self.index(col, row)] > seq {
                    out.set(col, row);
                }
            }
        }
        out
    }

    /// Tiles due for a refresh at `now`: lossy, unchanged for [`REFRESH_AFTER`], and
    /// not changed in this frame. They count as sharp from here on.
    pub fn due(&mut self, changed: &TileSet, now: Instant) -> TileSet {
        let mut due = TileSet::new(self.width, self.height);
        for row in 0..self.rows {
            for col in 0..self.cols {
                let i = self.index(col, row);
                let slot = &mut self.lossy[i];
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

    fn tile(col: u32, row: u32) -> Rect {
        Rect {
            x: col * TILE,
            y: row * TILE,
            width: TILE,
            height: TILE,
        }
    }

    #[test]
    fn a_still_tile_is_refreshed_once_after_the_delay_and_a_changing_one_never() {
        let t0 = Instant::now();
        let mut t = Tiles::new(128, 64);
        let both = Rect::full(128, 64);
        t.sent(&both, 80, t0);
        // Tile 1 keeps changing; tile 0 went still.
        let mut still_changing = TileSet::new(128, 64);
        still_changing.set(1, 0);
        assert!(t
            .due(&still_changing, t0 + Duration::from_millis(50))
            .is_empty());
        let later = t0 + REFRESH_AFTER;
        let due = t.due(&still_changing, later);
        assert!(due.get(0, 0) && !due.get(1, 0));
        // The pipeline sends the changing tile again, lossy.
        t.sent(&tile(1, 0), 80, later);
        let none = TileSet::new(128, 64);
        assert!(
            t.due(&none, later + Duration::from_millis(1)).is_empty(),
            "tile 0 is sharp now, tile 1 was just sent"
        );
        let again = t.due(&none, later + REFRESH_AFTER);
        assert!(!again.get(0, 0), "tile 0 refreshed once only");
        assert!(again.get(1, 0), "tile 1 went still too");
        assert!(
            t.due(&none, later + REFRESH_AFTER * 3).is_empty(),
            "both sharp now"
        );
        // Sent sharp: nothing to refresh.
        t.sent(&both, REFRESH_QUALITY, later);
        assert!(t.due(&none, later + REFRESH_AFTER * 9).is_empty());
    }

    #[test]
    fn a_tile_changing_frame_after_frame_is_in_motion_until_it_pauses() {
        let t0 = Instant::now();
        let mut t = Tiles::new(128, 64);
        let mut one = TileSet::new(128, 64);
        one.set(0, 0);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        t.changed(&one, ms(0));
        t.changed(&one, ms(33));
        assert!(
            !t.is_moving(&tile(0, 0), ms(40)),
            "two changes are not motion yet"
        );
        t.changed(&one, ms(66));
        assert!(t.is_moving(&tile(0, 0), ms(70)));
        assert!(!t.is_moving(&tile(1, 0), ms(70)), "its neighbour is still");
        assert!(
            t.is_moving(&Rect::full(128, 64), ms(70)),
            "half of the pair moves"
        );
        assert!(
            !t.is_moving(&tile(0, 0), ms(66) + MOTION_GAP * 2),
            "it paused"
        );
        // A 30 fps video seen at 60 ticks a second is motion too: gaps of two ticks.
        t.changed(&one, ms(1000));
        t.changed(&one, ms(1033));
        t.changed(&one, ms(1066));
        assert!(t.is_moving(&tile(0, 0), ms(1080)));
        assert_eq!(motion_quality(80), 60);
        assert_eq!(motion_quality(20), 20, "never above the stream's");
    }

    #[test]
    fn a_viewer_behind_catches_up_on_exactly_the_tiles_sent_since() {
        let mut t = Tiles::new(256, 128);
        t.sent_in(&Rect::full(256, 128), 1);
        t.sent_in(&tile(1, 0), 5);
        t.sent_in(&tile(3, 1), 7);
        let behind = t.sent_after(4);
        assert!(behind.get(1, 0) && behind.get(3, 1));
        assert_eq!(behind.area(), 2 * u64::from(TILE * TILE));
        assert!(t.sent_after(7).is_empty());
        assert_eq!(t.sent_after(0).area(), 256 * 128);
    }

    #[test]
    fn rectangles_are_trimmed_to_the_damage_inside_them() {
        let tiles = Rect {
            x: 896,
            y: 576,
            width: 704,
            height: 384,
        };
        let video = Rect {
            x: 900,
            y: 600,
            width: 640,
            height: 360,
        };
        let elsewhere = Rect {
            x: 10,
            y: 10,
            width: 5,
            height: 5,
        };
        assert_eq!(trim(tiles, &[video, elsewhere]), video);
        assert_eq!(
            trim(tiles, &[elsewhere]),
            tiles,
            "no damage inside: untouched"
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
