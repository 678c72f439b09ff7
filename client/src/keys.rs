//! Keyboard events → `text` and `key` messages.
//!
//! Printable characters typed without Ctrl, Meta or Alt go out as `text` (so the
//! remote side types the character the person sees, whatever its keyboard layout);
//! everything else (Enter, arrows, F-keys, shortcuts, the modifiers themselves) goes
//! out as `key` down/up named by `KeyboardEvent.code`. Keys sent down are remembered,
//! so their release is sent too, and so all of them can be released when the canvas
//! loses focus: no key stays stuck on the server.

use deskcast_shared::{ClientMessage, MAX_KEY_CODE_LEN};

/// The parts of a `KeyboardEvent` that decide what to send.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyEvent<'a> {
    /// `KeyboardEvent.key`: the character produced, or a name such as `Enter`.
    pub key: &'a str,
    /// `KeyboardEvent.code`: the physical key, such as `KeyA`.
    pub code: &'a str,
    /// Control held.
    pub ctrl: bool,
    /// Alt (Option) held.
    pub alt: bool,
    /// Meta (Command, Windows key) held.
    pub meta: bool,
    /// `getModifierState("AltGraph")`: AltGr held. Windows reports AltGr as Ctrl+Alt,
    /// yet the key then produces a character (`@` on a German keyboard) to be typed.
    pub alt_graph: bool,
    /// `KeyboardEvent.isComposing`: an IME composition is in progress.
    pub composing: bool,
}

/// Whether `code` is a `KeyboardEvent.code` the server accepts.
fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_KEY_CODE_LEN
        && code.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether `key` is one printable character.
fn printable(key: &str) -> bool {
    let mut chars = key.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if !c.is_control())
}

/// Keyboard state: which keys were sent down and not yet up.
#[derive(Debug, Default)]
pub struct Keyboard {
    held: Vec<String>,
}

impl Keyboard {
    /// Nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `keydown`. `Some` means: send it and `preventDefault()` the event.
    /// `None` means the event is left to the browser (IME, dead keys, unknown keys).
    pub fn down(&mut self, e: &KeyEvent<'_>) -> Option<ClientMessage> {
        // keyCode 229 / "Process": the IME owns this key; its result comes as compositionend.
        if e.composing || e.key == "Process" || e.key == "Dead" {
            return None;
        }
        if printable(e.key) && (!(e.ctrl || e.meta || e.alt) || e.alt_graph) {
            return Some(ClientMessage::Text {
                text: e.key.to_string(),
                seq: None,
            });
        }
        if !valid_code(e.code) || e.code == "Unidentified" {
            return None;
        }
        if !self.held.iter().any(|c| c == e.code) {
            self.held.push(e.code.to_string());
        }
        Some(ClientMessage::Key {
            code: e.code.to_string(),
            down: true,
            seq: None,
        })
    }

    /// A `keyup`: the release of a key that was sent down, else `None`.
    pub fn up(&mut self, e: &KeyEvent<'_>) -> Option<ClientMessage> {
        let i = self.held.iter().position(|c| c == e.code)?;
        let code = self.held.remove(i);
        Some(ClientMessage::Key {
            code,
            down: false,
            seq: None,
        })
    }

    /// Releases every held key (focus lost, connection lost, role changed).
    pub fn release_all(&mut self) -> Vec<ClientMessage> {
        self.held
            .drain(..)
            .rev()
            .map(|code| ClientMessage::Key {
                code,
                down: false,
                seq: None,
            })
            .collect()
    }

