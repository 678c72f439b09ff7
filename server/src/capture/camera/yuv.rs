//! Raw camera frames to RGBA, for cameras that offer no MJPEG: YUYV (4:2:2, the UVC
//! default) and NV12 (4:2:0). BT.601 with studio range, as UVC cameras send.

use super::super::{PixelLayout, Pixels, Rect};

/// Why a raw buffer cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {format} frame of {width}x{height} needs {needed} bytes, got {got}")]
pub struct ShortFrame {
    format: &'static str,
    width: u32,
    height: u32,
    needed: usize,
    got: usize,
}

fn rgb(y: u8, u: u8, v: u8) -> [u8; 4] {
    let c = (i32::from(y) - 16) * 298;
    let (d, e) = (i32::from(u) - 128, i32::from(v) - 128);
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
        255,
    ]
}

fn check(
    format: &'static str,
    width: u32,
    height: u32,
    needed: usize,
    got: usize,
) -> Result<(), ShortFrame> {
    if got < needed || width == 0 || height == 0 {
        return Err(ShortFrame {
            format,
            width,
            height,
            needed,
            got,
        });
    }
    Ok(())
}

/// YUYV (Y0 U Y1 V for each two pixels; the width is even) to RGBA pixels.
pub fn yuyv(width: u32, height: u32, data: &[u8]) -> Result<Pixels, ShortFrame> {
    let (w, h) = (width as usize, height as usize);
    let needed = if w % 2 == 0 { w * h * 2 } else { usize::MAX };
    check("YUYV", width, height, needed, data.len())?;
    let mut out = Vec::with_capacity(w * h * 4);
    for row in data.chunks_exact(w * 2).take(h) {
        for quad in row.chunks_exact(4) {
            out.extend_from_slice(&rgb(quad[0], quad[1], quad[3]));
            out.extend_from_slice(&rgb(quad[2], quad[1], quad[3]));
        }
    }
    Ok(Pixels::owned(
        Rect::full(width, height),
        PixelLayout::Rgba,
        out,
    ))
}

/// NV12 (a Y plane, then interleaved U V at half resolution) to RGBA pixels.
pub fn nv12(width: u32, height: u32, data: &[u8]) -> Result<Pixels, ShortFrame> {
    let (w, h) = (width as usize, height as usize);
    let chroma_w = w.div_ceil(2) * 2;
    let needed = w * h + chroma_w * h.div_ceil(2);
    check("NV12", width, height, needed, data.len())?;
    let (luma, chroma) = data.split_at(w * h);
    let mut out = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let c = (y / 2) * chroma_w + (x / 2) * 2;
            out.extend_from_slice(&rgb(luma[y * w + x], chroma[c], chroma[c + 1]));
        }
    }
    Ok(Pixels::owned(
        Rect::full(width, height),
        PixelLayout::Rgba,
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: &[u8], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 3)
    }

    // BT.601 studio range: (Y, U, V) of white, black, red, green, blue.
    const WHITE: (u8, u8, u8) = (235, 128, 128);
    const BLACK: (u8, u8, u8) = (16, 128, 128);
    const RED: (u8, u8, u8) = (81, 90, 240);
    const GREEN: (u8, u8, u8) = (145, 54, 34);
    const BLUE: (u8, u8, u8) = (41, 240, 110);

    #[test]
    fn yuyv_converts_to_the_right_colours() {
        // Two rows of 4 pixels: white, black | red, red; green, green | blue, blue.
        let data = [
            WHITE.0, 128, BLACK.0, 128, RED.0, RED.1, RED.0, RED.2, //
            GREEN.0, GREEN.1, GREEN.0, GREEN.2, BLUE.0, BLUE.1, BLUE.0, BLUE.2,
        ];
        let p = yuyv(4, 2, &data).expect("converts");
        assert_eq!(p.rect, Rect::full(4, 2));
        let b = p.bytes();
        assert!(near(&b[0..3], [255, 255, 255]), "{:?}", &b[0..3]);
        assert!(near(&b[4..7], [0, 0, 0]), "{:?}", &b[4..7]);
        assert!(near(&b[8..11], [255, 0, 0]), "{:?}", &b[8..11]);
        assert!(near(&b[16..19], [0, 255, 0]), "{:?}", &b[16..19]);
        assert!(near(&b[24..27], [0, 0, 255]), "{:?}", &b[24..27]);
        assert!(yuyv(4, 2, &data[..15]).is_err(), "short");
    }

    #[test]
    fn nv12_converts_to_the_right_colours() {
        // 2x2 of red: four Y, one U V pair.
        let data = [RED.0, RED.0, RED.0, RED.0, RED.1, RED.2];
        let p = nv12(2, 2, &data).expect("converts");
        for px in p.bytes().chunks(4) {
            assert!(near(px, [255, 0, 0]), "{px:?}");
        }
        assert!(nv12(2, 2, &data[..5]).is_err());
    }
}
