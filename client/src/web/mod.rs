//! The DOM glue (`wasm32` only): builds the [`App`], installs the page's listeners and
//! starts the first connection.
//!
//! - [`socket`]: the WebSocket: connect, `hello`/`role`/`error`, frames in, input out,
//!   reconnect with backoff.
//! - [`screen`]: canvas sizing, JPEG decode via `createImageBitmap`, drawing on
//!   `requestAnimationFrame`.
//! - [`input`]: pointer, wheel and keyboard listeners → the pure gesture, wheel and key
//!   state machines → messages. Keys, IME compositions and phone keyboards arrive on a
//!   hidden `<textarea>`, focused by a press on the canvas.
//! - [`overlay`]: the status line and the "view only" badge.
//!
//! Every callback lives as long as the page: each is created once, handed to JS with
//! `into_js_value` (the page's GC owns it) and holds only a `Weak` to the app, so no
//! closure is ever created per message or per connection.

mod clipboard;
mod input;
mod overlay;
mod screen;
mod socket;
mod tools;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use deskcast_shared::FrameHeader;
use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    AddEventListenerOptions, CanvasRenderingContext2d, Document, EventTarget, HtmlCanvasElement,
    HtmlElement, HtmlTextAreaElement, ImageBitmap, Performance, WebSocket, Window,
};

use crate::connect::{Backoff, Sequencer};
use crate::frames::Composer;
use crate::gesture::Gestures;
use crate::keys::Keyboard;
use crate::stats::{ConnState, Photon, RateMeter, Status};
use crate::wheel::Wheel;

use overlay::Overlay;
use tools::{CursorLook, Tools};

/// Entry point, run by the generated JS as soon as the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    console_error_panic_hook::set_once();
    let app = App::new()?;
    app.install()?;
    app.resize();
    app.connect();
    APP.with(|slot| *slot.borrow_mut() = Some(app));
    Ok(())
}

thread_local! {
    /// The page owns the one app for as long as it is open; callbacks hold `Weak`s.
    static APP: RefCell<Option<Rc<App>>> = const { RefCell::new(None) };
}

/// A received rectangle waiting to be decoded.
struct Job {
    header: FrameHeader,
    /// View into the message's buffer: just the JPEG bytes.
    jpeg: Uint8Array,
}

/// What a decoded rectangle draws.
enum Picture {
    /// A decoded JPEG.
    Bitmap(ImageBitmap),
    /// One colour, RGB (a fill rectangle: nothing to decode).
    Fill([u8; 3]),
}

/// A decoded rectangle waiting for the rest of its frame to be drawn.
struct Ready {
    header: FrameHeader,
    picture: Picture,
}

impl Ready {
    /// Frees the decoded bitmap, if any.
    fn close(self) {
        if let Picture::Bitmap(b) = self.picture {
            b.close();
        }
    }
}

/// The page-lifetime JS functions the app hands to the DOM.
struct Callbacks {
    animation_frame: Function,
    reconnect: Function,
    gesture_timer: Function,
    overlay_timer: Function,
    /// Kept as closures (owned by the app, which lives as long as the page):
    /// `Promise.then` takes closures.
    decoded: Closure<dyn FnMut(JsValue)>,
    decode_failed: Closure<dyn FnMut(JsValue)>,
    /// Swallows a rejected promise nobody needs the answer of (a keyboard lock).
    ignore: Closure<dyn FnMut(JsValue)>,
    /// `navigator.clipboard.readText` answered.
    clipboard_read: Closure<dyn FnMut(JsValue)>,
    keyboard_focus: Function,
    tool: Function,
    ws_open: Function,
    ws_message: Function,
    ws_close: Function,
    resize: Function,
    pointer_down: Function,
    pointer_move: Function,
    pointer_up: Function,
    pointer_cancel: Function,
    wheel: Function,
    key_down: Function,
    key_up: Function,
    composition_start: Function,
    composition_end: Function,
    input: Function,
    blur: Function,
    paste: Function,
    paste_timer: Function,
    monitor_pick: Function,
    context_menu: Function,
}