    /// Forgets held keys without sending their release (the connection is gone).
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// A `compositionend` (IME result): its text, if any, to be typed as is.
pub fn composed(data: &str) -> Option<ClientMessage> {
    (!data.is_empty()).then(|| ClientMessage::Text {
        text: data.to_string(),
        seq: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(key: &'a str, code: &'a str) -> KeyEvent<'a> {
        KeyEvent {
            key,
            code,
            ..KeyEvent::default()
        }
    }

    fn text(t: &str) -> Option<ClientMessage> {
        Some(ClientMessage::Text {
            text: t.into(),
            seq: None,
        })
    }

    fn key(code: &str, down: bool) -> Option<ClientMessage> {
        Some(ClientMessage::Key {
            code: code.into(),
            down,
            seq: None,
        })
    }

    #[test]
    fn printable_characters_are_text_and_their_release_is_not_sent() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&ev("a", "KeyA")), text("a"));
        assert_eq!(k.down(&ev("A", "KeyA")), text("A"));
        assert_eq!(k.down(&ev("é", "Digit2")), text("é"));
        assert_eq!(k.down(&ev(" ", "Space")), text(" "));
        assert_eq!(k.up(&ev("a", "KeyA")), None);
        assert!(k.release_all().is_empty());
    }

    #[test]
    fn named_keys_and_shortcuts_are_key_down_and_up() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&ev("Enter", "Enter")), key("Enter", true));
        assert_eq!(k.up(&ev("Enter", "Enter")), key("Enter", false));
        assert_eq!(
            k.down(&ev("Control", "ControlLeft")),
            key("ControlLeft", true)
        );
        let ctrl_c = KeyEvent {
            ctrl: true,
            ..ev("c", "KeyC")
        };
        assert_eq!(k.down(&ctrl_c), key("KeyC", true));
        let meta_v = KeyEvent {
            meta: true,
            ..ev("v", "KeyV")
        };
        assert_eq!(k.down(&meta_v), key("KeyV", true));
        assert_eq!(k.up(&ctrl_c), key("KeyC", false));
        assert_eq!(
            k.down(&ev("ArrowLeft", "ArrowLeft")),
            key("ArrowLeft", true)
        );
        assert_eq!(k.down(&ev("Tab", "Tab")), key("Tab", true));
    }

    #[test]
    fn altgr_characters_are_typed_as_text() {
        let mut k = Keyboard::new();
        let at = KeyEvent {
            ctrl: true,
            alt: true,
            alt_graph: true,
            ..ev("@", "KeyQ")
        };
        assert_eq!(k.down(&at), text("@"));
        let alt_f = KeyEvent {
            alt: true,
            ..ev("f", "KeyF")
        };
        assert_eq!(k.down(&alt_f), key("KeyF", true));
    }

    #[test]
    fn ime_and_dead_keys_are_left_to_the_browser() {
        let mut k = Keyboard::new();
        let composing = KeyEvent {
            composing: true,
            ..ev("a", "KeyA")
        };
        assert_eq!(k.down(&composing), None);
        assert_eq!(k.down(&ev("Process", "KeyA")), None);
        assert_eq!(k.down(&ev("Dead", "BracketRight")), None);
        assert_eq!(k.down(&ev("Unidentified", "")), None);
        assert_eq!(composed("日本"), text("日本"));
        assert_eq!(composed(""), None);
    }

    #[test]
    fn held_keys_are_released_once_on_blur() {
        let mut k = Keyboard::new();
        k.down(&ev("Shift", "ShiftLeft"));
        k.down(&ev("Control", "ControlLeft"));
        k.down(&ev("Control", "ControlLeft")); // auto-repeat
        let released = k.release_all();
        assert_eq!(
            released,
            vec![
                key("ControlLeft", false).expect("some"),
                key("ShiftLeft", false).expect("some")
            ]
        );
        assert!(k.release_all().is_empty());
        assert_eq!(k.up(&ev("Shift", "ShiftLeft")), None);
    }

    #[test]
    fn codes_the_server_would_refuse_are_not_sent() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&ev("F1", "F1")), key("F1", true));
        assert_eq!(k.down(&ev("Weird", "Has Space")), None);
        assert_eq!(k.down(&ev("Weird", &"K".repeat(40))), None);
    }
}
