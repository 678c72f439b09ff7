//! ONE thread owns enigo and replays browser input on the desktop.
//!
//! Events arrive over a bounded channel, already validated. Fractions map to pixels of
//! the streamed monitor (its real geometry and offset). The thread remembers which
//! buttons and keys it holds, so [`Input::release_all`] can let go of everything when
//! the controlling viewer leaves, even mid-drag.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deskcast_shared::{Button, ClientMessage, DragPhase};
use enigo::{Axis, Coordinate, Direction, Enigo, InputResult, Key, Keyboard, Mouse, Settings};
use tokio::sync::{broadcast, watch};

use crate::capture::Geometry;
use crate::pipeline::{Kicker, SourceState, Stats};

/// How many events may wait for the input thread before new ones are refused.
const QUEUE: usize = 256;

/// Gap between the two clicks of a double-click: far inside any OS double-click interval.
const DOUBLE_CLICK_GAP: Duration = Duration::from_millis(30);

/// The desktop's double-click time as deskcast assumes it: GTK's and Qt's default.
/// A second or third click that reaches the desktop later than this after the press
/// before it (the network stretched the gap) is replayed as a quick series.
pub const DESKTOP_DOUBLE_CLICK: Duration = Duration::from_millis(400);

/// How far (desktop pixels) the presses of one click series may be apart.
const CLICK_SERIES_DISTANCE: i32 = 8;

/// `ISO_Level3_Shift`: what AltGr is on layouts that have it.
const KEYSYM_ALTGR: u32 = 0xfe03;
/// `Alt_R`.
const KEYSYM_ALT_R: u32 = 0xffea;
/// `Super_R`.
const KEYSYM_SUPER_R: u32 = 0xffec;
/// `Menu` (the context-menu key).
const KEYSYM_MENU: u32 = 0xff67;

enum Command {
    /// An event, with the release generation it was sent in.
    Event(ClientMessage, u64),
    ReleaseAll,
    /// Release everything and end the thread.
    Stop,
}

/// Why an event was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The queue is full: the client sends faster than the desktop takes it.
    Full,
    /// The input thread is gone.
    Closed,
}

/// Where input goes: this machine's desktop (the input thread), or, at a relay, the
/// origin's over NATS. Cloning shares it.
#[derive(Clone)]
pub struct Input(Kind);

#[derive(Clone)]
enum Kind {
    Local(Local),
    Remote(Arc<crate::nats::relay::RemoteInput>),
}

impl Input {
    /// Starts the input thread. With `desktop` false, events are only recorded (tests).
    ///
    /// `applied.input_seq` receives the `seq` of each applied event, for the frame header.
    pub fn start(
        geometry: watch::Receiver<Geometry>,
        double_click: Duration,
        desktop: bool,
        applied: Arc<Stats>,
        kicker: Kicker,
        source: watch::Receiver<SourceState>,
    ) -> std::io::Result<Self> {
        Local::start(geometry, double_click, desktop, applied, kicker, source)
            .map(|l| Input(Kind::Local(l)))
    }

    /// Input sent on to the origin of a relay.
    pub fn remote(remote: Arc<crate::nats::relay::RemoteInput>) -> Self {
        Input(Kind::Remote(remote))
    }

    /// Whether input reaches the desktop now.
    pub fn available(&self) -> bool {
        match &self.0 {
            Kind::Local(l) => l.available(),
            Kind::Remote(r) => r.available(),
        }
    }

    /// Whether a control token gives control here: always on the desktop's own
    /// machine; at a relay, only when the origin allows it (`--relay-control`).
    pub fn may_control(&self) -> bool {
        match &self.0 {
            Kind::Local(_) => true,
            Kind::Remote(r) => r.may_control(),
        }
    }

    /// Whether what [`Input::may_control`] says is known: at a relay, once the origin
    /// was heard from.
    pub fn heard(&self) -> bool {
        match &self.0 {
            Kind::Local(_) => true,
            Kind::Remote(r) => r.heard(),
        }
    }

    /// Queues a validated event; never blocks.
    pub fn send(&self, msg: ClientMessage) -> Result<(), SendError> {
        match &self.0 {
            Kind::Local(l) => l.send(msg),
            Kind::Remote(r) => r.send(msg),
        }
    }

    /// Releases every button and key held, after the events already sent and before
    /// any sent later. Never blocks.
    pub fn release_all(&self) {
        match &self.0 {
            Kind::Local(l) => l.release_all(),
            Kind::Remote(r) => r.release_all(),
        }
    }

