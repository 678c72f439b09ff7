//! Pointer gestures → input messages: click, double click, drag, hover, long press.
//!
//! A state machine fed with pointer events and the current time in milliseconds
//! (any monotonic clock; `performance.now()` in the page, plain numbers in tests).
//! It owns no timers: after each call the page asks [`Gestures::deadline`] and calls
//! [`Gestures::tick`] then, and it calls [`Gestures::frame`] once per animation frame
//! to flush the moves it coalesced (at most one hover move and one drag move a frame).
//!
//! Rules:
//! - A left click is held back for [`DOUBLE_CLICK_MS`]; a second click near the same
//!   spot within that time turns both into one `double_click`. Right and middle
//!   clicks go out at once.
//! - A press that moves further than the drag threshold becomes a drag: `start` at the
//!   press point, then `move`s, then `end` where the button is released. Drag
//!   coordinates are clamped onto the image, so a drag may leave it.
//! - A touch held still for [`LONG_PRESS_MS`] is a right click.
//! - Presses that start on a letterbox bar send nothing at all.
//!
//! Messages come out without `seq`; the sender numbers them.

use deskcast_shared::{Button, ClientMessage, DragPhase};

use crate::geometry::View;

/// How far (CSS px) a mouse press may move before it becomes a drag.
pub const DRAG_THRESHOLD_PX: f64 = 4.0;
/// How far (CSS px) a finger may move before a touch becomes a drag; fingers wobble.
pub const TOUCH_SLOP_PX: f64 = 10.0;
/// How long after a click a second one counts as a double click, in milliseconds.
pub const DOUBLE_CLICK_MS: f64 = 300.0;
/// How far apart (CSS px) the two mouse clicks of a double click may be.
pub const DOUBLE_CLICK_DISTANCE_PX: f64 = 8.0;
/// How far apart (CSS px) the two taps of a double tap may be.
pub const DOUBLE_TAP_DISTANCE_PX: f64 = 30.0;
/// How long a still touch must be held to become a right click, in milliseconds.
pub const LONG_PRESS_MS: f64 = 500.0;

/// What kind of device a pointer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    /// A mouse: hovers, has buttons, is precise.
    Mouse,
    /// A finger or a pen: no hover moves, a larger slop, long press for right click.
    Touch,
}

/// One pointer event's position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pointer {
    /// `PointerEvent.pointerId`; only the pointer that pressed first is followed.
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
    /// Pressed, not moved far yet: may still become a click, a drag or a long press.
    Pressed,
    /// Moved past the threshold; `start` was sent.
    Dragging,
    /// Started on a letterbox bar, or already used up by a long press: ignore to release.
    Spent,
}

#[derive(Debug, Clone, Copy)]
struct Press {
    pointer: Pointer,
    button: Button,
    at: (f64, f64),
    down_ms: f64,
    state: PressState,
    /// Last clamped position seen while dragging, for an `end` on cancel.
    last: (f64, f64),
}

#[derive(Debug, Clone, Copy)]
struct PendingClick {
    pointer: Pointer,
    at: (f64, f64),
    up_ms: f64,
    /// The second press of a possible double click is down now.
    second_down: bool,
}

/// The gesture state machine. See the module docs for the rules.
#[derive(Debug, Default)]
pub struct Gestures {
    view: View,
    press: Option<Press>,
    pending: Option<PendingClick>,
    hover: Option<(f64, f64)>,
    drag_move: Option<(f64, f64)>,
}

fn click(at: (f64, f64), button: Button) -> ClientMessage {
    ClientMessage::Click {
        x: at.0,
        y: at.1,
        button,
        seq: None,
    }
}

fn drag(phase: DragPhase, at: (f64, f64), button: Button) -> ClientMessage {
    ClientMessage::Drag {
        phase,
        x: at.0,
        y: at.1,
        button,
        seq: None,
    }
}

fn slop(kind: PointerKind) -> f64 {
    match kind {
        PointerKind::Mouse => DRAG_THRESHOLD_PX,
        PointerKind::Touch => TOUCH_SLOP_PX,
    }
}

fn double_distance(kind: PointerKind) -> f64 {
    match kind {
        PointerKind::Mouse => DOUBLE_CLICK_DISTANCE_PX,
        PointerKind::Touch => DOUBLE_TAP_DISTANCE_PX,
    }
}

impl Gestures {
    /// A machine with no layout yet: it sends nothing until [`Gestures::set_view`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `view` to map positions from now on (after a resize or a new image size).
    pub fn set_view(&mut self, view: View) {
        self.view = view;
    }

    /// The layout positions are mapped through.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// A button went down (`pointerdown`).
    pub fn down(&mut self, p: Pointer, button: Button, now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if self.press.is_some() {
            // A second finger or a chorded button: follow the first press only.
            return out;
        }
        self.hover = None;
        let Some(at) = self.view.fraction(p.x, p.y) else {
            self.flush_pending(&mut out);
            self.press = Some(Press {
                pointer: p,
                button,
                at: (0.0, 0.0),
                down_ms: now_ms,
                state: PressState::Spent,
                last: (0.0, 0.0),
            });
            return out;
        };
        match self.pending.as_mut() {
            Some(first)
                if button == Button::Left
                    && first.pointer.kind == p.kind
                    && now_ms - first.up_ms <= DOUBLE_CLICK_MS
                    && p.distance(first.pointer.x, first.pointer.y) <= double_distance(p.kind) =>
            {
                first.second_down = true;
            }
            _ => self.flush_pending(&mut out),
        }
        self.press = Some(Press {
            pointer: p,
            button,
            at,
            down_ms: now_ms,
            state: PressState::Pressed,
            last: at,
        });
        out
    }

