//! Pointer gestures → input messages: presses and releases as they happen, hover,
//! taps, long presses, two-finger scroll and pinch zoom, and a trackpad mode.
//!
//! A state machine fed with pointer events and the current time in milliseconds
//! (any monotonic clock; `performance.now()` in the page, plain numbers in tests).
//! It owns no timers: after each call the page asks [`Gestures::deadline`] and calls
//! [`Gestures::tick`] then, and it calls [`Gestures::frame`] once per animation frame
//! to flush the moves it coalesced (at most one move a frame).
//!
//! Rules:
//! - A mouse press goes out at once as a `button` down, its release as a `button` up;
//!   moves in between go out as `move`s, so the desktop sees press, motion, release as
//!   they happened. A press near the last one within [`DOUBLE_CLICK_MS`] is counted
//!   as the second (third) click of a series (`clicks`), so the server can keep a
//!   double click that the network stretched. Nothing is held back.
//! - A finger is not a mouse: a tap is a click (sent when the finger lifts), a touch
//!   that moves further than [`TOUCH_SLOP_PX`] drags, a touch held still for
//!   [`LONG_PRESS_MS`] is a right click. Two fingers moving together scroll (wheel
//!   steps); two fingers pinching zoom the page's view of the screen (and pan it),
//!   locally: nothing is sent, and input keeps mapping through the zoomed view.
//! - In trackpad mode a finger moves the remote pointer by how far it moves, from
//!   where the pointer is, and a tap clicks there: precise work on a small screen.
//! - Presses that start on a letterbox bar send nothing at all.
//!
//! Messages come out without `seq`; the sender numbers them.

use deskcast_shared::{Button, ClientMessage, MAX_CLICKS};

use crate::geometry::View;

/// How far (CSS px) a finger may move before a touch becomes a drag; fingers wobble.
pub const TOUCH_SLOP_PX: f64 = 10.0;
/// Most time between the presses of one click series (a double click), milliseconds.
pub const DOUBLE_CLICK_MS: f64 = 500.0;
/// How far apart (CSS px) the presses of a mouse click series may be.
pub const DOUBLE_CLICK_DISTANCE_PX: f64 = 8.0;
/// How far apart (CSS px) the taps of a double tap may be.
pub const DOUBLE_TAP_DISTANCE_PX: f64 = 30.0;
/// How long a still touch must be held to become a right click, in milliseconds.
pub const LONG_PRESS_MS: f64 = 500.0;
/// How far (CSS px) two fingers move together for one wheel step.
pub const SCROLL_STEP_PX: f64 = 30.0;
/// How much two fingers must spread or close (a ratio) before they zoom, not scroll.
pub const PINCH_THRESHOLD: f64 = 0.15;
/// Trackpad mode: remote pointer movement per CSS px of finger movement, in CSS px
/// of the drawn image.
pub const TRACKPAD_SPEED: f64 = 1.5;

/// What kind of device a pointer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    /// A mouse: hovers, has buttons, is precise.
    Mouse,
    /// A finger or a pen: no hover moves, a slop, long press for right click.
    Touch,
}

/// One pointer event's position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pointer {
    /// `PointerEvent.pointerId`.
    pub id: i32,
    /// Mouse or touch.
    pub kind: PointerKind,
    /// CSS pixels from the canvas's left edge.
    pub x: f64,
    /// CSS pixels from the canvas's top edge.
    pub y: f64,
}