    /// Releases everything held and ends the input thread, waiting for it (blocking:
    /// call from a blocking context). Events queued before are applied first.
    pub fn stop(&self) {
        match &self.0 {
            Kind::Local(l) => l.stop(),
            Kind::Remote(r) => r.release_all(),
        }
    }

    /// Every event accepted for the desktop, in order (for tests).
    pub fn tap(&self) -> broadcast::Receiver<ClientMessage> {
        match &self.0 {
            Kind::Local(l) => l.tap(),
            Kind::Remote(r) => r.tap(),
        }
    }

    /// Refusals that come later than [`Input::send`] (the origin's, at a relay).
    pub fn refusals(&self) -> Option<broadcast::Receiver<(deskcast_shared::ErrorCode, String)>> {
        match &self.0 {
            Kind::Local(_) => None,
            Kind::Remote(r) => Some(r.errors()),
        }
    }
}

/// Handle to the input thread. Dropping the last handle stops the thread.
#[derive(Clone)]
struct Local {
    tx: SyncSender<Command>,
    tap: broadcast::Sender<ClientMessage>,
    /// Counts "release everything" requests. Events carry the count they were sent
    /// under; the thread releases after the events sent before a request and before the
    /// first one sent after it (or when its queue runs dry). A full queue never holds a
    /// release back, and no thread waits to deliver it.
    release: Arc<AtomicU64>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Whether the desktop could be opened for input (enigo and XTEST).
    opened: Arc<AtomicBool>,
    /// Whether the source (its X server) is there at all.
    source: watch::Receiver<SourceState>,
}

impl Local {
    fn start(
        geometry: watch::Receiver<Geometry>,
        double_click: Duration,
        desktop: bool,
        applied: Arc<Stats>,
        kicker: Kicker,
        source: watch::Receiver<SourceState>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (tap, _) = broadcast::channel(QUEUE);
        let thread_tap = tap.clone();
        let release = Arc::new(AtomicU64::new(0));
        let thread_release = release.clone();
        let opened = Arc::new(AtomicBool::new(!desktop));
        let (thread_opened, thread_source) = (opened.clone(), source.clone());
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("deskcast-input".into())
            .spawn(move || {
                let desk = Opener {
                    desktop,
                    geometry,
                    double_click,
                    opened: thread_opened,
                    source: thread_source,
                    last_try: None,
                    told: false,
                };
                input_loop(
                    (rx, &thread_release),
                    desk,
                    ready_tx,
                    &applied,
                    &kicker,
                    &thread_tap,
                )
            })?;
        // `hello` says whether input works: know it before the first viewer comes.
        let _ = ready.recv_timeout(Duration::from_secs(5));
        Ok(Local {
            tx,
            tap,
            release,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
            opened,
            source,
        })
    }

    /// Whether input reaches the desktop now: it could be opened, and the X server is
    /// there.
    pub fn available(&self) -> bool {
        self.opened.load(Ordering::SeqCst) && self.source.borrow().is_up()
    }

    /// Queues a validated event; never blocks.
    pub fn send(&self, msg: ClientMessage) -> Result<(), SendError> {
        let generation = self.release.load(Ordering::SeqCst);
        self.tx
            .try_send(Command::Event(msg, generation))
            .map_err(|e| match e {
                TrySendError::Full(_) => SendError::Full,
                TrySendError::Disconnected(_) => SendError::Closed,
            })
    }

    /// Releases every button and key the thread holds, after the events already sent
    /// and before any sent later. Never blocks and never waits for room in the queue.
    pub fn release_all(&self) {
        self.release.fetch_add(1, Ordering::SeqCst);
        // Wakes the thread if it waits; with a full queue it is busy and sees the flag
        // before its next event.
        let _ = self.tx.try_send(Command::ReleaseAll);
    }

    /// Releases everything held, ends the thread and waits for it (blocking: call from a
    /// blocking context). Events queued before are applied first.
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Every event accepted for the desktop, as the input thread takes it (for tests).
    pub fn tap(&self) -> broadcast::Receiver<ClientMessage> {
        self.tap.subscribe()
    }
}

