//! Letterboxing and coordinate mapping: page (CSS) pixels → fractions of the drawn image.
//!
//! The canvas fills the window; the streamed image is drawn inside it as large as it
//! fits with its aspect ratio kept, centred, with black bars on the other two sides.
//! The canvas's backing store has `CSS size × devicePixelRatio` pixels so the image is
//! sharp on HiDPI screens. The drawn rectangle is computed once, in whole backing
//! pixels, and input is mapped through that same rectangle, so a fraction always names
//! the image pixel that is drawn under the pointer.

/// An axis-aligned rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width; positive for a rectangle an image is drawn into.
    pub width: f64,
    /// Height; positive for a rectangle an image is drawn into.
    pub height: f64,
}

impl Rect {
    /// The fraction (0..=1 on both axes) of this rectangle at point (`px`, `py`),
    /// or `None` when the point lies outside it (on a letterbox bar).
    pub fn fraction(&self, px: f64, py: f64) -> Option<(f64, f64)> {
        let (fx, fy) = self.raw_fraction(px, py)?;
        ((0.0..=1.0).contains(&fx) && (0.0..=1.0).contains(&fy)).then_some((fx, fy))
    }

    /// Like [`Rect::fraction`], but a point outside is moved to the nearest edge:
    /// a drag that leaves the image keeps following along its border.
    pub fn fraction_clamped(&self, px: f64, py: f64) -> Option<(f64, f64)> {
        let (fx, fy) = self.raw_fraction(px, py)?;
        Some((fx.clamp(0.0, 1.0), fy.clamp(0.0, 1.0)))
    }

    fn raw_fraction(&self, px: f64, py: f64) -> Option<(f64, f64)> {
        let usable = self.width > 0.0 && self.height > 0.0 && px.is_finite() && py.is_finite();
        usable.then(|| ((px - self.x) / self.width, (py - self.y) / self.height))
    }
}

/// The largest rectangle with the image's aspect ratio that fits in an
/// `outer_width × outer_height` area, centred, in whole pixels.
///
/// `None` when either size is empty (nothing can be drawn).
pub fn letterbox(
    outer_width: u32,
    outer_height: u32,
    image_width: u32,
    image_height: u32,
) -> Option<Rect> {
    if outer_width == 0 || outer_height == 0 || image_width == 0 || image_height == 0 {
        return None;
    }
    let (ow, oh) = (f64::from(outer_width), f64::from(outer_height));
    let (iw, ih) = (f64::from(image_width), f64::from(image_height));
    let scale = (ow / iw).min(oh / ih);
    let width = (iw * scale).round().clamp(1.0, ow);
    let height = (ih * scale).round().clamp(1.0, oh);
    Some(Rect {
        x: ((ow - width) / 2.0).floor(),
        y: ((oh - height) / 2.0).floor(),
        width,
        height,
    })
}

/// Backing-store size of a canvas shown at `css_width × css_height` CSS pixels on a
/// screen with `device_pixel_ratio`: one backing pixel per device pixel, at least 1×1.
pub fn backing_size(css_width: f64, css_height: f64, device_pixel_ratio: f64) -> (u32, u32) {
    let dpr = if device_pixel_ratio.is_finite() && device_pixel_ratio > 0.0 {
        device_pixel_ratio
    } else {
        1.0
    };
    let px = |css: f64| {
        if css.is_finite() {
            // In range after the clamp, so the cast cannot truncate.
            (css * dpr).round().clamp(1.0, 32_768.0) as u32
        } else {
            1
        }
    };
    (px(css_width), px(css_height))
}

/// How the canvas is laid out right now: its CSS size, its backing size and where the
/// image is drawn. Rebuilt on resize and when the image size changes.
///
/// A view may be zoomed in (a pinch on a phone): the image is then drawn larger than
/// the canvas, panned so that some part of it fills the canvas, and input maps through
/// that same larger rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct View {
    css_width: f64,
    css_height: f64,
    backing: (u32, u32),
    /// The letterboxed rectangle at zoom 1.
    fitted: Option<Rect>,
    drawn: Option<Rect>,
}