/// Mutable state, borrowed by one callback at a time.
struct State {
    ws: Option<WebSocket>,
    status: Status,
    error_until_ms: f64,
    backoff: Backoff,
    seq: Sequencer,
    gestures: Gestures,
    keyboard: Keyboard,
    wheel: Wheel,
    frames: Composer<Job, Ready>,
    /// Header of the frame being decoded right now.
    decoding: Option<FrameHeader>,
    /// Size of the streamed image, from `hello` or a full frame.
    image: Option<(u32, u32)>,
    /// Whether the off-page screen canvas holds a picture yet.
    have_picture: bool,
    fps: RateMeter,
    bytes: RateMeter,
    photon: Photon,
    /// The newest frame acknowledged on this connection.
    acked: u64,
    animation_frame_requested: bool,
    gesture_timer: Option<i32>,
    overlay_text: String,
    /// The remote cursor's shape, rendered.
    cursor: Option<CursorLook>,
    /// Where the remote pointer is (view-only connections are told).
    remote_pointer: Option<(f64, f64)>,
    /// Keys of a paste shortcut, waiting for the browser's `paste` event.
    held_paste: Vec<deskcast_shared::ClientMessage>,
    paste_timer: Option<i32>,
    /// The clipboard text last sent or received, so the same is not sent again.
    last_clipboard: Option<String>,
}

/// The browser client: the page's elements, its callbacks and its state.
pub(crate) struct App {
    window: Window,
    performance: Option<Performance>,
    /// The visible canvas, filling the window.
    canvas: HtmlCanvasElement,
    /// The hidden, focusable textarea that takes the keyboard: browsers compose IME
    /// text and phones open their keyboard only for an editable element.
    keyboard: HtmlTextAreaElement,
    ctx: CanvasRenderingContext2d,
    /// Off-page canvas at the streamed image's size: frames (or regions) are drawn into
    /// it, and it is drawn letterboxed onto the visible canvas, also on resize.
    screen: HtmlCanvasElement,
    screen_ctx: CanvasRenderingContext2d,
    overlay: Overlay,
    tools: Tools,
    js: Callbacks,
    s: RefCell<State>,
}

fn err(msg: &str) -> JsValue {
    JsValue::from_str(msg)
}

fn context_2d(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, JsValue> {
    canvas
        .get_context("2d")?
        .ok_or_else(|| err("canvas 2d context unavailable"))?
        .dyn_into::<CanvasRenderingContext2d>()
        .map_err(|_| err("canvas 2d context has an unexpected type"))
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| err(&format!("element #{id} missing from index.html")))?
        .dyn_into::<T>()
        .map_err(|_| err(&format!("element #{id} has an unexpected type")))
}

/// A closure calling `f` on the app while it exists.
fn closure(app: &Weak<App>, f: fn(&App, JsValue)) -> Closure<dyn FnMut(JsValue)> {
    let app = app.clone();
    Closure::new(move |v: JsValue| {
        if let Some(app) = app.upgrade() {
            f(&app, v);
        }
    })
}

/// A page-lifetime JS function calling `f` on the app while it exists.
fn callback(app: &Weak<App>, f: fn(&App, JsValue)) -> Function {
    closure(app, f).into_js_value().unchecked_into()
}

impl App {
    fn new() -> Result<Rc<App>, JsValue> {
        let window = web_sys::window().ok_or_else(|| err("no window"))?;
        let document = window.document().ok_or_else(|| err("no document"))?;
        let canvas: HtmlCanvasElement = element(&document, "screen")?;
        let keyboard: HtmlTextAreaElement = element(&document, "keyboard")?;
        let ctx = context_2d(&canvas)?;
        let screen: HtmlCanvasElement = document
            .create_element("canvas")?
            .dyn_into()
            .map_err(|_| err("not a canvas"))?;
        let screen_ctx = context_2d(&screen)?;
        let overlay = Overlay::new(
            element::<HtmlElement>(&document, "status")?,
            element(&document, "badge")?,
        );
        let tools = Tools::new(&document)?;
        let performance = window.performance();
        let state = State {
            ws: None,
            status: Status {
                state: ConnState::Connecting,
                role: None,
                input: true,
                fps: 0.0,
                bytes_per_second: 0.0,
                quality: None,
                rtt_ms: None,
                photon_ms: None,
                error: None,
                source_down: None,
                control: Default::default(),
            },
            error_until_ms: 0.0,
            backoff: Backoff::new(),
            seq: Sequencer::new(),
            gestures: Gestures::new(),
            keyboard: Keyboard::new(),
            wheel: Wheel::new(),
            frames: Composer::new(),
            decoding: None,
            image: None,
            have_picture: false,
            fps: RateMeter::new(),
            bytes: RateMeter::new(),
            photon: Photon::new(),
            acked: 0,
            animation_frame_requested: false,
            gesture_timer: None,
            overlay_text: String::new(),
            cursor: None,
            remote_pointer: None,
            held_paste: Vec::new(),
            paste_timer: None,
            last_clipboard: None,
        };
        Ok(Rc::new_cyclic(|weak| App {
            js: Callbacks {
                animation_frame: callback(weak, App::on_animation_frame),
                reconnect: callback(weak, |app, _| app.connect()),
                gesture_timer: callback(weak, App::on_gesture_timer),
                overlay_timer: callback(weak, |app, _| app.refresh_overlay()),
                decoded: closure(weak, App::on_decoded),
                decode_failed: closure(weak, App::on_decode_failed),
                ignore: Closure::new(|_: JsValue| {}),
                clipboard_read: closure(weak, App::on_clipboard_read),
                keyboard_focus: callback(weak, App::on_keyboard_focus),
                tool: callback(weak, App::on_tool),
                ws_open: callback(weak, App::on_open),
                ws_message: callback(weak, App::on_message),
                ws_close: callback(weak, App::on_close),
                resize: callback(weak, |app, _| app.resize()),
                pointer_down: callback(weak, App::on_pointer_down),
                pointer_move: callback(weak, App::on_pointer_move),
                pointer_up: callback(weak, App::on_pointer_up),
                pointer_cancel: callback(weak, App::on_pointer_cancel),
                wheel: callback(weak, App::on_wheel),
                key_down: callback(weak, App::on_key_down),
                key_up: callback(weak, App::on_key_up),
                composition_start: callback(weak, App::on_composition_start),
                composition_end: callback(weak, App::on_composition_end),
                input: callback(weak, App::on_input),
                blur: callback(weak, App::on_blur),
                paste: callback(weak, App::on_paste),
                paste_timer: callback(weak, App::on_paste_timer),
                monitor_pick: callback(weak, App::on_monitor_pick),
                context_menu: callback(weak, |_, e| {
                    if let Some(e) = e.dyn_ref::<web_sys::Event>() {
                        e.prevent_default();
                    }
                }),
            },
            window,
            performance,
            canvas,
            keyboard,
            ctx,
            screen,
            screen_ctx,
            overlay,
            tools,
            s: RefCell::new(state),
        }))
    }

