//! Making a camera's MJPEG frames valid JPEG files, without decoding them.
//!
//! - **Cut at the end marker.** V4L2 hands back the whole mmap'd buffer, padded to
//!   its size (nokhwa issue #225: 3.7 MB buffers for 18 KB frames), and the padding
//!   may hold an older frame's bytes, end marker included. So the end is found by
//!   walking the segments up to the scan and then the entropy-coded data, where the
//!   first `FF D9` that is not stuffing ends the image.
//! - **Insert the standard Huffman tables** when the frame has none: many UVC cameras
//!   leave them out (Motion-JPEG's "AVI1" convention, JPEG Annex K.3 tables), and a
//!   strict decoder refuses such a file (libjpeg-turbo guesses them; not every viewer
//!   of `/video_feed` does). ustreamer does the same.
//! - **Drop what is not a frame**: no start marker, no scan, no end, under
//!   [`MIN_FRAME`] bytes, or no size.
//!
//! Only the header is read, for the size.

use bytes::{BufMut, Bytes, BytesMut};

/// Smaller than this is no real frame (a camera's first frames are sometimes empty).
pub const MIN_FRAME: usize = 128;

/// A valid JPEG, as sent on: its bytes and the size its header gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jpeg {
    /// SOI … EOI.
    pub bytes: Bytes,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
}

/// Why a buffer is not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFrame {
    /// Under [`MIN_FRAME`] bytes.
    #[error("a frame of {0} bytes is too small")]
    TooSmall(usize),
    /// Not JPEG, or cut short.
    #[error("not a complete JPEG; {0}")]
    Broken(&'static str),
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;

/// Makes `buf` a frame to send (see the module notes).
pub fn fix(buf: &[u8]) -> Result<Jpeg, BadFrame> {
    if buf.len() < MIN_FRAME {
        return Err(BadFrame::TooSmall(buf.len()));
    }
    if buf[..2] != [0xFF, SOI] {
        return Err(BadFrame::Broken("no start marker"));
    }
    let mut at = 2;
    let mut size = None;
    let mut tables = false;
    let sos = loop {
        // Segments: FF, marker, 2-byte length (which counts itself), payload. Fill
        // bytes (more FFs) may come before a marker.
        while buf.get(at) == Some(&0xFF) && buf.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (buf.get(at), buf.get(at + 1)) else {
            return Err(BadFrame::Broken("a segment does not start with a marker"));
        };
        if marker == SOS {
            break at;
        }
        if marker == EOI {
            return Err(BadFrame::Broken("the image ends before its scan"));
        }
        let len = match buf.get(at + 2..at + 4) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err(BadFrame::Broken("cut inside a segment header")),
        };
        if len < 2 || at + 2 + len > buf.len() {
            return Err(BadFrame::Broken("a segment runs past the end"));
        }
        // Baseline, extended, progressive: height then width after the precision.
        if matches!(marker, 0xC0..=0xC2) && len >= 7 {
            let s = &buf[at + 5..at + 9];
            let (h, w) = (
                u32::from(u16::from_be_bytes([s[0], s[1]])),
                u32::from(u16::from_be_bytes([s[2], s[3]])),
            );
            size = Some((w, h));
        }
        tables |= marker == DHT;
        at += 2 + len;
    };
    let Some((width, height)) = size.filter(|&(w, h)| w > 0 && h > 0) else {
        return Err(BadFrame::Broken("no frame header with a size"));
    };
    // The entropy-coded data: FF 00 is a stuffed FF, FF D0–D7 restart markers, FF FF
    // fill; the first other marker ends the scan, and for MJPEG that is EOI.
    let mut i = sos + 2;
    let end = loop {
        let Some(p) = buf[i..].iter().position(|&b| b == 0xFF) else {
            return Err(BadFrame::Broken("no end marker"));
        };
        i += p;
        match buf.get(i + 1) {
            None => return Err(BadFrame::Broken("no end marker")),
            Some(&EOI) => break i + 2,
            Some(0x00 | 0xD0..=0xD7 | 0xFF) => i += 1,
            // Another segment (a second scan of a progressive frame): walk on.
            Some(_) => i += 1,
        }
    };
    let image = &buf[..end];
    let bytes = if tables {
        Bytes::copy_from_slice(image)
    } else {
        let mut out = BytesMut::with_capacity(image.len() + STANDARD_DHT.len());
        out.put_slice(&image[..sos]);
        out.put_slice(&STANDARD_DHT);
        out.put_slice(&image[sos..]);
        out.freeze()
    };
    Ok(Jpeg {
        bytes,
        width,
        height,
    })
}

/// One DHT segment with the four standard tables of JPEG Annex K.3 (luminance and
/// chrominance, DC and AC), as Motion-JPEG assumes when a frame carries none.
const STANDARD_DHT: [u8; 420] = standard_dht();

