//! What really changed: the kept picture, a 64×64 tile compare against it, and the
//! merge of changed tiles into a few rectangles.
//!
//! Damage from the source is a hint (X servers over-report: a window redrawn with the
//! same pixels is damage too); the compare is the truth. As in TigerVNC's
//! `ComparingUpdateTracker`, only tiles whose bytes differ from the kept picture are
//! marked, and the picture is brought up to date as they are found.

use std::sync::Arc;

use crate::capture::{PixelLayout, Pixels, Rect};

/// Side of a compare tile, in pixels (a multiple of the JPEG MCU, 16).
pub const TILE: u32 = 64;

/// The last captured picture of the whole source: its own tightly packed copy, or,
/// right after a capture of the whole screen, that capture itself (no copy: in full
/// motion every frame is such a capture; the copy is made only when a partial capture
/// has to be merged in).
pub struct Picture {
    width: u32,
    height: u32,
    layout: PixelLayout,
    pixels: Vec<u8>,
    /// When set, the picture is this whole-screen capture, not `pixels`.
    whole: Option<Arc<Pixels>>,
}

/// Which tiles changed: one flag per tile, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSet {
    cols: u32,
    rows: u32,
    width: u32,
    height: u32,
    flags: Vec<bool>,
}

impl TileSet {
    /// No tile of a `width`×`height` picture.
    pub fn new(width: u32, height: u32) -> TileSet {
        let (cols, rows) = (width.div_ceil(TILE), height.div_ceil(TILE));
        TileSet {
            cols,
            rows,
            width,
            height,
            flags: vec![false; cols as usize * rows as usize],
        }
    }

    /// Every tile.
    pub fn all(width: u32, height: u32) -> TileSet {
        let mut t = TileSet::new(width, height);
        t.flags.fill(true);
        t
    }

    /// Marks tile (`col`, `row`).
    pub fn set(&mut self, col: u32, row: u32) {
        self.flags[(row * self.cols + col) as usize] = true;
    }

    /// Whether tile (`col`, `row`) is marked.
    pub fn get(&self, col: u32, row: u32) -> bool {
        self.flags[(row * self.cols + col) as usize]
    }

    /// Marks every tile `area` touches.
    pub fn mark(&mut self, area: &Rect) {
        let (cols, rows) = self.span(area);
        for row in rows {
            for col in cols.clone() {
                self.set(col, row);
            }
        }
    }

    /// Marks every tile marked in `other` (of the same size) too.
    pub fn union(&mut self, other: &TileSet) {
        for (a, b) in self.flags.iter_mut().zip(&other.flags) {
            *a |= *b;
        }
    }

    /// Splits the marked tiles in two: those whose rectangle `first` accepts, and the
    /// rest.
    pub fn split(&self, first: impl Fn(&Rect) -> bool) -> (TileSet, TileSet) {
        let mut a = TileSet::new(self.width, self.height);
        let mut b = a.clone();
        for row in 0..self.rows {
            for col in 0..self.cols {
                if self.get(col, row) {
                    if first(&self.tile_rect(col, row)) {
                        a.set(col, row);
                    } else {
                        b.set(col, row);
                    }
                }
            }
        }
        (a, b)
    }

    /// Unmarks every tile.
    pub fn clear(&mut self) {
        self.flags.fill(false);
    }

    /// Whether no tile is marked.
    pub fn is_empty(&self) -> bool {
        !self.flags.contains(&true)
    }

    /// The pixels of tile (`col`, `row`), clipped to the picture.
    pub fn tile_rect(&self, col: u32, row: u32) -> Rect {
        Rect {
            x: col * TILE,
            y: row * TILE,
            width: TILE,
            height: TILE,
        }
        .intersect(&Rect::full(self.width, self.height))
    }

    /// Pixels covered by marked tiles.
    pub fn area(&self) -> u64 {
        let mut sum = 0;
        for row in 0..self.rows {
            for col in 0..self.cols {
                if self.get(col, row) {
                    sum += self.tile_rect(col, row).area();
                }
            }
        }
        sum
    }

    /// Tiles `area` touches, as a column range and a row range.
    fn span(&self, area: &Rect) -> (std::ops::Range<u32>, std::ops::Range<u32>) {
        let area = area.intersect(&Rect::full(self.width, self.height));
        if area.is_empty() {
            return (0..0, 0..0);
        }
        (
            area.x / TILE..area.right().div_ceil(TILE),
            area.y / TILE..area.bottom().div_ceil(TILE),
        )
    }

    /// The whole tiles `area` touches, as one rectangle clipped to the picture: what to
    /// capture so every touched tile can be compared whole.
    pub fn align(&self, area: &Rect) -> Rect {
        let (cols, rows) = self.span(area);
        if cols.is_empty() || rows.is_empty() {
            return Rect::default();
        }
        self.tile_rect(cols.start, rows.start)
            .union(&self.tile_rect(cols.end - 1, rows.end - 1))
    }

