//! Wheel deltas → whole wheel steps.
//!
//! Browsers report wheel movement in pixels, lines or pages (`WheelEvent.deltaMode`),
//! and touchpads in many small pixel deltas. Everything is turned into pixels and
//! accumulated; every [`PIXELS_PER_STEP`] pixels is one step of a real wheel. The
//! remainder is kept for the next event, and dropped when the direction reverses so a
//! change of direction takes effect at once.

use deskcast_shared::{ClientMessage, MAX_WHEEL_STEP};

/// Pixels of scrolling that make one wheel step (one notch of a mouse wheel in Chrome).
pub const PIXELS_PER_STEP: f64 = 100.0;

/// Pixels per line for `DOM_DELTA_LINE` (Firefox reports 3 lines a notch: one step).
pub const PIXELS_PER_LINE: f64 = PIXELS_PER_STEP / 3.0;

/// `WheelEvent.DOM_DELTA_PIXEL`.
pub const DELTA_PIXEL: u32 = 0;
/// `WheelEvent.DOM_DELTA_LINE`.
pub const DELTA_LINE: u32 = 1;
/// `WheelEvent.DOM_DELTA_PAGE`.
pub const DELTA_PAGE: u32 = 2;

/// Accumulated, not yet sent, scrolling in pixels.
#[derive(Debug, Default, Clone, Copy)]
pub struct Wheel {
    x: f64,
    y: f64,
}

fn to_pixels(delta: f64, mode: u32, page_px: f64) -> f64 {
    if !delta.is_finite() {
        return 0.0;
    }
    match mode {
        DELTA_LINE => delta * PIXELS_PER_LINE,
        DELTA_PAGE => delta * page_px,
        _ => delta,
    }
}

/// Adds `delta` to `acc`, first dropping a remainder in the other direction; returns
/// the whole steps taken out.
fn accumulate(acc: &mut f64, delta: f64) -> i32 {
    if delta != 0.0 && acc.signum() != delta.signum() {
        *acc = 0.0;
    }
    *acc += delta;
    let q = *acc / PIXELS_PER_STEP;
    // A hair of tolerance: 3 lines of 100/3 px must be one step, not 0.999… of one.
    let steps = (q + q.signum() * 1e-9).trunc();
    *acc -= steps * PIXELS_PER_STEP;
    let max = f64::from(MAX_WHEEL_STEP);
    // Clamped into the protocol's range first, so the cast cannot truncate.
    steps.clamp(-max, max) as i32
}

impl Wheel {
    /// Nothing accumulated.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `wheel` event: `delta_x`/`delta_y` in `mode` units (see [`DELTA_LINE`]),
    /// `page_px` the height of a page for [`DELTA_PAGE`]. Returns the message to send
    /// once at least one whole step has accumulated. Positive `dy` scrolls down.
    pub fn add(
        &mut self,
        delta_x: f64,
        delta_y: f64,
        mode: u32,
        page_px: f64,
    ) -> Option<ClientMessage> {
        let dx = accumulate(&mut self.x, to_pixels(delta_x, mode, page_px));
        let dy = accumulate(&mut self.y, to_pixels(delta_y, mode, page_px));
        (dx != 0 || dy != 0).then_some(ClientMessage::Wheel { dx, dy, seq: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(dx: i32, dy: i32) -> Option<ClientMessage> {
        Some(ClientMessage::Wheel { dx, dy, seq: None })
    }

    #[test]
    fn one_mouse_notch_is_one_step_in_every_browser() {
        let mut w = Wheel::new();
        assert_eq!(w.add(0.0, 100.0, DELTA_PIXEL, 800.0), wheel(0, 1), "chrome");
        assert_eq!(w.add(0.0, 3.0, DELTA_LINE, 800.0), wheel(0, 1), "firefox");
        assert_eq!(w.add(0.0, -300.0, DELTA_PIXEL, 800.0), wheel(0, -3), "up");
        assert_eq!(w.add(0.0, 1.0, DELTA_PAGE, 800.0), wheel(0, 8), "page");
    }

    #[test]
    fn small_touchpad_deltas_add_up() {
        let mut w = Wheel::new();
        for _ in 0..9 {
            assert_eq!(w.add(0.0, 10.0, DELTA_PIXEL, 800.0), None);
        }
        assert_eq!(w.add(0.0, 15.0, DELTA_PIXEL, 800.0), wheel(0, 1));
        // 5 px left over; 95 more make the next step.
        assert_eq!(w.add(0.0, 94.0, DELTA_PIXEL, 800.0), None);
        assert_eq!(w.add(0.0, 1.0, DELTA_PIXEL, 800.0), wheel(0, 1));
    }

    #[test]
    fn reversing_direction_drops_the_remainder() {
        let mut w = Wheel::new();
        assert_eq!(w.add(0.0, 90.0, DELTA_PIXEL, 800.0), None);
        assert_eq!(w.add(0.0, -100.0, DELTA_PIXEL, 800.0), wheel(0, -1));
    }

    #[test]
    fn horizontal_scrolling_and_limits() {
        let mut w = Wheel::new();
        assert_eq!(w.add(-200.0, 0.0, DELTA_PIXEL, 800.0), wheel(-2, 0));
        assert_eq!(
            w.add(0.0, 1e9, DELTA_PIXEL, 800.0),
            wheel(0, MAX_WHEEL_STEP)
        );
        assert_eq!(w.add(f64::NAN, f64::INFINITY, DELTA_PIXEL, 800.0), None);
    }
}
