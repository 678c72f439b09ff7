//! A small real X client for tests: a full-screen window of one colour that logs what
//! the X server delivers to it (buttons, motion, keys) and can toggle colour on click.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

/// One event as the X server delivered it; positions are root (screen) coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XEvent {
    /// `state` is the modifier and button mask at the press (Shift 1, Control 4);
    /// `time` the X server's timestamp, milliseconds.
    Press {
        button: u8,
        x: i16,
        y: i16,
        state: u16,
        time: u32,
    },
    Release {
        button: u8,
        x: i16,
        y: i16,
        time: u32,
    },
    Motion {
        x: i16,
        y: i16,
    },
    Key {
        keysym: u32,
        down: bool,
    },
}

/// A full-screen override-redirect window on a display.
pub struct TestWindow {
    conn: Arc<RustConnection>,
    window: Window,
    pub events: Arc<Mutex<Vec<XEvent>>>,
    color: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

const COLOR_A: u32 = 0x3366cc;
const COLOR_B: u32 = 0xcc3300;

impl TestWindow {
    /// Opens the window filling the screen, in `color` (0xRRGGBB), and waits until it is mapped.
    pub fn open(display: &str, color: u32, toggle_on_click: bool) -> TestWindow {
        TestWindow::open_rect(display, color, toggle_on_click, None)
    }

    /// Like [`TestWindow::open`], at `rect` (x, y, width, height) instead of full screen.
    pub fn open_rect(
        display: &str,
        color: u32,
        toggle_on_click: bool,
        rect: Option<(i16, i16, u16, u16)>,
    ) -> TestWindow {
        let (conn, screen_num) = x11rb::connect(Some(display)).expect("connect to X");
        let conn = Arc::new(conn);
        let screen = conn.setup().roots[screen_num].clone();
        let (x, y, width, height) =
            rect.unwrap_or((0, 0, screen.width_in_pixels, screen.height_in_pixels));
        let window = conn.generate_id().expect("id");
        let mask = EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::POINTER_MOTION
            | EventMask::KEY_PRESS
            | EventMask::KEY_RELEASE
            | EventMask::STRUCTURE_NOTIFY
            | EventMask::EXPOSURE;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            screen.root,
            x,
            y,
            width,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(color)
                .override_redirect(1)
                .event_mask(mask),
        )
        .expect("create window");
        conn.map_window(window).expect("map");
        conn.flush().expect("flush");
        // Wait for MapNotify, then take keyboard focus so key events come here.
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "window never mapped"
            );
            if let Ok(Some(Event::MapNotify(_))) = conn.poll_for_event() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        conn.set_input_focus(
            x11rb::protocol::xproto::InputFocus::POINTER_ROOT,
            window,
            x11rb::CURRENT_TIME,
        )
        .expect("focus");
        conn.get_input_focus()
            .expect("request")
            .reply()
            .expect("sync");
        let keymap = keymap(&conn);
        let events = Arc::new(Mutex::new(Vec::new()));
        let color = Arc::new(AtomicU32::new(color));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, ev, col, st) = (conn.clone(), events.clone(), color.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok(event) = c.wait_for_event() else {
                    return;
                };
                let logged = match event {
                    Event::ButtonPress(e) => {
                        if toggle_on_click && e.detail == 1 {
                            let next = if col.load(Ordering::SeqCst) == COLOR_A {
                                COLOR_B
                            } else {
                                COLOR_A
                            };
                            col.store(next, Ordering::SeqCst);
                            let _ = c.change_window_attributes(
                                window,
                                &ChangeWindowAttributesAux::new().background_pixel(next),
                            );
                            let _ = c.clear_area(false, window, 0, 0, 0, 0);
                            let _ = c.flush();
                        }
                        Some(XEvent::Press {
                            button: e.detail,
                            x: e.root_x,
                            y: e.root_y,
                            state: e.state.bits(),
                            time: e.time,
                        })
                    }
                    Event::ButtonRelease(e) => Some(XEvent::Release {
                        button: e.detail,
                        x: e.root_x,
                        y: e.root_y,
                        time: e.time,
                    }),
                    Event::MotionNotify(e) => Some(XEvent::Motion {
                        x: e.root_x,
                        y: e.root_y,
                    }),
                    Event::KeyPress(e) => Some(XEvent::Key {
                        keysym: keymap(e.detail, e.state.bits()),
                        down: true,
                    }),
                    Event::KeyRelease(e) => Some(XEvent::Key {
                        keysym: keymap(e.detail, e.state.bits()),
                        down: false,
                    }),
                    _ => None,
                };
                if let Some(l) = logged {
                    ev.lock().expect("events lock").push(l);
                }
            }
        });
        TestWindow {
            conn,
            window,
            events,
            color,
            stop,
        }
    }

    /// The window's current colour.
    pub fn color(&self) -> u32 {
        self.color.load(Ordering::SeqCst)
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<XEvent> {
        self.events.lock().expect("events lock").clone()
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.events.lock().expect("events lock").clear();
    }

    /// Waits until `cond` holds for the event log, up to `limit`; returns the log.
    pub fn wait_for(&self, limit: Duration, cond: impl Fn(&[XEvent]) -> bool) -> Vec<XEvent> {
        let start = Instant::now();
        loop {
            let ev = self.events();
            if cond(&ev) || start.elapsed() > limit {
                return ev;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestWindow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.conn.destroy_window(self.window);
        let _ = self.conn.flush();
    }
}

/// keycode (+ shift state) → keysym, from the server's keyboard mapping.
fn keymap(conn: &RustConnection) -> impl Fn(u8, u16) -> u32 + Send + 'static {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn
        .get_keyboard_mapping(min, max - min + 1)
        .expect("request")
        .reply()
        .expect("keyboard mapping");
    let per = map.keysyms_per_keycode as usize;
    let syms = map.keysyms;
    move |code: u8, state: u16| {
        let base = (code.saturating_sub(min)) as usize * per;
        let shift = usize::from(state & 1 != 0);
        let sym = syms.get(base + shift).copied().unwrap_or(0);
        if sym == 0 {
            syms.get(base).copied().unwrap_or(0)
        } else {
            sym
        }
    }
}
