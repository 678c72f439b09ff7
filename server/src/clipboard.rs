//! The X clipboard, both ways, on one thread with its own X connection.
//!
//! - **Remote → browser**: XFixes tells us whenever another client takes the
//!   `CLIPBOARD` selection (and `PRIMARY`, with `--clipboard-primary`); we ask the new
//!   owner for `UTF8_STRING` and publish the text ([`Clipboard::watch`]).
//! - **Browser → remote**: [`Clipboard::set`] makes us the `CLIPBOARD` owner with that
//!   text, and we answer other clients' requests for it (`TARGETS`, `UTF8_STRING`,
//!   `STRING`, `TEXT`), so Ctrl+V on the desktop pastes it.
//! - Text only, UTF-8, at most [`MAX_BYTES`]; our own selection is never echoed back
//!   (XFixes reports us as the owner, and we skip that).
//!
//! Large transfers by the `INCR` protocol are not read: a text over what one property
//! holds is logged and skipped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use x11rb::connection::Connection as _;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, SelectionNotifyEvent,
    SelectionRequestEvent, Window, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

/// The longest clipboard text, either way.
pub const MAX_BYTES: usize = 1024 * 1024;

/// How often the thread looks for X events and commands while nothing happens.
const POLL: Duration = Duration::from_millis(30);

/// How often the thread tries to reach a lost X server again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A clipboard text with a serial that changes with every new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Changes with every text.
    pub serial: u64,
    /// The text.
    pub text: Arc<String>,
}

/// The clipboard thread's handle.
pub struct Clipboard {
    /// The newest text to own, waiting for the thread: one slot, so a client that sets
    /// texts faster than the thread takes them replaces, never queues.
    pending: Arc<Mutex<Option<String>>>,
    remote: watch::Sender<Option<Text>>,
}

impl Clipboard {
    /// Starts on `$DISPLAY`; `None` (logged) without an X server with XFixes.
    pub fn start(primary: bool) -> Option<Clipboard> {
        let x = match X::open(primary) {
            Ok(x) => x,
            Err(why) => {
                tracing::info!("no clipboard: {why}");
                return None;
            }
        };
        let pending = Arc::new(Mutex::new(None));
        let (remote, _) = watch::channel(None);
        let (publish, commands) = (remote.clone(), pending.clone());
        std::thread::Builder::new()
            .name("deskcast-clipboard".into())
            .spawn(move || {
                let mut x = x;
                loop {
                    let serial = x.run(&commands, &publish);
                    // The X server went away: connect again once it is back.
                    x = loop {
                        std::thread::sleep(RECONNECT_EVERY);
                        if let Ok(mut again) = X::open(primary) {
                            tracing::info!("clipboard: X connection back");
                            again.serial = serial;
                            break again;
                        }
                    };
                }
            })
            .ok()?;
        Some(Clipboard { pending, remote })
    }

    /// Makes `text` the desktop's clipboard.
    pub fn set(&self, text: String) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }

    /// The desktop's clipboard text as it changes (`None` until something is copied).
    pub fn watch(&self) -> watch::Receiver<Option<Text>> {
        self.remote.subscribe()
    }
}

struct Atoms {
    clipboard: Atom,
    utf8: Atom,
    targets: Atom,
    text: Atom,
    incr: Atom,
    property: Atom,
}

struct X {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    /// What we own `CLIPBOARD` with, if we do.
    owned: Option<String>,
    serial: u64,
}

fn atom(conn: &RustConnection, name: &str) -> Result<Atom, String> {
    conn.intern_atom(false, name.as_bytes())
        .map_err(|e| e.to_string())?
        .reply()
        .map(|r| r.atom)
        .map_err(|e| e.to_string())
}

impl X {
    fn open(primary: bool) -> Result<X, String> {
        let (conn, screen) = crate::capture::x11::connect_display()?;
        let root = screen.root;
        conn.xfixes_query_version(2, 0)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|_| "the X server lacks XFixes".to_string())?;
        let window = conn.generate_id().map_err(|e| e.to_string())?;
        conn.create_window(
            0,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(|e| e.to_string())?;
        let atoms = Atoms {
            clipboard: atom(&conn, "CLIPBOARD")?,
            utf8: atom(&conn, "UTF8_STRING")?,
            targets: atom(&conn, "TARGETS")?,
            text: atom(&conn, "TEXT")?,
            incr: atom(&conn, "INCR")?,
            property: atom(&conn, "DESKCAST_CLIPBOARD")?,
        };
        let mask = SelectionEventMask::SET_SELECTION_OWNER;
        let mut watched = vec![atoms.clipboard];
        if primary {
            watched.push(AtomEnum::PRIMARY.into());
        }
        for selection in watched {
            conn.xfixes_select_selection_input(window, selection, mask)
                .map_err(|e| e.to_string())?;
        }
        conn.flush().map_err(|e| e.to_string())?;
        Ok(X {
            conn,
            window,
            atoms,
            owned: None,
            serial: 0,
        })
    }