/// Most a view zooms in.
pub const MAX_ZOOM: f64 = 8.0;

impl View {
    /// Lays out a canvas of `css_width × css_height` CSS pixels at `device_pixel_ratio`,
    /// showing an image of `image` pixels (`None` before the size is known).
    pub fn new(
        css_width: f64,
        css_height: f64,
        device_pixel_ratio: f64,
        image: Option<(u32, u32)>,
    ) -> Self {
        let backing = backing_size(css_width, css_height, device_pixel_ratio);
        let drawn = image.and_then(|(w, h)| letterbox(backing.0, backing.1, w, h));
        View {
            css_width,
            css_height,
            backing,
            fitted: drawn,
            drawn,
        }
    }

    /// How far this view is zoomed in: 1 when the whole image fits.
    pub fn zoom(&self) -> f64 {
        match (self.fitted, self.drawn) {
            (Some(f), Some(d)) if f.width > 0.0 => d.width / f.width,
            _ => 1.0,
        }
    }

    /// This view zoomed to `zoom` (1 to [`MAX_ZOOM`]) with the image fraction `at`
    /// under the CSS point `anchor`, as near as the edges allow: a zoomed image always
    /// covers the canvas, and a fitted one is centred.
    pub fn zoomed(&self, zoom: f64, anchor: (f64, f64), at: (f64, f64)) -> View {
        let (Some(fitted), Some((ax, ay))) = (self.fitted, self.backing_point(anchor.0, anchor.1))
        else {
            return *self;
        };
        let zoom = if zoom.is_finite() {
            zoom.clamp(1.0, MAX_ZOOM)
        } else {
            1.0
        };
        let (width, height) = (fitted.width * zoom, fitted.height * zoom);
        let place = |anchor: f64, at: f64, size: f64, outer: f64| {
            if size <= outer {
                // Not wider than the canvas on this axis: centred, as when fitted.
                ((outer - size) / 2.0).floor()
            } else {
                (anchor - at * size).clamp(outer - size, 0.0)
            }
        };
        let x = place(ax, at.0, width, f64::from(self.backing.0));
        let y = place(ay, at.1, height, f64::from(self.backing.1));
        View {
            drawn: Some(Rect {
                x,
                y,
                width,
                height,
            }),
            ..*self
        }
    }

    /// This view (a new layout) with the zoom of `previous`, keeping the image point
    /// that was at the canvas centre there.
    pub fn keeping_zoom_of(&self, previous: &View) -> View {
        let zoom = previous.zoom();
        if zoom <= 1.0 {
            return *self;
        }
        let (pw, ph) = previous.css_size();
        let Some(at) = previous.fraction_clamped(pw / 2.0, ph / 2.0) else {
            return *self;
        };
        self.zoomed(zoom, (self.css_width / 2.0, self.css_height / 2.0), at)
    }

    /// The CSS point (relative to the canvas) where the image fraction `at` is drawn.
    pub fn css_point(&self, at: (f64, f64)) -> Option<(f64, f64)> {
        let d = self.drawn?;
        if !(self.css_width > 0.0 && self.css_height > 0.0) {
            return None;
        }
        let sx = f64::from(self.backing.0) / self.css_width;
        let sy = f64::from(self.backing.1) / self.css_height;
        Some(((d.x + at.0 * d.width) / sx, (d.y + at.1 * d.height) / sy))
    }

    /// The canvas's CSS size this view was made for.
    pub fn css_size(&self) -> (f64, f64) {
        (self.css_width, self.css_height)
    }

    /// Size to give the canvas's backing store (`canvas.width`, `canvas.height`).
    pub fn backing_size(&self) -> (u32, u32) {
        self.backing
    }

    /// Where to draw the image, in backing pixels; `None` before the image size is known.
    pub fn drawn(&self) -> Option<Rect> {
        self.drawn
    }