    /// The pointer moved (`pointermove`), pressed or not.
    pub fn moved(&mut self, p: Pointer) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        let Some(press) = self.press.as_mut() else {
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
        match press.state {
            PressState::Spent => {}
            PressState::Pressed => {
                if p.distance(press.pointer.x, press.pointer.y) > slop(p.kind) {
                    let (at, button) = (press.at, press.button);
                    press.state = PressState::Dragging;
                    let now = self.view.fraction_clamped(p.x, p.y).unwrap_or(at);
                    press.last = now;
                    self.flush_pending(&mut out);
                    out.push(drag(DragPhase::Start, at, button));
                    self.drag_move = Some(now);
                }
            }
            PressState::Dragging => {
                if let Some(now) = self.view.fraction_clamped(p.x, p.y) {
                    press.last = now;
                    self.drag_move = Some(now);
                }
            }
        }
        out
    }

    /// A button went up (`pointerup`). `button` is the one released.
    pub fn up(&mut self, p: Pointer, button: Button, now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        let Some(press) = self.press else { return out };
        if press.pointer.id != p.id || press.button != button {
            return out;
        }
        self.press = None;
        match press.state {
            PressState::Spent => {}
            PressState::Dragging => {
                self.drag_move = None;
                let at = self.view.fraction_clamped(p.x, p.y).unwrap_or(press.last);
                out.push(drag(DragPhase::End, at, press.button));
            }
            PressState::Pressed => match self.pending.take() {
                Some(first) if first.second_down => {
                    out.push(ClientMessage::DoubleClick {
                        x: first.at.0,
                        y: first.at.1,
                        button: Button::Left,
                        seq: None,
                    });
                }
                other => {
                    self.pending = other;
                    self.flush_pending(&mut out);
                    if press.button == Button::Left {
                        self.pending = Some(PendingClick {
                            pointer: press.pointer,
                            at: press.at,
                            up_ms: now_ms,
                            second_down: false,
                        });
                    } else {
                        out.push(click(press.at, press.button));
                    }
                }
            },
        }
        out
    }

    /// The browser took the pointer away (`pointercancel`, lost capture, blur).
    /// A drag in progress ends where it was, so no button stays held on the server.
    pub fn cancel(&mut self, id: i32) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        let Some(press) = self.press else { return out };
        if press.pointer.id != id {
            return out;
        }
        self.press = None;
        if press.state == PressState::Dragging {
            self.drag_move = None;
            out.push(drag(DragPhase::End, press.last, press.button));
        }
        if self.pending.is_some_and(|p| p.second_down) {
            self.flush_pending(&mut out);
        }
        out
    }

    /// Time passed: sends a held-back click whose double-click window closed, or a
    /// long press's right click. Call at [`Gestures::deadline`] (calling early is harmless).
    pub fn tick(&mut self, now_ms: f64) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(first) = self.pending {
            if !first.second_down && now_ms >= first.up_ms + DOUBLE_CLICK_MS {
                self.flush_pending(&mut out);
            }
        }
        if let Some(press) = self.press.as_mut() {
            let long = press.pointer.kind == PointerKind::Touch
                && press.state == PressState::Pressed
                && now_ms >= press.down_ms + LONG_PRESS_MS;
            if long {
                press.state = PressState::Spent;
                let at = press.at;
                self.flush_pending(&mut out);
                out.push(click(at, Button::Right));
            }
        }
        out
    }

    /// When [`Gestures::tick`] has something to do next, if ever.
    pub fn deadline(&self) -> Option<f64> {
        let click = self
            .pending
            .filter(|p| !p.second_down)
            .map(|p| p.up_ms + DOUBLE_CLICK_MS);
        let long = self
            .press
            .filter(|p| p.pointer.kind == PointerKind::Touch && p.state == PressState::Pressed)
            .map(|p| p.down_ms + LONG_PRESS_MS);
        match (click, long) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether moves are waiting for the next [`Gestures::frame`].
    pub fn wants_frame(&self) -> bool {
        self.drag_move.is_some() || (self.hover.is_some() && self.pending.is_none())
    }

    /// An animation frame: sends the latest coalesced drag move or hover move.
    ///
    /// Hover moves wait while a click is held back, so they never overtake it.
    pub fn frame(&mut self) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let (Some(at), Some(press)) = (self.drag_move.take(), self.press) {
            out.push(drag(DragPhase::Move, at, press.button));
        }
        if self.pending.is_none() {
            if let Some((x, y)) = self.hover.take() {
                out.push(ClientMessage::Move { x, y, seq: None });
            }
        }
        out
    }

    /// Forgets everything (connection lost, input no longer allowed), first ending a
    /// drag in progress so the server does not keep a button held.
    pub fn reset(&mut self) -> Vec<ClientMessage> {
        let mut out = Vec::new();
        if let Some(press) = self.press.filter(|p| p.state == PressState::Dragging) {
            out.push(drag(DragPhase::End, press.last, press.button));
        }
        self.press = None;
        self.pending = None;
        self.hover = None;
        self.drag_move = None;
        out
    }

    fn flush_pending(&mut self, out: &mut Vec<ClientMessage>) {
        if let Some(first) = self.pending.take() {
            out.push(click(first.at, Button::Left));
        }
    }
}

#[cfg(test)]
mod tests;