    /// Marked tiles merged into at most `max` rectangles: runs of marked tiles in a row,
    /// stacked with the same runs in the rows below; past `max`, neighbours in reading
    /// order are joined into their bounding boxes.
    pub fn rects(&self, max: usize) -> Vec<Rect> {
        let mut done: Vec<Rect> = Vec::new();
        // Rectangles still growing downwards, keyed by their column run.
        let mut open: Vec<(u32, u32, Rect)> = Vec::new();
        for row in 0..self.rows {
            let mut runs = Vec::new();
            let mut col = 0;
            while col < self.cols {
                if self.get(col, row) {
                    let start = col;
                    while col < self.cols && self.get(col, row) {
                        col += 1;
                    }
                    runs.push((start, col));
                } else {
                    col += 1;
                }
            }
            let mut next = Vec::with_capacity(runs.len());
            for (a, b) in runs {
                let band = self.tile_rect(a, row).union(&self.tile_rect(b - 1, row));
                match open.iter().position(|(oa, ob, _)| (*oa, *ob) == (a, b)) {
                    Some(i) => {
                        let (_, _, r) = open.swap_remove(i);
                        next.push((a, b, r.union(&band)));
                    }
                    None => next.push((a, b, band)),
                }
            }
            done.extend(open.drain(..).map(|(_, _, r)| r));
            open = next;
        }
        done.extend(open.into_iter().map(|(_, _, r)| r));
        done.sort_by_key(|r| (r.y, r.x));
        if done.len() > max.max(1) {
            // Join neighbours in reading order into `max` groups.
            let per = done.len().div_ceil(max.max(1));
            done = done
                .chunks(per)
                .map(|group| group.iter().fold(Rect::default(), |acc, r| acc.union(r)))
                .collect();
        }
        done
    }
}

impl Picture {
    /// A black picture; callers treat everything as changed until the first compare.
    pub fn new(width: u32, height: u32, layout: PixelLayout) -> Picture {
        Picture {
            width,
            height,
            layout,
            pixels: vec![0; width as usize * height as usize * 4],
            whole: None,
        }
    }

    /// Row `y` from column `x`, `width` pixels.
    fn row(&self, x: u32, y: u32, width: u32) -> &[u8] {
        match &self.whole {
            Some(p) => p.row(x, y, width),
            None => {
                let at = y as usize * self.width as usize * 4 + x as usize * 4;
                &self.pixels[at..at + width as usize * 4]
            }
        }
    }