/// Maps a `KeyboardEvent.code` to a key; `None` for codes we do not know.
pub fn key_for_code(code: &str) -> Option<Key> {
    if let Some(c) = code.strip_prefix("Key").filter(|c| c.len() == 1) {
        let ch = c.chars().next()?.to_ascii_lowercase();
        return ch.is_ascii_lowercase().then_some(Key::Unicode(ch));
    }
    if let Some(d) = code.strip_prefix("Digit").filter(|c| c.len() == 1) {
        let ch = d.chars().next()?;
        return ch.is_ascii_digit().then_some(Key::Unicode(ch));
    }
    if let Some(n) = code.strip_prefix('F').and_then(|n| n.parse::<u8>().ok()) {
        const F: [Key; 12] = [
            Key::F1,
            Key::F2,
            Key::F3,
            Key::F4,
            Key::F5,
            Key::F6,
            Key::F7,
            Key::F8,
            Key::F9,
            Key::F10,
            Key::F11,
            Key::F12,
        ];
        return F.get(usize::from(n).checked_sub(1)?).copied();
    }
    Some(match code {
        "Enter" | "NumpadEnter" => Key::Return,
        "Escape" => Key::Escape,
        "Backspace" => Key::Backspace,
        "Tab" => Key::Tab,
        "Space" => Key::Space,
        "ArrowLeft" => Key::LeftArrow,
        "ArrowRight" => Key::RightArrow,
        "ArrowUp" => Key::UpArrow,
        "ArrowDown" => Key::DownArrow,
        "Home" => Key::Home,
        "End" => Key::End,
        "PageUp" => Key::PageUp,
        "PageDown" => Key::PageDown,
        "Delete" => Key::Delete,
        "Insert" => Key::Insert,
        "CapsLock" => Key::CapsLock,
        "ShiftLeft" => Key::LShift,
        "ShiftRight" => Key::RShift,
        "ControlLeft" => Key::LControl,
        "ControlRight" => Key::RControl,
        "AltLeft" => Key::Alt,
        "AltRight" => Key::Other(KEYSYM_ALT_R),
        // Not a `KeyboardEvent.code`: the page sends it for AltRight when the client's
        // layout makes that key AltGr (`KeyboardEvent.key` "AltGraph").
        "AltGraph" => Key::Other(KEYSYM_ALTGR),
        "MetaLeft" | "OSLeft" => Key::Meta,
        "MetaRight" | "OSRight" => Key::Other(KEYSYM_SUPER_R),
        "ContextMenu" => Key::Other(KEYSYM_MENU),
        "PrintScreen" => Key::PrintScr,
        "Pause" => Key::Pause,
        "ScrollLock" => Key::ScrollLock,
        "NumLock" => Key::Numlock,
        "Minus" => Key::Unicode('-'),
        "Equal" => Key::Unicode('='),
        "BracketLeft" => Key::Unicode('['),
        "BracketRight" => Key::Unicode(']'),
        "Backslash" => Key::Unicode('\\'),
        "Semicolon" => Key::Unicode(';'),
        "Quote" => Key::Unicode('\''),
        "Comma" => Key::Unicode(','),
        "Period" => Key::Unicode('.'),
        "Slash" => Key::Unicode('/'),
        "Backquote" => Key::Unicode('`'),
        "Numpad0" => Key::Numpad0,
        "Numpad1" => Key::Numpad1,
        "Numpad2" => Key::Numpad2,
        "Numpad3" => Key::Numpad3,
        "Numpad4" => Key::Numpad4,
        "Numpad5" => Key::Numpad5,
        "Numpad6" => Key::Numpad6,
        "Numpad7" => Key::Numpad7,
        "Numpad8" => Key::Numpad8,
        "Numpad9" => Key::Numpad9,
        "NumpadAdd" => Key::Add,
        "NumpadSubtract" => Key::Subtract,
        "NumpadMultiply" => Key::Multiply,
        "NumpadDivide" => Key::Divide,
        "NumpadDecimal" => Key::Decimal,
        _ => return None,
    })
}

/// The key a `key` message presses: a letter by the client's layout when it sent one
/// (shortcuts follow the labels on the user's keyboard), otherwise by `code`.
pub fn key_for(code: &str, key: Option<&str>) -> Option<Key> {
    let mut chars = key.unwrap_or_default().chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_alphabetic() {
            return Some(Key::Unicode(c.to_ascii_lowercase()));
        }
    }
    key_for_code(code)
}

