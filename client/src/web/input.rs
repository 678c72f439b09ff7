//! Input listeners: pointer, wheel, keyboard → the pure state machines → messages.
//!
//! Keyboard events come from the hidden `#keyboard` textarea, which a press on the
//! canvas focuses: keys, IME compositions and a phone's `input` events. The textarea is
//! emptied after each `input` it handled, outside a composition (the IME edits it then).
//!
//! Nothing is sent on a view-only connection ([`super::State::send`] drops it).

use deskcast_shared::Button;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    CompositionEvent, FocusOptions, InputEvent, KeyboardEvent, PointerEvent, WheelEvent,
};

use super::{App, State};
use crate::gesture::{Pointer, PointerKind};
use crate::keys::KeyEvent;

/// `MouseEvent.button` → a protocol button; back/forward buttons are not forwarded.
fn button(code: i16) -> Option<Button> {
    match code {
        0 => Some(Button::Left),
        1 => Some(Button::Middle),
        2 => Some(Button::Right),
        _ => None,
    }
}

/// A number property of an event, e.g. the fractional `clientX` (web-sys reads it as i32).
fn number(event: &JsValue, name: &str, fallback: i32) -> f64 {
    js_sys::Reflect::get(event, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::from(fallback))
}

impl App {
    /// The event's position relative to the canvas in CSS pixels, with its pointer kind.
    fn pointer(&self, e: &PointerEvent) -> Pointer {
        let rect = self.canvas.get_bounding_client_rect();
        let kind = match e.pointer_type().as_str() {
            "mouse" => PointerKind::Mouse,
            // Touch and pen: no hover, a larger slop, long press.
            _ => PointerKind::Touch,
        };
        Pointer {
            id: e.pointer_id(),
            kind,
            x: number(e, "clientX", e.client_x()) - rect.left(),
            y: number(e, "clientY", e.client_y()) - rect.top(),
        }
    }

    /// Gives the keyboard to the hidden textarea without scrolling to it, unless the
    /// connection is view only (a phone would open its keyboard for nothing).
    ///
    /// Call it with no borrow of the state held: focus changes fire `focus` and `blur`
    /// events synchronously.
    pub(super) fn focus_keyboard(&self) {
        if self.s.borrow().status.view_only() {
            return;
        }
        let options = FocusOptions::new();
        options.set_prevent_scroll(true);
        let _ = self.keyboard.focus_with_options(&options);
    }

    /// Re-arms the one gesture timer for the state machine's next deadline.
    fn arm_gesture_timer(&self, s: &mut State) {
        self.cancel_gesture_timer(s);
        if let Some(deadline) = s.gestures.deadline() {
            // A millisecond late rather than early; an early tick would only re-arm.
            let delay = (deadline - self.now()).ceil().clamp(0.0, 60_000.0) as i32 + 1;
            s.gesture_timer = self
                .window
                .set_timeout_with_callback_and_timeout_and_arguments_0(
                    &self.js.gesture_timer,
                    delay,
                )
                .ok();
        }
    }

    pub(super) fn cancel_gesture_timer(&self, s: &mut State) {
        if let Some(id) = s.gesture_timer.take() {
            self.window.clear_timeout_with_handle(id);
        }
    }

    pub(super) fn on_gesture_timer(&self, _: JsValue) {
        let now = self.now();
        let mut s = self.s.borrow_mut();
        s.gesture_timer = None;
        let msgs = s.gestures.tick(now);
        s.send(msgs);
        self.arm_gesture_timer(&mut s);
        if s.gestures.wants_frame() {
            // Hover moves held back behind a click can go now.
            self.request_frame(&mut s);
        }
    }

    pub(super) fn on_pointer_down(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<PointerEvent>() else {
            return;
        };
        // Keyboard input goes to the remote desktop from now on.
        self.focus_keyboard();
        let Some(button) = button(e.button()) else {
            return;
        };
        e.prevent_default();
        // Moves and the release keep coming to the canvas when the pointer leaves it.
        let _ = self.canvas.set_pointer_capture(e.pointer_id());
        let now = self.now();
        let mut s = self.s.borrow_mut();
        if !s.input_allowed() {
            return;
        }
        self.relayout_if_moved(&mut s);
        let msgs = s.gestures.down(self.pointer(e), button, now);
        s.send(msgs);
        self.arm_gesture_timer(&mut s);
    }