    /// Installs the page-lifetime listeners and the overlay timer.
    fn install(&self) -> Result<(), JsValue> {
        let canvas: &EventTarget = self.canvas.as_ref();
        let keyboard: &EventTarget = self.keyboard.as_ref();
        let window: &EventTarget = self.window.as_ref();
        let js = &self.js;
        listen(window, "resize", &js.resize, true)?;
        listen(canvas, "pointerdown", &js.pointer_down, false)?;
        listen(canvas, "pointermove", &js.pointer_move, true)?;
        listen(canvas, "pointerup", &js.pointer_up, true)?;
        listen(canvas, "pointercancel", &js.pointer_cancel, true)?;
        listen(canvas, "lostpointercapture", &js.pointer_cancel, true)?;
        // These prevent the browser's default (scrolling, shortcuts, menus): not passive.
        listen(canvas, "wheel", &js.wheel, false)?;
        listen(keyboard, "keydown", &js.key_down, false)?;
        listen(keyboard, "keyup", &js.key_up, false)?;
        listen(canvas, "contextmenu", &js.context_menu, false)?;
        listen(keyboard, "compositionstart", &js.composition_start, true)?;
        listen(keyboard, "compositionend", &js.composition_end, true)?;
        listen(keyboard, "input", &js.input, true)?;
        listen(keyboard, "blur", &js.blur, true)?;
        listen(keyboard, "focus", &js.keyboard_focus, true)?;
        // Not passive: the pasted text goes to the remote clipboard, not the textarea.
        listen(keyboard, "paste", &js.paste, false)?;
        let tools: &EventTarget = self.tools.bar.as_ref();
        listen(tools, "click", &js.tool, true)?;
        let picker: &EventTarget = self.tools.monitor_select.as_ref();
        listen(picker, "change", &js.monitor_pick, true)?;
        self.window
            .set_interval_with_callback_and_timeout_and_arguments_0(&js.overlay_timer, 500)?;
        Ok(())
    }

    /// Milliseconds on the page's monotonic clock.
    fn now(&self) -> f64 {
        match &self.performance {
            Some(p) => p.now(),
            None => js_sys::Date::now(),
        }
    }

    /// Asks for one animation frame, unless one is already coming.
    fn request_frame(&self, s: &mut State) {
        if !s.animation_frame_requested {
            s.animation_frame_requested = self
                .window
                .request_animation_frame(&self.js.animation_frame)
                .is_ok();
        }
    }
}

fn listen(target: &EventTarget, kind: &str, f: &Function, passive: bool) -> Result<(), JsValue> {
    let options = AddEventListenerOptions::new();
    options.set_passive(passive);
    target.add_event_listener_with_callback_and_add_event_listener_options(kind, f, &options)
}
