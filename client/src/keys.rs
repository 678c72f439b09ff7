//! Keyboard events → `text` and `key` messages.
//!
//! Printable characters typed without Ctrl, Meta or Alt go out as `text` (so the
//! remote side types the character the person sees, whatever its keyboard layout);
//! everything else (Enter, arrows, F-keys, shortcuts, the modifiers themselves) goes
//! out as `key` down/up named by `KeyboardEvent.code`. Keys sent down are remembered,
//! so their release is sent too, and so all of them can be released when the page's
//! keyboard input loses focus: no key stays stuck on the server.
//!
//! Keys arrive on a hidden `<textarea>`, which is what lets an IME compose text and a
//! phone open its keyboard. While an IME composes, keys are the IME's: nothing is sent
//! until `compositionend` brings the result. Phone keyboards often send a keydown that
//! says nothing (`keyCode` 229, key `Unidentified`) and then an `input` event with the
//! text, a line break or a deletion; those `input` events are typed too, unless they
//! only repeat what the keydown just sent.

use deskcast_shared::{ClientMessage, MAX_KEY_CODE_LEN};

/// `KeyboardEvent.keyCode` of a key the IME is processing.
pub const IME_KEY_CODE: u32 = 229;

/// Keys whose `KeyboardEvent.key` is also their `code`: sent by key name when a phone
/// keyboard leaves `code` empty.
const NAMED_KEYS: &[&str] = &[
    "Backspace",
    "Delete",
    "Enter",
    "Tab",
    "Escape",
    "ArrowLeft",
    "ArrowRight",
    "ArrowUp",
    "ArrowDown",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Insert",
];

/// The parts of a `KeyboardEvent` that decide what to send.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyEvent<'a> {
    /// `KeyboardEvent.key`: the character produced, or a name such as `Enter`.
    pub key: &'a str,
    /// `KeyboardEvent.code`: the physical key, such as `KeyA`.
    pub code: &'a str,
    /// `KeyboardEvent.keyCode`: 229 ([`IME_KEY_CODE`]) while an IME handles the key.
    pub key_code: u32,
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
    /// `KeyboardEvent.repeat`: the browser's auto-repeat of a held key.
    pub repeat: bool,
}

/// Whether `code` is a `KeyboardEvent.code` the server accepts.
fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_KEY_CODE_LEN
        && code.chars().all(|c| c.is_ascii_alphanumeric())
        && code != "Unidentified"
}

/// The code to send for `e`: its own, or the name of a [`NAMED_KEYS`] key without one.
/// AltRight is sent as `AltGraph` when the client's layout makes it AltGr, so the
/// server presses its own AltGr rather than Alt.
fn code_of<'a>(e: &KeyEvent<'a>) -> Option<&'a str> {
    if e.key == "AltGraph" {
        Some("AltGraph")
    } else if valid_code(e.code) {
        Some(e.code)
    } else {
        NAMED_KEYS.contains(&e.key).then_some(e.key)
    }
}

/// Whether `key` is one printable character.
fn printable(key: &str) -> bool {
    let mut chars = key.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if !c.is_control())
}

/// `text` message for `text`, unless it is empty.
fn text(text: &str) -> Option<ClientMessage> {
    (!text.is_empty()).then(|| ClientMessage::Text {
        text: text.to_string(),
        seq: None,
    })
}

/// A press and release of the key `code`.
fn tap(code: &str) -> Vec<ClientMessage> {
    [true, false]
        .map(|down| ClientMessage::Key {
            code: code.to_string(),
            down,
            key: None,
            seq: None,
        })
        .into()
}

/// A key combination from the keys menu (Ctrl+Alt+Del, Alt+Tab, …): each `code`
/// pressed in order, then released in reverse order.
pub fn combo(codes: &[&str]) -> Vec<ClientMessage> {
    let key = |code: &&str, down| ClientMessage::Key {
        code: (*code).to_string(),
        down,
        key: None,
        seq: None,
    };
    codes
        .iter()
        .map(|c| key(c, true))
        .chain(codes.iter().rev().map(|c| key(c, false)))
        .collect()
}

/// Keyboard state: keys sent down and not yet up, an IME composition in progress,
/// and what the last keydown sent.
#[derive(Debug, Default)]
pub struct Keyboard {
    held: Vec<String>,
    /// Between `compositionstart` and `compositionend`.
    composing: bool,
    /// What the current keydown sent, until the next key event: an `input` event that
    /// repeats it (phone keyboards do not always honour `preventDefault`) is dropped.
    just_sent: Option<ClientMessage>,
}