    /// Compares every tile `area` touches (which `new` must cover whole; see
    /// [`TileSet::align`]) against the picture, marks the changed ones in `changed`,
    /// and takes them in. With `force`, every touched tile counts as changed.
    ///
    /// A capture of the whole screen becomes the picture as it is; a partial one is
    /// copied in, tile runs at a time.
    pub fn update(&mut self, new: &Arc<Pixels>, area: &Rect, force: bool, changed: &mut TileSet) {
        let screen = Rect::full(self.width, self.height);
        let is_whole = new.rect == screen && area.contains(&screen);
        let (cols, rows) = changed.span(area);
        let mut runs: Vec<(u32, Rect)> = Vec::new();
        for row in rows {
            // Which tiles of this row differ (each compare stops at its first differing row)…
            let mut differs = Vec::with_capacity(cols.len());
            for col in cols.clone() {
                let tile = changed.tile_rect(col, row);
                let d = new.rect.contains(&tile)
                    && (force
                        || (tile.y..tile.bottom()).any(|y| {
                            new.row(tile.x, y, tile.width) != self.row(tile.x, y, tile.width)
                        }));
                if d {
                    changed.set(col, row);
                }
                differs.push(d);
            }
            // …and the runs of neighbouring changed tiles to copy.
            let mut i = 0;
            while i < differs.len() {
                if !differs[i] {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < differs.len() && differs[i] {
                    i += 1;
                }
                let first = changed.tile_rect(cols.start + start as u32, row);
                let last = changed.tile_rect(cols.start + i as u32 - 1, row);
                runs.push((row, first.union(&last)));
            }
        }
        if is_whole {
            self.whole = Some(new.clone());
            return;
        }
        self.own();
        let stride = self.width as usize * 4;
        for (_, run) in runs {
            for y in run.y..run.bottom() {
                let at = y as usize * stride + run.x as usize * 4;
                self.pixels[at..at + run.width as usize * 4]
                    .copy_from_slice(new.row(run.x, y, run.width));
            }
        }
    }

    /// Makes the picture its own copy again (a whole-screen capture it was is let go).
    fn own(&mut self) {
        if let Some(whole) = self.whole.take() {
            let stride = self.width as usize * 4;
            for y in 0..self.height {
                let at = y as usize * stride;
                self.pixels[at..at + stride].copy_from_slice(whole.row(0, y, self.width));
            }
        }
    }

    /// A tightly packed copy of `rect`, to encode while the picture moves on.
    pub fn copy(&self, rect: Rect) -> Pixels {
        let rect = rect.intersect(&Rect::full(self.width, self.height));
        let n = rect.width as usize * 4;
        let mut out = Vec::with_capacity(n * rect.height as usize);
        for y in rect.y..rect.bottom() {
            out.extend_from_slice(self.row(rect.x, y, rect.width));
        }
        Pixels::owned(rect, self.layout, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(rect: Rect, value: u8) -> Pixels {
        Pixels::owned(
            rect,
            PixelLayout::Rgba,
            vec![value; rect.area() as usize * 4],
        )
    }

    #[test]
    fn only_tiles_whose_bytes_differ_are_marked_and_copied() {
        let mut pic = Picture::new(200, 130, PixelLayout::Rgba);
        let mut changed = TileSet::new(200, 130);
        assert_eq!((changed.cols, changed.rows), (4, 3));
        // Damage over everything, but only one pixel really differs.
        let mut frame = solid(Rect::full(200, 130), 0);
        if let crate::capture::PixelData::Owned(v) = &mut frame.data {
            let i = (70 * 200 + 130) * 4;
            v[i] = 9;
        }
        let frame = Arc::new(frame);
        pic.update(&frame, &Rect::full(200, 130), false, &mut changed);
        let marked: Vec<_> = (0..3)
            .flat_map(|r| (0..4).map(move |c| (c, r)))
            .filter(|&(c, r)| changed.get(c, r))
            .collect();
        assert_eq!(marked, vec![(2, 1)], "the pixel at 130,70 is in tile (2,1)");
        assert_eq!(
            changed.rects(8),
            vec![Rect {
                x: 128,
                y: 64,
                width: 64,
                height: 64
            }]
        );
        // The picture took the change: comparing the same frame again finds nothing.
        changed.clear();
        pic.update(&frame, &Rect::full(200, 130), false, &mut changed);
        assert!(changed.is_empty());
        assert_eq!(
            pic.copy(Rect {
                x: 130,
                y: 70,
                width: 1,
                height: 1
            })
            .bytes()[0],
            9
        );
    }

    #[test]
    fn a_whole_screen_capture_becomes_the_picture_and_a_partial_one_is_merged_in() {
        let full = Rect::full(128, 128);
        let mut pic = Picture::new(128, 128, PixelLayout::Rgba);
        let mut changed = TileSet::new(128, 128);
        let whole = Arc::new(solid(full, 5));
        pic.update(&whole, &full, true, &mut changed);
        assert_eq!(Arc::strong_count(&whole), 2, "kept, not copied");
        // A partial capture: one tile of a new colour.
        let part = Rect {
            x: 64,
            y: 0,
            width: 64,
            height: 64,
        };
        changed.clear();
        pic.update(&Arc::new(solid(part, 7)), &part, false, &mut changed);
        assert_eq!(Arc::strong_count(&whole), 1, "let go once merged");
        assert!(changed.get(1, 0) && !changed.get(0, 0));
        let at = |x, y| Rect {
            x,
            y,
            width: 1,
            height: 1,
        };
        assert_eq!(pic.copy(at(10, 10)).bytes()[0], 5);
        assert_eq!(pic.copy(at(70, 10)).bytes()[0], 7);
        // The same whole screen again: only the tile that differs from it counts.
        changed.clear();
        pic.update(&whole, &full, false, &mut changed);
        assert!(changed.get(1, 0) && !changed.get(0, 0) && !changed.get(1, 1));
    }

    #[test]
    fn edge_tiles_are_clipped_and_align_covers_whole_tiles() {
        let set = TileSet::new(200, 130);
        assert_eq!(
            set.tile_rect(3, 2),
            Rect {
                x: 192,
                y: 128,
                width: 8,
                height: 2
            }
        );
        let damage = Rect {
            x: 70,
            y: 10,
            width: 5,
            height: 60,
        };
        assert_eq!(
            set.align(&damage),
            Rect {
                x: 64,
                y: 0,
                width: 64,
                height: 128
            }
        );
        assert!(set.align(&Rect::default()).is_empty());
    }

    #[test]
    fn marked_tiles_merge_into_few_rectangles_that_cover_exactly_them() {
        let mut set = TileSet::new(640, 640);
        // An L shape and a separate square.
        for row in 1..4 {
            set.set(1, row);
            set.set(2, row);
        }
        set.set(3, 3);
        set.set(8, 8);
        let rects = set.rects(16);
        let covered: u64 = rects.iter().map(Rect::area).sum();
        assert_eq!(
            covered,
            set.area(),
            "no tile twice, no unmarked tile: {rects:?}"
        );
        assert_eq!(rects.len(), 3, "{rects:?}");
        // Too many rectangles: neighbours join, and every marked tile stays covered.
        let mut scattered = TileSet::new(640, 640);
        for i in 0..10 {
            scattered.set(i, i);
        }
        let few = scattered.rects(4);
        assert!(few.len() <= 4, "{few:?}");
        for i in 0..10 {
            let t = scattered.tile_rect(i, i);
            assert!(few.iter().any(|r| r.contains(&t)), "tile {i} lost");
        }
    }
}