/// Whether `key` is a modifier: released around typed text, so a character comes out
/// as itself whatever modifiers the user physically holds.
fn is_modifier(key: Key) -> bool {
    matches!(
        key,
        Key::Shift
            | Key::LShift
            | Key::RShift
            | Key::Control
            | Key::LControl
            | Key::RControl
            | Key::Alt
            | Key::Meta
            | Key::Other(KEYSYM_ALTGR | KEYSYM_ALT_R | KEYSYM_SUPER_R)
    )
}

/// Maps a fraction of the streamed image to a desktop pixel (never past the last one).
pub fn to_pixel(geometry: Geometry, fx: f64, fy: f64) -> (i32, i32) {
    let axis = |origin: i32, size: u32, f: f64| {
        let max = f64::from(size.saturating_sub(1));
        origin + (f.clamp(0.0, 1.0) * f64::from(size)).floor().min(max) as i32
    };
    (
        axis(geometry.x, geometry.width, fx),
        axis(geometry.y, geometry.height, fy),
    )
}

fn button(b: Button) -> enigo::Button {
    match b {
        Button::Left => enigo::Button::Left,
        Button::Right => enigo::Button::Right,
        Button::Middle => enigo::Button::Middle,
    }
}

/// The last press of a button, to tell how far apart the clicks of a series landed.
#[derive(Debug, Clone, Copy)]
struct LastPress {
    button: Button,
    at: (i32, i32),
    when: Instant,
}

/// The desktop side: enigo plus what it currently holds down.
struct Desktop {
    enigo: Enigo,
    geometry: Geometry,
    buttons: HashSet<Button>,
    /// Keys held down, by the `code` that pressed them (a release finds the same key
    /// even when the layout character changed in between, as Shift does).
    keys: HashMap<String, Key>,
    drag: Option<Button>,
    last_press: Option<LastPress>,
    double_click: Duration,
}

impl Desktop {
    fn move_to(&mut self, x: f64, y: f64) -> enigo::InputResult<()> {
        let (px, py) = to_pixel(self.geometry, x, y);
        self.enigo.move_mouse(px, py, Coordinate::Abs)
    }

    fn press(&mut self, b: Button, down: bool) -> enigo::InputResult<()> {
        if down {
            self.buttons.insert(b);
        } else {
            self.buttons.remove(&b);
        }
        let dir = if down {
            Direction::Press
        } else {
            Direction::Release
        };
        self.enigo.button(button(b), dir)
    }

    /// A `button` press or release. A press that the client counted as the `clicks`th
    /// click of a series but that reaches the desktop too long after the press before
    /// it is preceded by `clicks - 1` quick clicks, so the desktop counts the series too.
    fn button(&mut self, x: f64, y: f64, b: Button, down: bool, clicks: u8) -> InputResult<()> {
        let at = to_pixel(self.geometry, x, y);
        let moved = self.enigo.move_mouse(at.0, at.1, Coordinate::Abs);
        if !down {
            // Release even if the move failed: a button must never stay held.
            return moved.and(self.press(b, false));
        }
        moved?;
        let now = Instant::now();
        let stretched = self.last_press.is_some_and(|last| {
            last.button == b
                && (last.at.0 - at.0).abs() <= CLICK_SERIES_DISTANCE
                && (last.at.1 - at.1).abs() <= CLICK_SERIES_DISTANCE
                && now.duration_since(last.when) > self.double_click
        });
        if clicks > 1 && stretched {
            for _ in 1..clicks {
                self.enigo.button(button(b), Direction::Click)?;
                std::thread::sleep(DOUBLE_CLICK_GAP);
            }
        }
        self.last_press = Some(LastPress {
            button: b,
            at,
            when: Instant::now(),
        });
        self.press(b, true)
    }

    /// Types `text` with the modifiers the user holds let go first and pressed again
    /// after, so `@` typed with AltGr (or Shift) comes out as `@` on any server layout.
    fn type_text(&mut self, text: &str) -> InputResult<()> {
        let held: Vec<Key> = self
            .keys
            .values()
            .copied()
            .filter(|k| is_modifier(*k))
            .collect();
        for k in &held {
            self.enigo.key(*k, Direction::Release)?;
        }
        let typed = self.enigo.text(text);
        for k in &held {
            self.enigo.key(*k, Direction::Press)?;
        }
        typed
    }