impl Keyboard {
    /// Nothing held, not composing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the key `code` was sent down and not yet up. The browser's repeats of
    /// such a key are swallowed: the server holds the key, and its own auto-repeat
    /// repeats it (sending both would double every repeat).
    pub fn holds(&self, code: &str) -> bool {
        self.held.iter().any(|c| c == code)
    }

    /// Whether `e` is a browser repeat of a key held on the server: send nothing, and
    /// `preventDefault()` it (a repeated Tab must not move the page's focus either).
    pub fn swallows(&self, e: &KeyEvent<'_>) -> bool {
        e.repeat && code_of(e).is_some_and(|c| self.holds(c))
    }

    /// A `keydown`. `Some` means: send it and `preventDefault()` the event.
    /// `None` means the event is left to the browser (IME, dead keys, unknown keys,
    /// repeats of a held key, which the page swallows: see [`Keyboard::holds`]);
    /// what it types, if anything, comes as `compositionend` or `input`.
    pub fn down(&mut self, e: &KeyEvent<'_>) -> Option<ClientMessage> {
        self.just_sent = None;
        if self.swallows(e) {
            return None;
        }
        if self.composing
            || e.composing
            || e.key_code == IME_KEY_CODE
            || matches!(e.key, "Process" | "Dead" | "Unidentified")
        {
            return None;
        }
        let msg = if printable(e.key) && (!(e.ctrl || e.meta || e.alt) || e.alt_graph) {
            ClientMessage::Text {
                text: e.key.to_string(),
                seq: None,
            }
        } else {
            let code = code_of(e)?;
            if !self.held.iter().any(|c| c == code) {
                self.held.push(code.to_string());
            }
            // A letter names a shortcut by the client's layout (Ctrl+Z on AZERTY).
            let letter = e.key.len() == 1 && e.key.chars().all(|c| c.is_ascii_alphabetic());
            ClientMessage::Key {
                code: code.to_string(),
                down: true,
                key: letter.then(|| e.key.to_string()),
                seq: None,
            }
        };
        self.just_sent = Some(msg.clone());
        Some(msg)
    }

    /// A `keyup`: the release of a key that was sent down, else `None`.
    pub fn up(&mut self, e: &KeyEvent<'_>) -> Option<ClientMessage> {
        self.just_sent = None;
        let code = code_of(e)?;
        let i = self.held.iter().position(|c| c == code)?;
        let code = self.held.remove(i);
        Some(ClientMessage::Key {
            code,
            down: false,
            key: None,
            seq: None,
        })
    }

    /// A `compositionstart`: keys belong to the IME until the composition ends.
    pub fn composition_start(&mut self) {
        self.composing = true;
        self.just_sent = None;
    }

    /// A `compositionend`: the IME's result, if any, to be typed as is.
    pub fn composition_end(&mut self, data: &str) -> Option<ClientMessage> {
        self.composing = false;
        text(data)
    }

    /// Whether an IME composition is in progress (the textarea must be left alone).
    pub fn composing(&self) -> bool {
        self.composing
    }

    /// An `input` event: `InputEvent.inputType`, `.data` and `.isComposing`.
    /// Typed text, a line break (Enter) or a deletion (Backspace, Delete) is sent,
    /// unless an IME is composing or the keydown just before already sent it.
    pub fn input(&mut self, input_type: &str, data: &str, composing: bool) -> Vec<ClientMessage> {
        let just_sent = self.just_sent.take();
        if self.composing || composing {
            return Vec::new();
        }
        let msgs = match input_type {
            "insertText" => text(data).into_iter().collect(),
            "insertLineBreak" | "insertParagraph" => tap("Enter"),
            "deleteContentBackward" => tap("Backspace"),
            "deleteContentForward" => tap("Delete"),
            _ => Vec::new(),
        };
        if msgs.first().is_some_and(|m| just_sent.as_ref() == Some(m)) {
            return Vec::new();
        }
        msgs
    }

    /// Releases every held key (focus lost, connection lost, role changed).
    pub fn release_all(&mut self) -> Vec<ClientMessage> {
        self.just_sent = None;
        self.held
            .drain(..)
            .rev()
            .map(|code| ClientMessage::Key {
                code,
                down: false,
                key: None,
                seq: None,
            })
            .collect()
    }

    /// The keyboard input lost focus: the browser ends any composition (its
    /// `compositionend` may still come), and every held key is released.
    pub fn blur(&mut self) -> Vec<ClientMessage> {
        self.composing = false;
        self.release_all()
    }

