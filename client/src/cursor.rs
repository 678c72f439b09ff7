//! The remote cursor on the page: how large to show a cursor image, and the CSS
//! `cursor` value that shows it with its hotspot.
//!
//! Browsers ignore cursor images larger than 32×32 CSS pixels (Chromium falls back to
//! the default arrow), so a larger remote cursor is scaled down to fit; on a HiDPI
//! screen the image is rendered at device resolution and declared with `image-set`,
//! so it stays sharp at its CSS size.

/// Largest cursor image browsers accept, CSS pixels per side.
pub const MAX_CSS_SIDE: f64 = 32.0;

/// How a cursor image of `width × height` remote pixels is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// CSS pixels per remote cursor pixel (at most 1).
    pub scale: f64,
    /// Size of the bitmap to render, device pixels.
    pub bitmap: (u32, u32),
    /// Hotspot, CSS pixels.
    pub hot: (u32, u32),
    /// Device pixels per CSS pixel the bitmap is declared at.
    pub density: f64,
}

impl Fit {
    /// The fit for a cursor image with hotspot `hot` on a screen with `dpr`.
    pub fn new(width: u16, height: u16, hot: (u16, u16), dpr: f64) -> Option<Fit> {
        if width == 0 || height == 0 {
            return None;
        }
        let dpr = if dpr.is_finite() && dpr >= 1.0 {
            dpr.min(4.0)
        } else {
            1.0
        };
        let side = f64::from(width.max(height));
        let scale = (MAX_CSS_SIDE / side).min(1.0);
        let px = |n: u16| ((f64::from(n) * scale * dpr).round() as u32).max(1);
        let css = |n: u16, size: u16| {
            let max = (f64::from(size) * scale).floor().max(1.0) - 1.0;
            (f64::from(n) * scale).round().clamp(0.0, max.max(0.0)) as u32
        };
        Some(Fit {
            scale,
            bitmap: (px(width), px(height)),
            hot: (css(hot.0, width), css(hot.1, height)),
            density: dpr,
        })
    }

    /// The CSS `cursor` value for the rendered bitmap at `url`.
    pub fn css(&self, url: &str) -> String {
        let (x, y) = self.hot;
        if self.density == 1.0 {
            format!("url(\"{url}\") {x} {y}, default")
        } else {
            format!(
                "image-set(url(\"{url}\") {}x) {x} {y}, default",
                self.density
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cursors_keep_their_size_and_hotspot() {
        let f = Fit::new(16, 24, (4, 9), 1.0).expect("not empty");
        assert_eq!(f.scale, 1.0);
        assert_eq!(f.bitmap, (16, 24));
        assert_eq!(f.hot, (4, 9));
        assert_eq!(f.css("data:x"), "url(\"data:x\") 4 9, default");
    }

    #[test]
    fn large_cursors_shrink_to_32_css_px_with_the_hotspot() {
        let f = Fit::new(64, 64, (32, 63), 1.0).expect("not empty");
        assert_eq!(f.scale, 0.5);
        assert_eq!(f.bitmap, (32, 32));
        assert_eq!(f.hot, (16, 31), "inside the image");
    }

    #[test]
    fn hidpi_renders_device_pixels_declared_with_image_set() {
        let f = Fit::new(24, 24, (12, 12), 2.0).expect("not empty");
        assert_eq!(f.bitmap, (48, 48));
        assert_eq!(f.hot, (12, 12), "hotspots are CSS pixels");
        assert!(f.css("u").starts_with("image-set(url(\"u\") 2x) 12 12"));
        assert_eq!(Fit::new(0, 10, (0, 0), 1.0), None, "a hidden cursor");
    }
}