    pub(super) fn on_pointer_move(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<PointerEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        if !s.input_allowed() {
            return;
        }
        let msgs = s.gestures.moved(self.pointer(e));
        s.send(msgs);
        // A drag or a second finger cancels a long press: its deadline went away.
        self.arm_gesture_timer(&mut s);
        if s.gestures.take_view_changed() {
            // A pinch zoomed or panned the view.
            self.paint(&s);
        } else if s.gestures.touch_mode() == crate::gesture::TouchMode::Trackpad {
            self.place_pointer(&s);
        }
        if s.gestures.wants_frame() {
            self.request_frame(&mut s);
        }
    }

    pub(super) fn on_pointer_up(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<PointerEvent>() else {
            return;
        };
        // Again on release: for touch, `pointerup` is the user activation that lets a
        // phone open its on-screen keyboard for a focus; `pointerdown` is not.
        self.focus_keyboard();
        let Some(button) = button(e.button()) else {
            return;
        };
        let now = self.now();
        let mut s = self.s.borrow_mut();
        if !s.input_allowed() {
            return;
        }
        let msgs = s.gestures.up(self.pointer(e), button, now);
        s.send(msgs);
        self.arm_gesture_timer(&mut s);
    }

    /// `pointercancel` and `lostpointercapture`: end a drag where it was.
    pub(super) fn on_pointer_cancel(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<PointerEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        let msgs = s.gestures.cancel(e.pointer_id());
        s.send(msgs);
        self.arm_gesture_timer(&mut s);
    }

    pub(super) fn on_wheel(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<WheelEvent>() else {
            return;
        };
        e.prevent_default();
        let page_px = f64::from(self.canvas.client_height().max(1));
        let mut s = self.s.borrow_mut();
        if !s.input_allowed() {
            return;
        }
        // The pointer's move goes first: the desktop scrolls what is under it.
        let mut msgs = s.gestures.frame();
        msgs.extend(
            s.wheel
                .add(e.delta_x(), e.delta_y(), e.delta_mode(), page_px),
        );
        s.send(msgs);
    }

    pub(super) fn on_key_down(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        if !s.input_allowed() {
            return;
        }
        let (key, code) = (e.key(), e.code());
        let ev = KeyEvent {
            key: &key,
            code: &code,
            key_code: e.key_code(),
            ctrl: e.ctrl_key(),
            alt: e.alt_key(),
            meta: e.meta_key(),
            alt_graph: e.get_modifier_state("AltGraph"),
            composing: e.is_composing(),
            repeat: e.repeat(),
        };
        if s.keyboard.swallows(&ev) {
            e.prevent_default();
        } else if let Some(msg) = s.keyboard.down(&ev) {
            // Moves waiting for the next frame go first: events keep the user's order.
            let mut msgs = s.gestures.frame();
            msgs.push(msg);
            if crate::clipboard::is_paste(&ev) {
                // Let the browser paste: its text goes to the remote clipboard first,
                // then these keys paste it there.
                self.hold_paste(&mut s, msgs);
            } else {
                e.prevent_default();
                s.send(msgs);
            }
        }
    }

    pub(super) fn on_key_up(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        let (key, code) = (e.key(), e.code());
        let ev = KeyEvent {
            key: &key,
            code: &code,
            key_code: e.key_code(),
            ..KeyEvent::default()
        };
        if let Some(msg) = s.keyboard.up(&ev) {
            e.prevent_default();
            let mut msgs = s.gestures.frame();
            msgs.push(msg);
            if s.held_paste.is_empty() {
                s.send(msgs);
            } else {
                // After the held paste keys, in order.
                self.hold_paste(&mut s, msgs);
            }
        }
    }

    pub(super) fn on_composition_start(&self, _: JsValue) {
        self.s.borrow_mut().keyboard.composition_start();
    }

    pub(super) fn on_composition_end(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<CompositionEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        let msg = s.keyboard.composition_end(&e.data().unwrap_or_default());
        s.send(msg.into_iter().collect());
        self.keyboard.set_value("");
    }

    /// Text, line breaks and deletions that no keydown sent (phone keyboards).
    pub(super) fn on_input(&self, e: JsValue) {
        let Some(e) = e.dyn_ref::<InputEvent>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        if s.input_allowed() {
            let data = e.data().unwrap_or_default();
            let msgs = s.keyboard.input(&e.input_type(), &data, e.is_composing());
            s.send(msgs);
        }
        if !(e.is_composing() || s.keyboard.composing()) {
            self.keyboard.set_value("");
        }
    }

    /// The keyboard textarea lost focus: release every key sent down, so none stays stuck.
    pub(super) fn on_blur(&self, _: JsValue) {
        let mut s = self.s.borrow_mut();
        let msgs = s.keyboard.blur();
        s.send(msgs);
    }
}