    /// Forgets held keys without sending their release (the connection is gone).
    pub fn clear(&mut self) {
        self.held.clear();
        self.just_sent = None;
    }
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
            key: None,
            seq: None,
        })
    }

    fn shortcut(code: &str, letter: &str) -> Option<ClientMessage> {
        Some(ClientMessage::Key {
            code: code.into(),
            down: true,
            key: Some(letter.into()),
            seq: None,
        })
    }

    /// The keydown of a phone keyboard or an IME: it says nothing about the key.
    fn unidentified() -> KeyEvent<'static> {
        KeyEvent {
            key_code: IME_KEY_CODE,
            ..ev("Unidentified", "")
        }
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
        assert_eq!(k.down(&ctrl_c), shortcut("KeyC", "c"));
        let meta_v = KeyEvent {
            meta: true,
            ..ev("v", "KeyV")
        };
        assert_eq!(k.down(&meta_v), shortcut("KeyV", "v"));
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
        assert_eq!(k.down(&alt_f), shortcut("KeyF", "f"));
    }

    #[test]
    fn shortcuts_name_the_letter_of_the_client_layout() {
        let mut k = Keyboard::new();
        // Ctrl+Z on a German keyboard: the key labelled Z is where US has Y.
        let ctrl_z = KeyEvent {
            ctrl: true,
            ..ev("z", "KeyY")
        };
        assert_eq!(k.down(&ctrl_z), shortcut("KeyY", "z"));
        // A Cyrillic letter says nothing the server can map: the code decides.
        let ctrl_c = KeyEvent {
            ctrl: true,
            ..ev("с", "KeyC")
        };
        assert_eq!(k.down(&ctrl_c), key("KeyC", true));
        // Ctrl+Shift+2: not a letter, the code decides.
        let ctrl_at = KeyEvent {
            ctrl: true,
            ..ev("@", "Digit2")
        };
        assert_eq!(k.down(&ctrl_at), key("Digit2", true));
        // The release names the code only; the server remembers what it pressed.
        assert_eq!(k.up(&ev("Z", "KeyY")), key("KeyY", false));
    }

    #[test]
    fn altgr_is_sent_as_altgr_not_alt() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&ev("AltGraph", "AltRight")), key("AltGraph", true));
        assert_eq!(k.up(&ev("AltGraph", "AltRight")), key("AltGraph", false));
        // On a US layout the same key is a right Alt.
        assert_eq!(k.down(&ev("Alt", "AltRight")), key("AltRight", true));
    }

    #[test]
    fn a_combination_presses_in_order_and_releases_in_reverse() {
        let msgs = combo(&["ControlLeft", "AltLeft", "Delete"]);
        let expected: Vec<_> = [
            ("ControlLeft", true),
            ("AltLeft", true),
            ("Delete", true),
            ("Delete", false),
            ("AltLeft", false),
            ("ControlLeft", false),
        ]
        .into_iter()
        .filter_map(|(c, d)| key(c, d))
        .collect();
        assert_eq!(msgs, expected);
    }

    #[test]
    fn browser_repeats_of_a_held_key_are_not_sent() {
        let mut k = Keyboard::new();
        let repeat = |key, code| KeyEvent {
            repeat: true,
            ..ev(key, code)
        };
        assert_eq!(
            k.down(&ev("Backspace", "Backspace")),
            key("Backspace", true)
        );
        assert!(k.holds("Backspace"));
        assert_eq!(k.down(&repeat("Backspace", "Backspace")), None);
        assert_eq!(k.down(&repeat("Backspace", "Backspace")), None);
        assert_eq!(k.up(&ev("Backspace", "Backspace")), key("Backspace", false));
        // A printable key is typed as text, so nothing holds it: its repeats type.
        assert_eq!(k.down(&ev("a", "KeyA")), text("a"));
        assert_eq!(k.down(&repeat("a", "KeyA")), text("a"));
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
        assert_eq!(k.down(&unidentified()), None);
        // keyCode 229 alone marks the IME's key, whatever `key` says (Safari's Enter
        // committing a composition comes after `compositionend`).
        let committing = KeyEvent {
            key_code: IME_KEY_CODE,
            ..ev("Enter", "Enter")
        };
        assert_eq!(k.down(&committing), None);
        assert!(k.release_all().is_empty(), "nothing was sent down");
    }

    #[test]
    fn a_composition_suppresses_keys_and_types_its_result() {
        let mut k = Keyboard::new();
        k.composition_start();
        assert!(k.composing());
        // Even a keydown that does not say it is composing belongs to the IME now.
        assert_eq!(k.down(&ev("n", "KeyN")), None);
        assert_eq!(k.down(&ev("Enter", "Enter")), None);
        assert!(k.input("insertCompositionText", "に", true).is_empty());
        assert!(k.input("insertText", "に", false).is_empty());
        assert_eq!(k.composition_end("日本"), text("日本"));
        assert!(!k.composing());
        // Firefox's `input` after `compositionend`: not typed a second time.
        assert!(k.input("insertCompositionText", "日本", false).is_empty());
        // Keys are the page's again.
        assert_eq!(k.down(&ev("a", "KeyA")), text("a"));
        // A cancelled composition types nothing.
        k.composition_start();
        assert_eq!(k.composition_end(""), None);
    }

    #[test]
    fn losing_focus_ends_a_composition() {
        let mut k = Keyboard::new();
        k.composition_start();
        assert!(k.blur().is_empty());
        assert!(!k.composing());
        assert_eq!(k.down(&ev("a", "KeyA")), text("a"));
    }

    #[test]
    fn phone_keyboards_type_through_input_events() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&unidentified()), None);
        assert_eq!(
            k.input("insertText", "a", false),
            vec![text("a").expect("some")]
        );
        assert_eq!(k.up(&unidentified()), None);
        // Autocorrect or a suggestion: several characters at once.
        assert_eq!(
            k.input("insertText", "hello ", false),
            vec![text("hello ").expect("some")]
        );
        let enter = [key("Enter", true), key("Enter", false)].map(Option::unwrap);
        assert_eq!(k.input("insertLineBreak", "", false), enter.to_vec());
        assert_eq!(k.input("insertParagraph", "", false), enter.to_vec());
        let backspace = [key("Backspace", true), key("Backspace", false)].map(Option::unwrap);
        assert_eq!(
            k.input("deleteContentBackward", "", false),
            backspace.to_vec()
        );
        // Nothing to type: paste into the hidden textarea, undo, an empty insert.
        assert!(k.input("insertFromPaste", "x", false).is_empty());
        assert!(k.input("historyUndo", "", false).is_empty());
        assert!(k.input("insertText", "", false).is_empty());
    }

    #[test]
    fn input_repeating_the_keydown_just_sent_is_not_sent_twice() {
        let mut k = Keyboard::new();
        assert_eq!(k.down(&ev("a", "KeyA")), text("a"));
        assert!(k.input("insertText", "a", false).is_empty());
        assert_eq!(k.up(&ev("a", "KeyA")), None);
        // The same character later, from the phone keyboard alone, is typed.
        assert_eq!(
            k.input("insertText", "a", false),
            vec![text("a").expect("some")]
        );

        assert_eq!(k.down(&ev("Enter", "Enter")), key("Enter", true));
        assert!(k.input("insertLineBreak", "", false).is_empty());
        assert_eq!(k.up(&ev("Enter", "Enter")), key("Enter", false));

        // A different text after a keydown is not a repeat.
        assert_eq!(k.down(&ev("b", "KeyB")), text("b"));
        assert_eq!(
            k.input("insertText", "c", false),
            vec![text("c").expect("some")]
        );
        // Only one `input` can repeat a keydown.
        assert_eq!(k.down(&ev("d", "KeyD")), text("d"));
        assert!(k.input("insertText", "d", false).is_empty());
        assert_eq!(
            k.input("insertText", "d", false),
            vec![text("d").expect("some")]
        );
    }

    #[test]
    fn named_keys_without_a_code_are_sent_by_name() {
        let mut k = Keyboard::new();
        // Phone keyboards: Backspace and Enter with keyCode 8 and 13 but no code.
        assert_eq!(k.down(&ev("Backspace", "")), key("Backspace", true));
        assert_eq!(k.up(&ev("Backspace", "")), key("Backspace", false));
        assert_eq!(k.down(&ev("Enter", "Unidentified")), key("Enter", true));
        assert_eq!(k.up(&ev("Enter", "")), key("Enter", false));
        // Other keys without a usable code are not guessed.
        assert_eq!(k.down(&ev("Shift", "")), None);
        assert_eq!(k.down(&ev("F13", "")), None);
    }

    #[test]
    fn held_keys_are_released_once_on_blur() {
        let mut k = Keyboard::new();
        k.down(&ev("Shift", "ShiftLeft"));
        k.down(&ev("Control", "ControlLeft"));
        k.down(&ev("Control", "ControlLeft")); // auto-repeat
        let released = k.blur();
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
        assert_eq!(k.down(&ev("Weird", "Unidentified")), None);
    }
}
