//! The remote cursor (a CSS cursor over the canvas, or a drawn pointer for view-only
//! viewers and trackpad mode) and the small toolbar: special keys, trackpad mode, full
//! screen with the Keyboard Lock API.

use js_sys::{Function, Reflect};
use wasm_bindgen::{Clamped, JsCast, JsValue};
use web_sys::{console, Element, HtmlCanvasElement, HtmlElement, ImageData};

use super::{element, App, State};
use crate::cursor::Fit;
use crate::gesture::TouchMode;
use crate::keys::combo;

/// The toolbar's elements, from index.html.
pub(super) struct Tools {
    pub(super) bar: HtmlElement,
    pointer: HtmlElement,
    keys_button: HtmlElement,
    keys_menu: HtmlElement,
    trackpad_button: HtmlElement,
    control_button: HtmlElement,
    pub(super) clipboard_button: HtmlElement,
    pub(super) clipboard_panel: HtmlElement,
    pub(super) clipboard_text: web_sys::HtmlTextAreaElement,
    pub(super) monitor_select: web_sys::HtmlSelectElement,
}

impl Tools {
    pub(super) fn new(document: &web_sys::Document) -> Result<Self, JsValue> {
        Ok(Tools {
            bar: element(document, "tools")?,
            pointer: element(document, "pointer")?,
            keys_button: element(document, "keys-button")?,
            keys_menu: element(document, "keys-menu")?,
            trackpad_button: element(document, "trackpad-button")?,
            control_button: element(document, "control-button")?,
            clipboard_button: element(document, "clipboard-button")?,
            clipboard_panel: element(document, "clipboard-panel")?,
            clipboard_text: element(document, "clipboard-text")?,
            monitor_select: element(document, "monitor-select")?,
        })
    }
}

/// The remote cursor as the page shows it.
pub(super) struct CursorLook {
    fit: Fit,
    url: String,
}