    fn apply(&mut self, msg: &ClientMessage) -> enigo::InputResult<()> {
        match msg {
            ClientMessage::Button {
                x,
                y,
                button: b,
                down,
                clicks,
                ..
            } => self.button(*x, *y, *b, *down, *clicks),
            ClientMessage::Click {
                x, y, button: b, ..
            } => {
                self.move_to(*x, *y)?;
                self.enigo.button(button(*b), Direction::Click)
            }
            ClientMessage::DoubleClick {
                x, y, button: b, ..
            } => {
                self.move_to(*x, *y)?;
                self.enigo.button(button(*b), Direction::Click)?;
                std::thread::sleep(DOUBLE_CLICK_GAP);
                self.enigo.button(button(*b), Direction::Click)
            }
            ClientMessage::Drag {
                phase,
                x,
                y,
                button: b,
                ..
            } => {
                let moved = self.move_to(*x, *y);
                if *phase == DragPhase::End {
                    // Release even if the move failed: a button must never stay held.
                    let released = match self.drag.take() {
                        Some(held) => self.press(held, false),
                        None => Ok(()),
                    };
                    return moved.and(released);
                }
                moved?;
                match phase {
                    DragPhase::Start => {
                        if let Some(old) = self.drag.take() {
                            self.press(old, false)?;
                        }
                        self.drag = Some(*b);
                        self.press(*b, true)
                    }
                    DragPhase::Move | DragPhase::End => Ok(()),
                }
            }
            ClientMessage::Move { x, y, .. } => self.move_to(*x, *y),
            ClientMessage::Wheel { dx, dy, .. } => {
                if *dy != 0 {
                    self.enigo.scroll(*dy, Axis::Vertical)?;
                }
                if *dx != 0 {
                    self.enigo.scroll(*dx, Axis::Horizontal)?;
                }
                Ok(())
            }
            ClientMessage::Key {
                code, down, key, ..
            } => {
                if *down {
                    let Some(k) = key_for(code, key.as_deref()) else {
                        return Ok(());
                    };
                    if self
                        .keys
                        .insert(code.clone(), k)
                        .is_some_and(|old| old != k)
                    {
                        // Pressed again as another character: let go of the first.
                        self.enigo.key(k, Direction::Release)?;
                    }
                    self.enigo.key(k, Direction::Press)
                } else {
                    match self.keys.remove(code) {
                        Some(k) => self.enigo.key(k, Direction::Release),
                        // Never pressed here: release what the code names, harmlessly.
                        None => match key_for_code(code) {
                            Some(k) => self.enigo.key(k, Direction::Release),
                            None => Ok(()),
                        },
                    }
                }
            }
            ClientMessage::Text { text, .. } => self.type_text(text),
            // Not input: the socket handles these and never sends them here.
            ClientMessage::Ack { .. }
            | ClientMessage::RequestControl
            | ClientMessage::ReleaseControl
            | ClientMessage::Clipboard { .. }
            | ClientMessage::Monitor { .. } => Ok(()),
        }
    }

    fn release_all(&mut self) {
        self.drag = None;
        for b in std::mem::take(&mut self.buttons) {
            let _ = self.enigo.button(button(b), Direction::Release);
        }
        for (_, k) in std::mem::take(&mut self.keys) {
            let _ = self.enigo.key(k, Direction::Release);
        }
    }
}

/// Whether `$DISPLAY` has the XTEST extension that input is replayed through.
fn xtest_present() -> Result<(), String> {
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, _) =
        x11rb::connect(None).map_err(|e| format!("cannot connect to the X server; {e}"))?;
    let reply = conn
        .query_extension(b"XTEST")
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| e.to_string())?;
    if reply.present {
        Ok(())
    } else {
        Err("the X server lacks the XTEST extension".into())
    }
}

/// Opens the desktop for input, and opens it again after its X server came back.
struct Opener {
    desktop: bool,
    /// Where the streamed image sits on the desktop, as it changes.
    geometry: watch::Receiver<Geometry>,
    double_click: Duration,
    opened: Arc<AtomicBool>,
    source: watch::Receiver<SourceState>,
    last_try: Option<Instant>,
    /// Whether a failure to open was logged.
    told: bool,
}

