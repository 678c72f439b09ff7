//! Frame sources behind one trait: the screen (xcap), the synthetic test pattern.
//!
//! Platform differences stay inside this module; the pipeline sees only [`FrameSource`].

mod pattern;
mod screen;

pub use pattern::{PatternSource, PATTERN_BARS};
pub use screen::ScreenSource;

mod x11;

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

/// How the four bytes of a pixel are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// Red, green, blue, alpha.
    Rgba,
    /// Blue, green, red, unused: what an X server with a 24-bit TrueColor visual sends.
    Bgrx,
}

/// One captured image: tightly packed rows of 4-byte pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Byte order of each pixel.
    pub layout: PixelLayout,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

/// Something that produces frames. Owned by the one pipeline thread.
pub trait FrameSource: Send {
    /// Where the frames sit on the desktop.
    fn geometry(&self) -> Geometry;
    /// Whether this source is a desktop that input can be replayed on.
    fn is_desktop(&self) -> bool;
    /// Captures one frame. An error means: skip this frame, try again next tick.
    fn capture(&mut self) -> Result<RawFrame, CaptureError>;
}

/// Opens the source a configuration names, failing early with advice.
pub fn open(spec: SourceSpec) -> Result<Box<dyn FrameSource>, StartError> {
    Ok(match spec {
        SourceSpec::Screen { monitor } => Box::new(ScreenSource::open(monitor)?),
        SourceSpec::Pattern { size } => Box::new(PatternSource::new(size.width, size.height)),
    })
}