const fn standard_dht() -> [u8; 420] {
    const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    const AC_LUMA_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    const AC_CHROMA_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
        0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
        0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
        0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    let mut out = [0u8; 420];
    out[0] = 0xFF;
    out[1] = DHT;
    // The length counts itself and the four tables: 2 + 4 × (1 + 16) + 12 + 12 + 162 + 162.
    out[2] = (418u16 >> 8) as u8;
    out[3] = (418u16 & 0xFF) as u8;
    let mut at = 4;
    // Class (0 DC, 1 AC) << 4 | table id.
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_LUMA_BITS, &DC_VALUES),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
        (0x01, &DC_CHROMA_BITS, &DC_VALUES),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    let mut t = 0;
    while t < tables.len() {
        let (class, bits, values) = tables[t];
        out[at] = class;
        at += 1;
        let mut i = 0;
        while i < 16 {
            out[at] = bits[i];
            at += 1;
            i += 1;
        }
        let mut i = 0;
        while i < values.len() {
            out[at] = values[i];
            at += 1;
            i += 1;
        }
        t += 1;
    }
    out
}

/// `rgb` (`w`×`h`, 3 bytes a pixel) as a real JPEG from libjpeg-turbo, which writes
/// the standard tables: for tests.
#[cfg(test)]
pub(super) fn encode_rgb(rgb: &[u8], w: usize, h: usize, quality: i32) -> Vec<u8> {
    let image = turbojpeg::Image {
        pixels: rgb,
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, quality, turbojpeg::Subsamp::Sub2x2)
        .expect("encode")
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured JPEG.
    fn jpeg(w: usize, h: usize) -> Vec<u8> {
        let mut rgb = vec![0u8; w * h * 3];
        for (i, px) in rgb.chunks_mut(3).enumerate() {
            px.copy_from_slice(&[(i % 251) as u8, (i / w % 256) as u8, 90]);
        }
        encode_rgb(&rgb, w, h, 85)
    }

    fn decode(bytes: &[u8]) -> Option<Vec<u8>> {
        turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB)
            .ok()
            .map(|img| img.pixels)
    }

    /// `bytes` without its DHT segments, as a UVC camera sends it.
    fn without_tables(bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes[..2].to_vec();
        let mut at = 2;
        while bytes[at + 1] != SOS {
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            if bytes[at + 1] != DHT {
                out.extend_from_slice(&bytes[at..at + 2 + len]);
            }
            at += 2 + len;
        }
        out.extend_from_slice(&bytes[at..]);
        out
    }

    #[test]
    fn a_padded_buffer_is_cut_at_its_end_marker_even_with_an_old_frame_behind() {
        let old = jpeg(64, 48);
        let new = jpeg(32, 16);
        // The new frame over the start of a buffer that still holds an older, longer one.
        let mut buf = old.clone();
        buf.resize(old.len() + 4096, 0);
        buf[..new.len()].copy_from_slice(&new);
        let fixed = fix(&buf).expect("a frame");
        assert_eq!(
            fixed.bytes.as_ref(),
            new.as_slice(),
            "cut right after its EOI"
        );
        assert_eq!((fixed.width, fixed.height), (32, 16));
        // A frame that needs nothing is passed on byte for byte.
        assert_eq!(fix(&new).expect("a frame").bytes.as_ref(), new.as_slice());
    }

    #[test]
    fn a_frame_without_huffman_tables_gets_the_standard_ones_and_then_decodes() {
        let original = jpeg(48, 32);
        let bare = without_tables(&original);
        assert!(bare.len() < original.len());
        let fixed = fix(&bare).expect("a frame");
        assert_eq!(fixed.bytes.len(), bare.len() + STANDARD_DHT.len());
        assert!(
            fixed
                .bytes
                .windows(STANDARD_DHT.len())
                .any(|w| w == STANDARD_DHT),
            "the tables went in"
        );
        assert_eq!(
            decode(&fixed.bytes),
            decode(&original),
            "the inserted tables are the ones libjpeg-turbo used"
        );
    }

    #[test]
    fn garbage_is_dropped() {
        assert_eq!(fix(&[0xFF, 0xD8, 0xFF]), Err(BadFrame::TooSmall(3)));
        assert!(fix(&[0u8; 4096]).is_err(), "no start marker");
        let good = jpeg(16, 16);
        assert!(fix(&good[..good.len() - 2]).is_err(), "no end marker");
        let mut noise = vec![0xFF, 0xD8];
        noise.extend((0..4000u32).map(|i| (i * 7919 % 256) as u8));
        assert!(fix(&noise).is_err(), "noise after a start marker");
        assert_eq!(STANDARD_DHT.len(), 420);
    }
}