impl Opener {
    fn open(&mut self) -> Option<Desktop> {
        self.last_try = Some(Instant::now());
        // enigo delays every X11 button event by `linux_delay` ms (12 by default) in
        // XTEST itself: 12 ms on every click. Key events keep enigo's own keymap delay,
        // which a remapped keycode needs.
        let settings = Settings {
            linux_delay: 0,
            ..Settings::default()
        };
        // enigo opens without XTEST and fails only on the first event: ask first.
        match xtest_present().and_then(|()| Enigo::new(&settings).map_err(|e| e.to_string())) {
            Ok(enigo) => {
                self.opened.store(true, Ordering::SeqCst);
                Some(Desktop {
                    enigo,
                    geometry: *self.geometry.borrow(),
                    buttons: HashSet::new(),
                    keys: HashMap::new(),
                    drag: None,
                    last_press: None,
                    double_click: self.double_click,
                })
            }
            Err(e) => {
                if self.opened.swap(false, Ordering::SeqCst)
                    || !std::mem::replace(&mut self.told, true)
                {
                    tracing::error!(cause = %e, "cannot open the desktop for input; input is off");
                }
                None
            }
        }
    }

    /// The desktop to apply the next event to: `desk` while its X server stayed up,
    /// else opened anew (at most once a second); `None` while the X server is gone.
    fn current(&mut self, desk: &mut Option<Desktop>) {
        if !self.desktop {
            return;
        }
        if self.source.has_changed().unwrap_or(false) {
            // The X server went or came back: the old connection is dead either way.
            self.source.borrow_and_update();
            *desk = None;
        }
        if !self.source.borrow().is_up() {
            *desk = None;
            return;
        }
        let due = self
            .last_try
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if desk.is_none() && due {
            *desk = self.open();
        }
        if let Some(d) = desk.as_mut() {
            // Fractions map to the screen as it is now (it may have been resized).
            d.geometry = *self.geometry.borrow();
        }
    }
}

fn input_loop(
    (rx, release): (Receiver<Command>, &AtomicU64),
    mut opener: Opener,
    ready: mpsc::Sender<()>,
    applied: &Stats,
    kicker: &Kicker,
    tap: &broadcast::Sender<ClientMessage>,
) {
    let mut desk = None;
    opener.current(&mut desk);
    let _ = ready.send(());
    let mut last_error = None::<std::time::Instant>;
    let mut released = 0;
    let mut release_up_to = |upto: u64, desk: &mut Option<Desktop>| {
        if upto > released {
            released = upto;
            if let Some(d) = desk.as_mut() {
                d.release_all();
            }
        }
    };
    loop {
        let cmd = match rx.try_recv() {
            Ok(cmd) => cmd,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                // Everything sent so far is applied: honour any release asked for.
                release_up_to(release.load(Ordering::SeqCst), &mut desk);
                match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                }
            }
        };
        match cmd {
            // Queued behind the events sent before the release: now is its turn.
            Command::ReleaseAll => release_up_to(release.load(Ordering::SeqCst), &mut desk),
            Command::Stop => break,
            Command::Event(msg, generation) => {
                // Sent after a release that is not done yet: release first.
                release_up_to(generation, &mut desk);
                opener.current(&mut desk);
                // Only tests listen; do not copy every event for nobody.
                if tap.receiver_count() > 0 {
                    let _ = tap.send(msg.clone());
                }
                if let Some(d) = desk.as_mut() {
                    if let Err(e) = d.apply(&msg) {
                        if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                            tracing::warn!(cause = %e, "input event failed");
                            last_error = Some(std::time::Instant::now());
                        }
                    }
                }
                if let Some(seq) = msg.seq() {
                    applied.input_seq.store(seq, Ordering::SeqCst);
                }
                kicker.kick();
            }
        }
    }
    if let Some(d) = desk.as_mut() {
        d.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_map_to_the_monitor_with_its_offset() {
        let g = Geometry {
            x: 1920,
            y: 0,
            width: 1280,
            height: 720,
        };
        assert_eq!(to_pixel(g, 0.25, 0.5), (1920 + 320, 360));
        assert_eq!(to_pixel(g, 0.0, 0.0), (1920, 0));
        assert_eq!(
            to_pixel(g, 1.0, 1.0),
            (1920 + 1279, 719),
            "never past the last pixel"
        );
    }

    #[test]
    fn key_codes_map_and_unknown_ones_do_not() {
        assert_eq!(key_for_code("KeyA"), Some(Key::Unicode('a')));
        assert_eq!(key_for_code("Digit7"), Some(Key::Unicode('7')));
        assert_eq!(key_for_code("F5"), Some(Key::F5));
        assert_eq!(key_for_code("Enter"), Some(Key::Return));
        assert_eq!(key_for_code("ShiftLeft"), Some(Key::LShift));
        assert_eq!(key_for_code("F99"), None);
        assert_eq!(key_for_code("Key1"), None);
        assert_eq!(key_for_code("Nonsense"), None);
    }
}