    /// Serves the clipboard until the X connection is lost; returns the last serial.
    fn run(
        &mut self,
        pending: &Mutex<Option<String>>,
        publish: &watch::Sender<Option<Text>>,
    ) -> u64 {
        loop {
            let next = pending.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(text) = next {
                self.own(text);
            }
            let event = match self.conn.poll_for_event() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "clipboard: X connection lost");
                    return self.serial;
                }
            };
            match event {
                Event::XfixesSelectionNotify(n) if n.owner != self.window && n.owner != NONE => {
                    // Someone copied: ask them for the text.
                    let _ = self.conn.convert_selection(
                        self.window,
                        n.selection,
                        self.atoms.utf8,
                        self.atoms.property,
                        n.selection_timestamp,
                    );
                    let _ = self.conn.flush();
                }
                Event::SelectionNotify(n) if n.property != NONE => {
                    if let Some(text) = self.read() {
                        self.serial += 1;
                        publish.send_replace(Some(Text {
                            serial: self.serial,
                            text: Arc::new(text),
                        }));
                    }
                }
                Event::SelectionRequest(r) => self.answer(&r),
                Event::SelectionClear(_) => self.owned = None,
                _ => {}
            }
        }
    }

    /// The text the owner put on our property, if it is one we take.
    fn read(&self) -> Option<String> {
        let reply = self
            .conn
            .get_property(
                true,
                self.window,
                self.atoms.property,
                AtomEnum::ANY,
                0,
                (MAX_BYTES / 4 + 1) as u32,
            )
            .ok()?
            .reply()
            .ok()?;
        if reply.type_ == self.atoms.incr {
            tracing::info!("clipboard: a text too large for one transfer (INCR) was skipped");
            return None;
        }
        if reply.bytes_after > 0 || reply.value.len() > MAX_BYTES {
            tracing::info!("clipboard: a text over {MAX_BYTES} bytes was skipped");
            return None;
        }
        match String::from_utf8(reply.value) {
            Ok(text) => Some(text),
            Err(_) => {
                tracing::debug!("clipboard: not UTF-8; skipped");
                None
            }
        }
    }

    fn own(&mut self, text: String) {
        self.owned = Some(text);
        let _ = self
            .conn
            .set_selection_owner(self.window, self.atoms.clipboard, CURRENT_TIME);
        let _ = self.conn.flush();
    }

    /// Another client asks for what we own.
    fn answer(&self, r: &SelectionRequestEvent) {
        let property = if r.property == NONE {
            r.target
        } else {
            r.property
        };
        let string: Atom = AtomEnum::STRING.into();
        let given = match &self.owned {
            Some(text) if r.selection == self.atoms.clipboard => {
                if r.target == self.atoms.targets {
                    let targets = [self.atoms.targets, self.atoms.utf8, string, self.atoms.text];
                    self.conn
                        .change_property32(
                            PropMode::REPLACE,
                            r.requestor,
                            property,
                            AtomEnum::ATOM,
                            &targets,
                        )
                        .is_ok()
                } else if [self.atoms.utf8, string, self.atoms.text].contains(&r.target) {
                    let kind = if r.target == string {
                        string
                    } else {
                        self.atoms.utf8
                    };
                    self.conn
                        .change_property8(
                            PropMode::REPLACE,
                            r.requestor,
                            property,
                            kind,
                            text.as_bytes(),
                        )
                        .is_ok()
                } else {
                    false
                }
            }
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: r.time,
            requestor: r.requestor,
            selection: r.selection,
            target: r.target,
            property: if given { property } else { NONE },
        };
        let _ = self
            .conn
            .send_event(false, r.requestor, EventMask::NO_EVENT, notify);
        let _ = self.conn.flush();
    }
}
