//! The overlay: one status line and the "view only" badge, both from index.html.

use web_sys::HtmlElement;

use super::App;

/// The overlay's elements.
pub(super) struct Overlay {
    status: HtmlElement,
    badge: HtmlElement,
}

impl Overlay {
    pub(super) fn new(status: HtmlElement, badge: HtmlElement) -> Self {
        Overlay { status, badge }
    }
}

impl App {
    /// Recomputes the rates and rewrites the overlay if its text changed.
    pub(super) fn refresh_overlay(&self) {
        let now = self.now();
        let mut s = self.s.borrow_mut();
        let s = &mut *s;
        s.status.fps = s.fps.per_second(now);
        s.status.bytes_per_second = s.bytes.per_second(now);
        if now >= s.error_until_ms {
            s.status.error = None;
        }
        let text = s.status.line();
        if text != s.overlay_text {
            self.overlay.status.set_text_content(Some(&text));
            s.overlay_text = text;
        }
        self.refresh_control_button(s);
        let view_only = s.status.role.is_some() && s.status.view_only();
        if self.overlay.badge.hidden() == view_only {
            self.overlay.badge.set_hidden(!view_only);
        }
    }
}