    /// The image fraction under the CSS-pixel point (`css_x`, `css_y`) relative to the
    /// canvas's top-left corner; `None` on a letterbox bar or before the image size is known.
    pub fn fraction(&self, css_x: f64, css_y: f64) -> Option<(f64, f64)> {
        let (bx, by) = self.backing_point(css_x, css_y)?;
        self.drawn?.fraction(bx, by)
    }

    /// Like [`View::fraction`], but points off the image are clamped onto its edge.
    /// `None` only before the image size is known.
    pub fn fraction_clamped(&self, css_x: f64, css_y: f64) -> Option<(f64, f64)> {
        let (bx, by) = self.backing_point(css_x, css_y)?;
        self.drawn?.fraction_clamped(bx, by)
    }

    fn backing_point(&self, css_x: f64, css_y: f64) -> Option<(f64, f64)> {
        if !(self.css_width > 0.0 && self.css_height > 0.0) {
            return None;
        }
        let sx = f64::from(self.backing.0) / self.css_width;
        let sy = f64::from(self.backing.1) / self.css_height;
        Some((css_x * sx, css_y * sy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn wide_window_gets_bars_left_and_right() {
        let r = letterbox(1000, 500, 1280, 720).expect("sizes are non-zero");
        // 1280x720 scaled by 500/720 → 889x500, centred.
        assert_eq!((r.width, r.height), (889.0, 500.0));
        assert_eq!((r.x, r.y), (55.0, 0.0));
    }

    #[test]
    fn tall_window_gets_bars_top_and_bottom() {
        let r = letterbox(400, 800, 1600, 900).expect("sizes are non-zero");
        assert_eq!((r.width, r.height), (400.0, 225.0));
        assert_eq!((r.x, r.y), (0.0, 287.0));
    }

    #[test]
    fn exact_fit_has_no_bars_and_empty_sizes_draw_nothing() {
        let r = letterbox(1280, 720, 1280, 720).expect("sizes are non-zero");
        assert_eq!(
            r,
            Rect {
                x: 0.0,
                y: 0.0,
                width: 1280.0,
                height: 720.0
            }
        );
        assert_eq!(letterbox(0, 720, 1280, 720), None);
        assert_eq!(letterbox(100, 100, 0, 720), None);
    }

    #[test]
    fn fraction_is_none_on_bars_and_clamped_variant_hugs_the_edge() {
        let r = Rect {
            x: 100.0,
            y: 0.0,
            width: 200.0,
            height: 100.0,
        };
        assert_eq!(r.fraction(50.0, 50.0), None);
        assert_eq!(r.fraction(301.0, 50.0), None);
        assert_eq!(r.fraction(200.0, 50.0), Some((0.5, 0.5)));
        assert_eq!(r.fraction(100.0, 0.0), Some((0.0, 0.0)));
        assert_eq!(r.fraction(300.0, 100.0), Some((1.0, 1.0)));
        assert_eq!(r.fraction_clamped(50.0, -20.0), Some((0.0, 0.0)));
        assert_eq!(r.fraction_clamped(900.0, 50.0), Some((1.0, 0.5)));
        assert_eq!(r.fraction(f64::NAN, 1.0), None);
    }

    #[test]
    fn backing_store_follows_device_pixel_ratio() {
        assert_eq!(backing_size(800.0, 600.0, 1.0), (800, 600));
        assert_eq!(backing_size(800.0, 600.0, 2.0), (1600, 1200));
        assert_eq!(backing_size(801.0, 601.0, 1.25), (1001, 751));
        assert_eq!(backing_size(0.0, 600.0, 2.0), (1, 1200));
        assert_eq!(backing_size(800.0, 600.0, f64::NAN), (800, 600));
    }

    #[test]
    fn view_maps_css_pixels_through_the_drawn_rect_at_any_dpr() {
        for dpr in [1.0, 1.5, 2.0, 3.0] {
            // A 1000x500 CSS canvas showing a square image: image spans CSS x 250..750.
            let v = View::new(1000.0, 500.0, dpr, Some((100, 100)));
            assert_eq!(v.backing_size(), backing_size(1000.0, 500.0, dpr));
            let centre = v.fraction(500.0, 250.0).expect("centre is on the image");
            assert!(close(centre, (0.5, 0.5)), "dpr {dpr}: {centre:?}");
            let corner = v
                .fraction(250.0, 0.0)
                .expect("top-left corner is on the image");
            assert!(close(corner, (0.0, 0.0)), "dpr {dpr}: {corner:?}");
            let quarter = v.fraction(375.0, 375.0).expect("on the image");
            assert!(close(quarter, (0.25, 0.75)), "dpr {dpr}: {quarter:?}");
            assert_eq!(v.fraction(100.0, 250.0), None, "left bar, dpr {dpr}");
            assert_eq!(v.fraction(900.0, 250.0), None, "right bar, dpr {dpr}");
            let clamped = v.fraction_clamped(900.0, 600.0).expect("image size known");
            assert!(close(clamped, (1.0, 1.0)), "dpr {dpr}: {clamped:?}");
        }
    }

    #[test]
    fn css_scaling_of_the_canvas_is_accounted_for() {
        // A canvas laid out at 500x250 CSS px but with a 2000x1000 backing store
        // (e.g. dpr 4): the same CSS point maps to the same fraction.
        let v = View::new(500.0, 250.0, 4.0, Some((200, 100)));
        assert_eq!(v.backing_size(), (2000, 1000));
        let f = v.fraction(125.0, 62.5).expect("on the image");
        assert!(close(f, (0.25, 0.25)), "{f:?}");
    }

    #[test]
    fn a_zoomed_view_keeps_the_anchor_and_covers_the_canvas() {
        // 1000x500 CSS canvas, square image drawn at CSS x 250..750.
        let v = View::new(1000.0, 500.0, 1.0, Some((100, 100)));
        assert_eq!(v.zoom(), 1.0);
        let z = v.zoomed(4.0, (500.0, 250.0), (0.5, 0.5));
        assert!((z.zoom() - 4.0).abs() < 1e-9);
        let centre = z.fraction(500.0, 250.0).expect("on the image");
        assert!(close(centre, (0.5, 0.5)), "{centre:?}");
        // 2000 px wide now: the canvas spans fractions 0.25..0.75 across.
        let left = z.fraction(0.0, 250.0).expect("on the image");
        assert!(close(left, (0.25, 0.5)), "{left:?}");
        let back = z.css_point((0.25, 0.5)).expect("drawn");
        assert!(close(back, (0.0, 250.0)), "{back:?}");
        // Anchored at a corner, the image is moved no further than its edge.
        let corner = v.zoomed(2.0, (0.0, 0.0), (0.0, 0.0));
        assert!(close(corner.fraction(0.0, 0.0).expect("on"), (0.0, 0.0)));
        let far = v.zoomed(2.0, (0.0, 0.0), (1.0, 1.0));
        let f = far.fraction(1000.0, 500.0).expect("on");
        assert!(
            close(f, (1.0, 1.0)),
            "the far corner stays at the canvas corner: {f:?}"
        );
        // Out of range zooms are clamped; a new layout keeps the zoom.
        assert!((v.zoomed(100.0, (0.0, 0.0), (0.5, 0.5)).zoom() - MAX_ZOOM).abs() < 1e-9);
        assert_eq!(v.zoomed(0.5, (0.0, 0.0), (0.5, 0.5)).drawn(), v.drawn());
        let relaid = View::new(1000.0, 500.0, 2.0, Some((100, 100))).keeping_zoom_of(&z);
        assert!((relaid.zoom() - 4.0).abs() < 1e-9);
        assert!(close(
            relaid.fraction(500.0, 250.0).expect("on"),
            (0.5, 0.5)
        ));
    }

    #[test]
    fn no_image_size_yet_means_no_coordinates() {
        let v = View::new(800.0, 600.0, 1.0, None);
        assert_eq!(v.drawn(), None);
        assert_eq!(v.fraction(400.0, 300.0), None);
        assert_eq!(v.fraction_clamped(400.0, 300.0), None);
        assert_eq!(View::default().fraction(1.0, 1.0), None);
    }
}