/// The standard-alphabet base64 in `text`, decoded by the browser.
fn base64(window: &web_sys::Window, text: &str) -> Option<Vec<u8>> {
    let binary = window.atob(text).ok()?;
    binary
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

impl App {
    /// A `cursor` message: renders the shape and makes it the canvas's CSS cursor.
    pub(super) fn set_cursor(
        &self,
        s: &mut State,
        (width, height): (u16, u16),
        hot: (u16, u16),
        rgba: &str,
    ) {
        let Some(fit) = Fit::new(width, height, hot, self.window.device_pixel_ratio()) else {
            // A hidden cursor (an application hid it): hide ours too.
            let _ = self.canvas.style().set_property("cursor", "none");
            s.cursor = None;
            self.place_pointer(s);
            return;
        };
        match self.cursor_url(&fit, width, height, rgba) {
            Ok(url) => {
                let style = self.canvas.style();
                // Plain url() first: kept where image-set is not understood.
                let _ = style.set_property(
                    "cursor",
                    &format!("url(\"{url}\") {} {}, default", fit.hot.0, fit.hot.1),
                );
                let _ = style.set_property("cursor", &fit.css(&url));
                s.cursor = Some(CursorLook { fit, url });
            }
            Err(e) => console::warn_2(&JsValue::from_str("deskcast: cursor image failed"), &e),
        }
        self.place_pointer(s);
    }

    fn cursor_url(
        &self,
        fit: &Fit,
        width: u16,
        height: u16,
        rgba: &str,
    ) -> Result<String, JsValue> {
        let bytes = base64(&self.window, rgba).ok_or("cursor pixels are not base64")?;
        let (w, h) = (u32::from(width), u32::from(height));
        if bytes.len() != (w * h * 4) as usize {
            return Err("cursor pixels do not match its size".into());
        }
        let document = self.window.document().ok_or("no document")?;
        let canvas = |cw: u32, ch: u32| -> Result<HtmlCanvasElement, JsValue> {
            let c: HtmlCanvasElement = document
                .create_element("canvas")?
                .dyn_into()
                .map_err(|_| "not a canvas")?;
            c.set_width(cw);
            c.set_height(ch);
            Ok(c)
        };
        let full = canvas(w, h)?;
        let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&bytes), w, h)?;
        super::context_2d(&full)?.put_image_data(&image, 0.0, 0.0)?;
        if fit.bitmap == (w, h) {
            return full.to_data_url();
        }
        let (bw, bh) = fit.bitmap;
        let scaled = canvas(bw, bh)?;
        super::context_2d(&scaled)?.draw_image_with_html_canvas_element_and_dw_and_dh(
            &full,
            0.0,
            0.0,
            f64::from(bw),
            f64::from(bh),
        )?;
        scaled.to_data_url()
    }

    /// A `pointer` message: where the remote pointer is (sent to view-only viewers).
    pub(super) fn set_remote_pointer(&self, s: &mut State, at: (f64, f64)) {
        s.remote_pointer = Some(at);
        self.place_pointer(s);
    }

    /// Shows the drawn pointer where the remote pointer is, when the page's own pointer
    /// is not it: for a view-only viewer, and in trackpad mode.
    pub(super) fn place_pointer(&self, s: &State) {
        let el = &self.tools.pointer;
        let trackpad = s.gestures.touch_mode() == TouchMode::Trackpad && !s.status.view_only();
        let at = if trackpad {
            Some(s.gestures.trackpad_pointer())
        } else if s.status.view_only() {
            s.remote_pointer
        } else {
            None
        };
        let place = at
            .and_then(|at| s.gestures.view().css_point(at))
            .zip(s.cursor.as_ref());
        let Some(((x, y), look)) = place else {
            el.set_hidden(true);
            return;
        };
        let rect = self.canvas.get_bounding_client_rect();
        let style = el.style();
        let css = |n: u32| f64::from(n) / look.fit.density;
        let _ = style.set_property(
            "left",
            &format!("{}px", rect.left() + x - f64::from(look.fit.hot.0)),
        );
        let _ = style.set_property(
            "top",
            &format!("{}px", rect.top() + y - f64::from(look.fit.hot.1)),
        );
        let _ = style.set_property("width", &format!("{}px", css(look.fit.bitmap.0)));
        let _ = style.set_property("height", &format!("{}px", css(look.fit.bitmap.1)));
        let _ = style.set_property("background-image", &format!("url(\"{}\")", look.url));
        el.set_hidden(false);
    }

    /// Shows what the control button offers now (hidden when nothing).
    pub(super) fn refresh_control_button(&self, s: &State) {
        let controlling = s.status.role == Some(deskcast_shared::Role::Control);
        // Only the controller picks the monitor; viewers see which.
        self.tools.monitor_select.set_disabled(!controlling);
        let connected = s.status.state == crate::stats::ConnState::Connected;
        // A source that takes no input (a camera, the test pattern) has no control to pass.
        let label = s
            .status
            .control
            .button(controlling)
            .filter(|_| connected && s.status.input);
        let button = &self.tools.control_button;
        match label {
            Some(text) => {
                if button.text_content().as_deref() != Some(text.as_str()) {
                    button.set_text_content(Some(&text));
                }
                let asked = controlling && s.status.control.asked_by.is_some();
                let _ = button.set_attribute("data-asked", if asked { "true" } else { "false" });
                button.set_hidden(false);
            }
            None => button.set_hidden(true),
        }
    }

    /// The server's monitor list: the picker shows it, the current one selected.
    pub(super) fn set_monitors(
        &self,
        monitors: &[deskcast_shared::MonitorInfo],
        current: Option<u32>,
    ) {
        let select = &self.tools.monitor_select;
        select.set_inner_html("");
        let Some(document) = self.window.document() else {
            return;
        };
        let option = |value: &str, label: &str, selected: bool| -> Option<()> {
            let o: web_sys::HtmlOptionElement =
                document.create_element("option").ok()?.dyn_into().ok()?;
            o.set_value(value);
            o.set_text(label);
            o.set_selected(selected);
            select.append_child(&o).ok()?;
            Some(())
        };
        for m in monitors {
            let label = format!(
                "{}: {} {}x{}{}",
                m.index,
                m.name,
                m.width,
                m.height,
                if m.primary { " (primary)" } else { "" }
            );
            option(&m.index.to_string(), &label, current == Some(m.index));
        }
        option("all", "all monitors", current.is_none());
        select.set_hidden(monitors.len() < 2);
    }

    /// The picker changed: the controller switches the stream.
    pub(super) fn on_monitor_pick(&self, _: JsValue) {
        let value = self.tools.monitor_select.value();
        let index = value.parse::<u32>().ok();
        let s = self.s.borrow();
        s.send_control(&deskcast_shared::ClientMessage::Monitor { index });
        drop(s);
        self.focus_keyboard();
    }

    /// A click in the toolbar.
    pub(super) fn on_tool(&self, e: JsValue) {
        let Some(target) = e
            .dyn_ref::<web_sys::Event>()
            .and_then(|e| e.target())
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|t| t.closest("button").ok().flatten())
        else {
            return;
        };
        if let Some(keys) = target.get_attribute("data-keys") {
            let codes: Vec<&str> = keys.split_whitespace().collect();
            let mut s = self.s.borrow_mut();
            let mut msgs = s.gestures.frame();
            msgs.extend(combo(&codes));
            s.send(msgs);
            drop(s);
            self.focus_keyboard();
            return;
        }
        match target.id().as_str() {
            "keys-button" => {
                let open = self.tools.keys_menu.hidden();
                self.tools.keys_menu.set_hidden(!open);
                let _ = self
                    .tools
                    .keys_button
                    .set_attribute("aria-expanded", if open { "true" } else { "false" });
            }
            "trackpad-button" => {
                let mut s = self.s.borrow_mut();
                let mode = match s.gestures.touch_mode() {
                    TouchMode::Direct => TouchMode::Trackpad,
                    TouchMode::Trackpad => TouchMode::Direct,
                };
                s.gestures.set_touch_mode(mode);
                let pressed = if mode == TouchMode::Trackpad {
                    "true"
                } else {
                    "false"
                };
                let _ = self
                    .tools
                    .trackpad_button
                    .set_attribute("aria-pressed", pressed);
                self.place_pointer(&s);
            }
            "fullscreen-button" => self.toggle_fullscreen(),
            "signout-button" => self.sign_out(),
            id @ ("clipboard-button" | "clipboard-send") => self.on_clipboard_tool(id),
            "control-button" => {
                let mut s = self.s.borrow_mut();
                if s.status.role == Some(deskcast_shared::Role::Control) {
                    s.send_control(&deskcast_shared::ClientMessage::ReleaseControl);
                } else if s.status.control.may {
                    s.send_control(&deskcast_shared::ClientMessage::RequestControl);
                    s.status.control.asking = true;
                }
                drop(s);
                self.refresh_overlay();
            }
            _ => {}
        }
    }

    /// Enters full screen and locks the keyboard (where the browser has the Keyboard
    /// Lock API), so Ctrl+W, Alt+Tab-like keys and Escape go to the remote desktop;
    /// holding Escape leaves. Or leaves full screen.
    fn toggle_fullscreen(&self) {
        let Some(document) = self.window.document() else {
            return;
        };
        if document.fullscreen_element().is_some() {
            document.exit_fullscreen();
            return;
        }
        if let Some(root) = document.document_element() {
            if let Err(e) = root.request_fullscreen() {
                console::warn_2(&JsValue::from_str("deskcast: full screen refused"), &e);
                return;
            }
        }
        let keyboard = Reflect::get(&self.window.navigator(), &JsValue::from_str("keyboard"))
            .ok()
            .filter(|k| k.is_object());
        let lock = keyboard.as_ref().and_then(|k| {
            Reflect::get(k, &JsValue::from_str("lock"))
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
        });
        if let (Some(keyboard), Some(lock)) = (keyboard, lock) {
            // Takes effect while in full screen; the browser unlocks on leaving it.
            if let Ok(promise) = lock.call0(&keyboard) {
                if let Ok(promise) = promise.dyn_into::<js_sys::Promise>() {
                    let _ = promise.catch(&self.js.ignore);
                }
            }
        }
        self.focus_keyboard();
    }
}
