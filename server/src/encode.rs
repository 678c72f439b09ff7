//! JPEG encoding with libjpeg-turbo: one reusable compressor, 4:2:0 subsampling.

use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use crate::capture::{PixelLayout, RawFrame};
use crate::error::StartError;

/// Encodes RGBA frames to JPEG at a fixed quality.
pub struct Encoder {
    compressor: Compressor,
}

impl Encoder {
    /// An encoder at `quality` (1–100).
    pub fn new(quality: u8) -> Result<Self, StartError> {
        let err = |e: turbojpeg::Error| StartError::Encoder(e.to_string());
        let mut compressor = Compressor::new().map_err(err)?;
        compressor
            .set_quality(i32::from(quality.clamp(1, 100)))
            .map_err(err)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
        Ok(Encoder { compressor })
    }

    /// Encodes one frame to a complete JPEG (SOI … EOI).
    pub fn encode(&mut self, frame: &RawFrame) -> Result<Vec<u8>, turbojpeg::Error> {
        let image = Image {
            pixels: frame.pixels.as_slice(),
            width: frame.width as usize,
            pitch: frame.width as usize * 4,
            height: frame.height as usize,
            format: match frame.layout {
                PixelLayout::Rgba => PixelFormat::RGBA,
                PixelLayout::Bgrx => PixelFormat::BGRX,
            },
        };
        self.compressor.compress_to_vec(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_complete_jpeg_of_the_right_size() {
        let frame = RawFrame {
            width: 64,
            height: 48,
            layout: PixelLayout::Rgba,
            pixels: [200u8, 30, 30, 255].repeat(64 * 48),
        };
        let jpeg = Encoder::new(80)
            .expect("encoder")
            .encode(&frame)
            .expect("encode");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
        let header = turbojpeg::read_header(&jpeg).expect("header");
        assert_eq!((header.width, header.height), (64, 48));
        let img = turbojpeg::decompress(&jpeg, PixelFormat::RGB).expect("decode");
        let px = &img.pixels[(24 * 64 + 32) * 3..][..3];
        assert!(px[0] > 180 && px[1] < 60 && px[2] < 60, "{px:?}");
    }
}
