//! The clipboard in the page: the remote text goes to the local clipboard where the
//! browser allows (the async Clipboard API: a secure context or localhost, with focus)
//! and always into the clipboard panel to copy from; a paste here (Ctrl+V, Cmd+V, or
//! the panel's send button) goes to the remote clipboard before the keys that paste it.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::console;

use super::{App, State};
use crate::clipboard::{pieces, MAX_CLIPBOARD_BYTES};

/// How long held paste keys wait for the browser's `paste` event.
const PASTE_WAIT_MS: i32 = 150;

impl State {
    /// Sends `text` to the remote clipboard, in pieces; false when it is too long.
    fn send_clipboard(&self, text: &str) -> bool {
        if text.len() > MAX_CLIPBOARD_BYTES {
            return false;
        }
        for msg in pieces(text) {
            self.send_control(&msg);
        }
        true
    }
}

impl App {
    /// The keyboard got focus (the user came back to the page): where the browser
    /// lets the page read the clipboard (`navigator.clipboard.readText`, with the
    /// permission), what was copied locally meanwhile goes to the remote clipboard.
    pub(super) fn on_keyboard_focus(&self, _: JsValue) {
        if self.s.borrow().status.role != Some(deskcast_shared::Role::Control) {
            return;
        }
        let navigator = self.window.navigator();
        let read = Reflect::get(&navigator, &JsValue::from_str("clipboard"))
            .ok()
            .filter(JsValue::is_object)
            .and_then(|c| {
                let f = Reflect::get(&c, &JsValue::from_str("readText")).ok()?;
                let f = f.dyn_into::<Function>().ok()?;
                f.call0(&c).ok()
            });
        if let Some(promise) = read.and_then(|p| p.dyn_into::<Promise>().ok()) {
            // Refused (no permission): nothing to do; a paste still works.
            let _ = promise.then(&self.js.clipboard_read).catch(&self.js.ignore);
        }
    }

    /// `readText` answered.
    pub(super) fn on_clipboard_read(&self, text: JsValue) {
        let Some(text) = text.as_string().filter(|t| !t.is_empty()) else {
            return;
        };
        let mut s = self.s.borrow_mut();
        if s.last_clipboard.as_deref() == Some(text.as_str()) {
            return;
        }
        if s.send_clipboard(&text) {
            s.last_clipboard = Some(text);
        }
    }

    /// The remote clipboard changed.
    pub(super) fn remote_clipboard(&self, text: String) {
        self.s.borrow_mut().last_clipboard = Some(text.clone());
        self.tools.clipboard_text.set_value(&text);
        let _ = self
            .tools
            .clipboard_button
            .set_attribute("data-new", "true");
        // navigator.clipboard.writeText, where the browser has it and allows it now.
        let navigator = self.window.navigator();
        let write = Reflect::get(&navigator, &JsValue::from_str("clipboard"))
            .ok()
            .filter(JsValue::is_object)
            .and_then(|c| {
                let f = Reflect::get(&c, &JsValue::from_str("writeText")).ok()?;
                let f = f.dyn_into::<Function>().ok()?;
                f.call1(&c, &JsValue::from_str(&text)).ok()
            });
        if let Some(promise) = write.and_then(|p| p.dyn_into::<Promise>().ok()) {
            // Refused (no focus, no permission): the panel has it.
            let _ = promise.catch(&self.js.ignore);
        }
    }

    /// The browser's `paste` on the keyboard textarea: its text goes to the remote
    /// clipboard, then the held paste keys go out.
    pub(super) fn on_paste(&self, e: JsValue) {
        let text = Reflect::get(&e, &JsValue::from_str("clipboardData"))
            .ok()
            .filter(JsValue::is_object)
            .and_then(|data| {
                let get = Reflect::get(&data, &JsValue::from_str("getData")).ok()?;
                let get = get.dyn_into::<Function>().ok()?;
                get.call1(&data, &JsValue::from_str("text/plain"))
                    .ok()?
                    .as_string()
            });
        if let Some(e) = e.dyn_ref::<web_sys::Event>() {
            // The text goes to the remote desktop, not into the textarea (which would
            // type it).
            e.prevent_default();
        }
        let mut s = self.s.borrow_mut();
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            if s.send_clipboard(&text) {
                s.last_clipboard = Some(text);
            } else {
                s.status.error = Some("paste refused: more than 1 MiB of text".into());
                s.error_until_ms = self.now() + 4000.0;
            }
        }
        self.flush_paste(&mut s);
    }

    /// Holds the keys of a paste shortcut until the `paste` event has sent the text.
    pub(super) fn hold_paste(&self, s: &mut State, msgs: Vec<deskcast_shared::ClientMessage>) {
        s.held_paste.extend(msgs);
        if s.paste_timer.is_none() {
            s.paste_timer = self
                .window
                .set_timeout_with_callback_and_timeout_and_arguments_0(
                    &self.js.paste_timer,
                    PASTE_WAIT_MS,
                )
                .ok();
        }
    }

    /// Sends the held paste keys (the paste event came, or it did not in time).
    pub(super) fn flush_paste(&self, s: &mut State) {
        if let Some(t) = s.paste_timer.take() {
            self.window.clear_timeout_with_handle(t);
        }
        let held = std::mem::take(&mut s.held_paste);
        s.send(held);
    }

    pub(super) fn on_paste_timer(&self, _: JsValue) {
        let mut s = self.s.borrow_mut();
        s.paste_timer = None;
        self.flush_paste(&mut s);
    }

    /// The clipboard panel's buttons.
    pub(super) fn on_clipboard_tool(&self, id: &str) {
        match id {
            "clipboard-button" => {
                let panel = &self.tools.clipboard_panel;
                panel.set_hidden(!panel.hidden());
                let _ = self
                    .tools
                    .clipboard_button
                    .set_attribute("data-new", "false");
            }
            "clipboard-send" => {
                let text = self.tools.clipboard_text.value();
                let s = self.s.borrow();
                if !s.send_clipboard(&text) {
                    console::warn_1(&JsValue::from_str("deskcast: clipboard text over 1 MiB"));
                }
            }
            _ => {}
        }
    }
}