impl Pointer {
    fn distance(&self, x: f64, y: f64) -> f64 {
        (self.x - x).hypot(self.y - y)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PressState {
    /// A mouse button is down on the server.
    Down,
    /// A finger is down, nothing sent yet: a tap, a drag, a long press or two fingers.
    Pending,
    /// A finger dragging: its `button` down was sent.
    Dragging,
    /// Started on a letterbox bar, or used up (long press, two fingers): ignored to release.
    Spent,
}

#[derive(Debug, Clone, Copy)]
struct Press {
    pointer: Pointer,
    button: Button,
    /// Image fraction where it went down (for trackpad mode: where the pointer was).
    at: (f64, f64),
    down_ms: f64,
    state: PressState,
    /// Last image fraction while down, for a release on cancel.
    last: (f64, f64),
    /// The click count it was given (touch: the count its tap will carry).
    clicks: u8,
}

/// The last press, to count the clicks of a series.
#[derive(Debug, Clone, Copy)]
struct Series {
    kind: PointerKind,
    button: Button,
    x: f64,
    y: f64,
    down_ms: f64,
    count: u8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TwoMode {
    Undecided,
    Scroll,
    Pinch,
}

/// Two fingers down.
#[derive(Debug, Clone, Copy)]
struct Two {
    a: Pointer,
    b: Pointer,
    mode: TwoMode,
    start_distance: f64,
    start_centre: (f64, f64),
    start_zoom: f64,
    /// The image fraction under the fingers' centre when they went down.
    anchor: (f64, f64),
    /// Centre movement not yet turned into wheel steps, CSS px.
    scroll: (f64, f64),
    last_centre: (f64, f64),
}

impl Two {
    fn centre(&self) -> (f64, f64) {
        ((self.a.x + self.b.x) / 2.0, (self.a.y + self.b.y) / 2.0)
    }

    fn distance(&self) -> f64 {
        self.a.distance(self.b.x, self.b.y)
    }
}

/// How touches drive the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TouchMode {
    /// The finger is the pointer: a tap clicks where it lands.
    #[default]
    Direct,
    /// The finger moves the remote pointer relatively; a tap clicks where it is.
    Trackpad,
}

/// The gesture state machine. See the module docs for the rules.
#[derive(Debug, Default)]
pub struct Gestures {
    view: View,
    touch_mode: TouchMode,
    press: Option<Press>,
    two: Option<Two>,
    series: Option<Series>,
    hover: Option<(f64, f64)>,
    drag_move: Option<(f64, f64)>,
    /// Trackpad mode: where the remote pointer is, as an image fraction.
    pointer: (f64, f64),
    /// The view changed by a pinch since the page last drew.
    view_changed: bool,
}

fn button(at: (f64, f64), button: Button, down: bool, clicks: u8) -> ClientMessage {
    ClientMessage::Button {
        x: at.0,
        y: at.1,
        button,
        down,
        clicks,
        seq: None,
    }
}

/// A press and release at `at`.
fn click(out: &mut Vec<ClientMessage>, at: (f64, f64), b: Button, clicks: u8) {
    out.push(button(at, b, true, clicks));
    out.push(button(at, b, false, 1));
}

fn series_distance(kind: PointerKind) -> f64 {
    match kind {
        PointerKind::Mouse => DOUBLE_CLICK_DISTANCE_PX,
        PointerKind::Touch => DOUBLE_TAP_DISTANCE_PX,
    }
}

impl Gestures {
    /// A machine with no layout yet: it sends nothing until [`Gestures::set_view`].
    pub fn new() -> Self {
        Gestures {
            pointer: (0.5, 0.5),
            ..Self::default()
        }
    }

    /// Uses `view` to map positions from now on (after a resize or a new image size).
    pub fn set_view(&mut self, view: View) {
        self.view = view;
    }

    /// The layout positions are mapped through (zoomed by pinches).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether a pinch changed the view since the last call: the page redraws then.
    pub fn take_view_changed(&mut self) -> bool {
        std::mem::take(&mut self.view_changed)
    }

    /// Back to the whole image (zoom 1).
    pub fn reset_zoom(&mut self) {
        if self.view.zoom() > 1.0 {
            self.view = self.view.zoomed(1.0, (0.0, 0.0), (0.0, 0.0));
            self.view_changed = true;
        }
    }

    /// Switches how touches drive the pointer.
    pub fn set_touch_mode(&mut self, mode: TouchMode) {
        self.touch_mode = mode;
    }

    /// How touches drive the pointer now.
    pub fn touch_mode(&self) -> TouchMode {
        self.touch_mode
    }

    /// Trackpad mode: where the remote pointer is, as an image fraction.
    pub fn trackpad_pointer(&self) -> (f64, f64) {
        self.pointer
    }

    fn trackpad(&self, p: &Pointer) -> bool {
        p.kind == PointerKind::Touch && self.touch_mode == TouchMode::Trackpad
    }

    /// Counts `p`'s press into the click series and returns its click number.
    fn count_click(&mut self, p: &Pointer, b: Button, now_ms: f64) -> u8 {
        let count = match self.series {
            Some(s)
                if s.kind == p.kind
                    && s.button == b
                    && now_ms - s.down_ms <= DOUBLE_CLICK_MS
                    && p.distance(s.x, s.y) <= series_distance(p.kind) =>
            {
                s.count % MAX_CLICKS + 1
            }
            _ => 1,
        };
        self.series = Some(Series {
            kind: p.kind,
            button: b,
            x: p.x,
            y: p.y,
            down_ms: now_ms,
            count,
        });
        count
    }

    /// A button went down or a finger touched (`pointerdown`).
    pub fn down(&mut self, p: Pointer, b: Button, now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(press) = self.press {
            if press.pointer.kind == PointerKind::Touch
                && p.kind == PointerKind::Touch
                && press.pointer.id != p.id
                && matches!(press.state, PressState::Pending | PressState::Dragging)
            {
                self.start_two(press, p, &mut out);
            }
            // Otherwise a chorded button or a third finger: follow the first press only.
            return out;
        }
        // A hover move waiting for the frame goes first: it happened before the press.
        out.extend(self.frame());
        let trackpad = self.trackpad(&p);
        let at = if trackpad {
            Some(self.pointer)
        } else {
            self.view.fraction(p.x, p.y)
        };
        let Some(at) = at else {
            self.press = Some(Press {
                pointer: p,
                button: b,
                at: (0.0, 0.0),
                down_ms: now_ms,
                state: PressState::Spent,
                last: (0.0, 0.0),
                clicks: 1,
            });
            return out;
        };
        let clicks = self.count_click(&p, b, now_ms);
        let state = match p.kind {
            PointerKind::Mouse => {
                out.push(button(at, b, true, clicks));
                PressState::Down
            }
            PointerKind::Touch => PressState::Pending,
        };
        self.press = Some(Press {
            pointer: p,
            button: b,
            at,
            down_ms: now_ms,
            state,
            last: at,
            clicks,
        });
        out
    }

    fn start_two(&mut self, first: Press, second: Pointer, out: &mut Vec<ClientMessage>) {
        if first.state == PressState::Dragging {
            // A drag that a second finger joins ends where it was.
            self.drag_move = None;
            out.push(button(first.last, first.button, false, 1));
        }
        self.press = Some(Press {
            state: PressState::Spent,
            ..first
        });
        // The taps of a two-finger gesture start no click series.
        self.series = None;
        let mut two = Two {
            a: first.pointer,
            b: second,
            mode: TwoMode::Undecided,
            start_distance: 0.0,
            start_centre: (0.0, 0.0),
            start_zoom: self.view.zoom(),
            anchor: (0.5, 0.5),
            scroll: (0.0, 0.0),
            last_centre: (0.0, 0.0),
        };
        two.start_distance = two.distance().max(1.0);
        two.start_centre = two.centre();
        two.last_centre = two.start_centre;
        let (cx, cy) = two.start_centre;
        two.anchor = self.view.fraction_clamped(cx, cy).unwrap_or((0.5, 0.5));
        self.two = Some(two);
    }

    fn two_moved(&mut self, p: Pointer) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        let Some(two) = self.two.as_mut() else {
            return out;
        };
        if p.id == two.a.id {
            two.a = p;
        } else if p.id == two.b.id {
            two.b = p;
        } else {
            return out;
        }
        let ratio = two.distance() / two.start_distance;
        let centre = two.centre();
        if two.mode == TwoMode::Undecided {
            let travelled = (centre.0 - two.start_centre.0).hypot(centre.1 - two.start_centre.1);
            if (ratio - 1.0).abs() > PINCH_THRESHOLD {
                two.mode = TwoMode::Pinch;
            } else if travelled > TOUCH_SLOP_PX {
                two.mode = TwoMode::Scroll;
            }
        }
        match two.mode {
            TwoMode::Undecided => {}
            TwoMode::Scroll => {
                two.scroll.0 += centre.0 - two.last_centre.0;
                two.scroll.1 += centre.1 - two.last_centre.1;
                // Fingers moving up push the content up: the view scrolls down.
                let steps = |acc: &mut f64| {
                    let n = (*acc / SCROLL_STEP_PX).trunc();
                    *acc -= n * SCROLL_STEP_PX;
                    -(n as i32)
                };
                let (dx, dy) = (steps(&mut two.scroll.0), steps(&mut two.scroll.1));
                if dx != 0 || dy != 0 {
                    out.push(ClientMessage::Wheel { dx, dy, seq: None });
                }
            }
            TwoMode::Pinch => {
                let (zoom, anchor) = (two.start_zoom * ratio, two.anchor);
                self.view = self.view.zoomed(zoom, centre, anchor);
                self.view_changed = true;
            }
        }
        if let Some(two) = self.two.as_mut() {
            two.last_centre = centre;
        }
        out
    }

    /// The pointer moved (`pointermove`), pressed or not.
    pub fn moved(&mut self, p: Pointer) -> Vec<ClientMessage> {
        if self.two.is_some() {
            return self.two_moved(p);
        }
        let mut out = Vec::new();
        let Some(press) = self.press else {
            if p.kind == PointerKind::Mouse {
                if let Some(at) = self.view.fraction(p.x, p.y) {
                    self.hover = Some(at);
                }
            }
            return out;
        };
        if press.pointer.id != p.id {
            return out;
        }
        if self.trackpad(&p) {
            self.trackpad_moved(press, p);
            return out;
        }
        let clamped = self.view.fraction_clamped(p.x, p.y);
        match press.state {
            PressState::Spent => {}
            PressState::Down | PressState::Dragging => {
                if let Some(now) = clamped {
                    self.set_last(now);
                    self.drag_move = Some(now);
                }
            }
            PressState::Pending => {
                if p.distance(press.pointer.x, press.pointer.y) > TOUCH_SLOP_PX {
                    // A touch drag: press where the finger went down, then follow it.
                    out.push(button(press.at, press.button, true, 1));
                    self.series = None;
                    let now = clamped.unwrap_or(press.at);
                    if let Some(pr) = self.press.as_mut() {
                        pr.state = PressState::Dragging;
                        pr.last = now;
                    }
                    self.drag_move = Some(now);
                }
            }
        }
        out
    }

    fn set_last(&mut self, at: (f64, f64)) {
        if let Some(pr) = self.press.as_mut() {
            pr.last = at;
        }
    }

    /// Trackpad mode: the remote pointer follows the finger's movement.
    fn trackpad_moved(&mut self, press: Press, p: Pointer) {
        if press.state == PressState::Spent {
            return;
        }
        let Some(drawn) = self
            .view
            .css_point((1.0, 1.0))
            .zip(self.view.css_point((0.0, 0.0)))
        else {
            return;
        };
        let (width, height) = (drawn.0 .0 - drawn.1 .0, drawn.0 .1 - drawn.1 .1);
        if width <= 0.0 || height <= 0.0 {
            return;
        }
        if press.state == PressState::Pending
            && p.distance(press.pointer.x, press.pointer.y) <= TOUCH_SLOP_PX
        {
            return;
        }
        let origin = press.at;
        let to = (
            (origin.0 + (p.x - press.pointer.x) * TRACKPAD_SPEED / width).clamp(0.0, 1.0),
            (origin.1 + (p.y - press.pointer.y) * TRACKPAD_SPEED / height).clamp(0.0, 1.0),
        );
        self.pointer = to;
        self.series = None;
        if let Some(pr) = self.press.as_mut() {
            // Moving the pointer, not dragging: no button goes down.
            pr.state = PressState::Dragging;
            pr.last = to;
        }
        self.hover = Some(to);
    }

    /// A button went up or a finger lifted (`pointerup`). `b` is the button released.
    pub fn up(&mut self, p: Pointer, b: Button, _now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(two) = self.two {
            if p.id == two.a.id || p.id == two.b.id {
                self.two = None;
            }
        }
        let Some(press) = self.press else { return out };
        if press.pointer.id != p.id || press.button != b {
            return out;
        }
        self.press = None;
        let trackpad = self.trackpad(&p);
        match press.state {
            PressState::Spent => {}
            PressState::Down | PressState::Dragging if trackpad => {}
            PressState::Down | PressState::Dragging => {
                self.drag_move = None;
                let at = self.view.fraction_clamped(p.x, p.y).unwrap_or(press.last);
                out.push(button(at, press.button, false, 1));
            }
            PressState::Pending => click(&mut out, press.at, press.button, press.clicks),
        }
        out
    }

    /// The browser took the pointer away (`pointercancel`, lost capture, blur).
    /// A button that is down is released where it was, so none stays held.
    pub fn cancel(&mut self, id: i32) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if self.two.is_some_and(|t| t.a.id == id || t.b.id == id) {
            self.two = None;
        }
        let Some(press) = self.press else { return out };
        if press.pointer.id != id {
            return out;
        }
        self.press = None;
        self.release(press, &mut out);
        out
    }

