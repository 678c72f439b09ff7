//! Frame sources behind one trait: the screen (X11 MIT-SHM + XDamage, X11 GetImage,
//! or xcap), the synthetic test pattern.
//!
//! Platform differences stay inside this module; the pipeline sees only [`FrameSource`]:
//! it asks what may have changed ([`FrameSource::damage`]), then captures just that
//! ([`FrameSource::capture`]) into [`Pixels`] it can hand to encoder threads.

pub mod camera;
pub mod monitors;
mod pattern;
mod placeholder;
mod screen;
mod shm;
pub(crate) mod x11;

use std::sync::Arc;

pub use pattern::{PatternSource, PATTERN_BARS};
pub use placeholder::Placeholder;
pub use screen::ScreenSource;

use crate::config::SourceSpec;
use crate::error::{CaptureError, StartError};

/// Where a source's pixels sit on the desktop, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Left edge in the desktop's coordinate space.
    pub x: i32,
    /// Top edge in the desktop's coordinate space.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A rectangle in a source's own pixels (0,0 is the source's top left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// The whole of a `width`×`height` image.
    pub fn full(width: u32, height: u32) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// Number of pixels.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// One past the right edge.
    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    /// One past the bottom edge.
    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// Whether the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        Rect {
            x,
            y,
            width: self.right().max(other.right()) - x,
            height: self.bottom().max(other.bottom()) - y,
        }
    }

    /// The part of `self` inside `other` (empty if none).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let (x, y) = (self.x.max(other.x), self.y.max(other.y));
        let (r, b) = (
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        );
        if r <= x || b <= y {
            return Rect::default();
        }
        Rect {
            x,
            y,
            width: r - x,
            height: b - y,
        }
    }

    /// Whether `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }
}

/// How the four bytes of a pixel are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// Red, green, blue, alpha.
    Rgba,
    /// Blue, green, red, unused: what an X server with a 24-bit TrueColor visual sends.
    Bgrx,
}

/// What may have changed since the last call to [`FrameSource::damage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Nothing: no capture needed.
    Nothing,
    /// Unknown or everything: capture and compare the whole source.
    All,
    /// These rectangles (a hint: they may over-report, never under-report).
    Rects(Vec<Rect>),
}

/// Where captured bytes live: owned by the capture, or a shared-memory segment that
/// the source will not write again while this value (or a clone of its `Arc`) lives.
pub enum PixelData {
    /// Bytes the capture allocated.
    Owned(Vec<u8>),
    /// An MIT-SHM segment the X server wrote into.
    Shared(Arc<shm::Segment>),
}

/// Captured pixels of one rectangle of the source: `rect.height` rows of `pitch` bytes,
/// four bytes a pixel, the first at `offset`.
pub struct Pixels {
    /// Which part of the source these are.
    pub rect: Rect,
    /// Where the first row starts in the bytes.
    pub offset: usize,
    /// Bytes from one row to the next.
    pub pitch: usize,
    /// Byte order of each pixel.
    pub layout: PixelLayout,
    /// The bytes.
    pub data: PixelData,
}

impl Pixels {
    /// Tightly packed owned pixels covering `rect`.
    pub fn owned(rect: Rect, layout: PixelLayout, bytes: Vec<u8>) -> Pixels {
        Pixels {
            rect,
            offset: 0,
            pitch: rect.width as usize * 4,
            layout,
            data: PixelData::Owned(bytes),
        }
    }

    /// All the bytes, from the first row on.
    pub fn bytes(&self) -> &[u8] {
        let all = match &self.data {
            PixelData::Owned(v) => v.as_slice(),
            PixelData::Shared(s) => s.bytes(),
        };
        all.get(self.offset..).unwrap_or_default()
    }

    /// The bytes of source row `y` (in source coordinates) from column `x`, `width` pixels.
    ///
    /// The caller keeps inside [`Pixels::rect`].
    pub fn row(&self, x: u32, y: u32, width: u32) -> &[u8] {
        let start = (y - self.rect.y) as usize * self.pitch + (x - self.rect.x) as usize * 4;
        &self.bytes()[start..start + width as usize * 4]
    }

    /// Whether the bytes really hold `rect.height` rows of `pitch` (checked once after
    /// capture, so later row reads cannot run past the end).
    pub fn is_complete(&self) -> bool {
        let needed = match self.rect.height {
            0 => 0,
            h => (h as usize - 1) * self.pitch + self.rect.width as usize * 4,
        };
        self.pitch >= self.rect.width as usize * 4 && self.bytes().len() >= needed
    }
}

/// Something that produces frames. Owned by the one pipeline thread.
pub trait FrameSource: Send {
    /// Where the frames sit on the desktop.
    fn geometry(&self) -> Geometry;
    /// Whether this source is a desktop that input can be replayed on.
    fn is_desktop(&self) -> bool;
    /// How this source captures, for the log and `/healthz` (e.g. `x11-shm`).
    fn backend(&self) -> &'static str;
    /// What may have changed since the last call. Sources that cannot tell say
    /// [`Damage::All`]; the pipeline then compares the whole picture.
    fn damage(&mut self) -> Result<Damage, CaptureError> {
        Ok(Damage::All)
    }
    /// Captures `areas` (together no larger than the source), one [`Pixels`] each, in
    /// order; a source may return more than asked (such as the whole source, once).
    /// An error means: skip this frame, try again next tick.
    fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError>;
    /// Whether the source is gone for good (its X server died, its camera was
    /// unplugged): `Some(what happened)`. The pipeline asks after a failed capture and
    /// once a second while idle, and then re-opens the source every second.
    fn lost(&mut self) -> Option<String> {
        None
    }
    /// For a source whose frames already are JPEG (an MJPEG camera): the newest frame,
    /// if new, to be sent byte for byte (`Ok(None)`: nothing new). `None` from a source
    /// that captures pixels.
    fn jpeg(&mut self) -> Option<Result<Option<bytes::Bytes>, CaptureError>> {
        None
    }
    /// Whether the source changed size or place (the screen was resized): the
    /// pipeline then opens it again and follows the new geometry. Asked after each
    /// damage query.
    fn reshaped(&mut self) -> bool {
        false
    }
    /// Nobody watches any more: let go of what costs while idle (a camera). The next
    /// [`FrameSource::damage`] takes it up again.
    fn pause(&mut self) {}
}

/// Opens the source a configuration names, failing early with advice.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn FrameSource>, StartError> {
    Ok(match spec {
        SourceSpec::Screen { monitor } => Box::new(ScreenSource::open(*monitor)?),
        SourceSpec::Pattern { size } => Box::new(PatternSource::new(size.width, size.height)),
        SourceSpec::Camera { camera, wanted } => Box::new(camera::open(camera, *wanted)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_union_and_intersection() {
        let a = Rect {
            x: 10,
            y: 10,
            width: 20,
            height: 20,
        };
        let b = Rect {
            x: 25,
            y: 0,
            width: 10,
            height: 15,
        };
        assert_eq!(
            a.union(&b),
            Rect {
                x: 10,
                y: 0,
                width: 25,
                height: 30
            }
        );
        assert_eq!(
            a.intersect(&b),
            Rect {
                x: 25,
                y: 10,
                width: 5,
                height: 5
            }
        );
        assert!(a.intersect(&Rect::full(5, 5)).is_empty());
        assert!(Rect::full(100, 100).contains(&a));
        assert!(!a.contains(&b));
    }
}
