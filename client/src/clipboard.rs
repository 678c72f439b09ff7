//! The clipboard's pure parts: cutting a text into messages that fit, and telling a
//! paste shortcut when the user presses one.

use deskcast_shared::{ClientMessage, MAX_MESSAGE_BYTES};

use crate::keys::KeyEvent;

/// The longest clipboard text the server takes, bytes of UTF-8.
pub const MAX_CLIPBOARD_BYTES: usize = 1024 * 1024;

/// Room for the message's own JSON around a piece of text.
const ENVELOPE: usize = 64;

/// How many bytes `c` takes inside a JSON string.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` as `clipboard` messages, each under the server's message limit, all but the
/// last with `more`.
pub fn pieces(text: &str) -> Vec<ClientMessage> {
    let room = MAX_MESSAGE_BYTES - ENVELOPE;
    let mut out = Vec::new();
    let mut piece = String::new();
    let mut size = 0;
    for c in text.chars() {
        let n = json_len(c);
        if size + n > room {
            out.push(std::mem::take(&mut piece));
            size = 0;
        }
        piece.push(c);
        size += n;
    }
    out.push(piece);
    let last = out.len() - 1;
    out.into_iter()
        .enumerate()
        .map(|(i, text)| ClientMessage::Clipboard {
            text,
            more: i < last,
        })
        .collect()
}

/// Whether a key press is the paste shortcut (Ctrl+V, Cmd+V): the page then lets the
/// browser paste, sends the pasted text to the remote clipboard, and only then the
/// keys, so the desktop pastes what was just copied here.
pub fn is_paste(ev: &KeyEvent) -> bool {
    let v = ev.code == "KeyV" || ev.key.eq_ignore_ascii_case("v");
    (ev.ctrl || ev.meta) && !ev.alt && v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_fit_the_message_limit_and_join_back() {
        let text: String = (0..20_000)
            .map(|i| ['a', 'é', '"', '\n', '\u{1}', '✓'][i % 6])
            .collect();
        let msgs = pieces(&text);
        assert!(msgs.len() > 1);
        let mut joined = String::new();
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.to_json().len() <= MAX_MESSAGE_BYTES, "piece {i}");
            let ClientMessage::Clipboard { text, more } = m else {
                panic!("{m:?}")
            };
            assert_eq!(*more, i + 1 < msgs.len());
            joined.push_str(text);
        }
        assert_eq!(joined, text);
        assert_eq!(pieces("").len(), 1, "an empty clipboard is one message");
    }

    #[test]
    fn the_paste_shortcut_is_told_apart() {
        let key = |key, code, ctrl, meta| KeyEvent {
            key,
            code,
            ctrl,
            meta,
            ..KeyEvent::default()
        };
        assert!(is_paste(&key("v", "KeyV", true, false)));
        assert!(is_paste(&key("v", "KeyV", false, true)), "Cmd+V");
        assert!(
            is_paste(&key("v", "KeyP", true, false)),
            "Dvorak: the V label"
        );
        assert!(!is_paste(&key("v", "KeyV", false, false)), "just v");
        assert!(!is_paste(&key("c", "KeyC", true, false)));
    }
}