    fn release(&mut self, press: Press, out: &mut Vec<ClientMessage>) {
        let held = match press.state {
            PressState::Down => true,
            PressState::Dragging => !self.trackpad(&press.pointer),
            PressState::Pending | PressState::Spent => false,
        };
        if held {
            self.drag_move = None;
            out.push(button(press.last, press.button, false, 1));
        }
    }

    /// Time passed: a touch held still long enough becomes a right click.
    /// Call at [`Gestures::deadline`] (calling early is harmless).
    pub fn tick(&mut self, now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(press) = self.press.as_mut() {
            let long =
                press.state == PressState::Pending && now_ms >= press.down_ms + LONG_PRESS_MS;
            if long {
                press.state = PressState::Spent;
                let at = press.at;
                self.series = None;
                click(&mut out, at, Button::Right, 1);
            }
        }
        out
    }

    /// When [`Gestures::tick`] has something to do next, if ever.
    pub fn deadline(&self) -> Option<f64> {
        self.press
            .filter(|p| p.state == PressState::Pending)
            .map(|p| p.down_ms + LONG_PRESS_MS)
    }

    /// Whether moves are waiting for the next [`Gestures::frame`].
    pub fn wants_frame(&self) -> bool {
        self.drag_move.is_some() || self.hover.is_some()
    }

    /// An animation frame: sends the latest coalesced move, if any.
    pub fn frame(&mut self) -> Vec<ClientMessage> {
        let at = self.drag_move.take().or(self.hover.take());
        self.hover = None;
        at.map(|(x, y)| ClientMessage::Move { x, y, seq: None })
            .into_iter()
            .collect()
    }

    /// Forgets everything (connection lost, input no longer allowed), first releasing
    /// a button that is down so the server does not keep it held.
    pub fn reset(&mut self) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(press) = self.press.take() {
            self.release(press, &mut out);
        }
        self.two = None;
        self.series = None;
        self.hover = None;
        self.drag_move = None;
        out
    }
}

#[cfg(test)]
mod tests;
