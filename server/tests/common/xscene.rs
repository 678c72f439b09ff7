//! A desktop scene for frame-engine tests: a solid root and plain windows that a test
//! draws into, moves and recolours, and the root's pixels as the X server has them.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ChangeWindowAttributesAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux,
    CreateWindowAux, Gcontext, ImageFormat, Point, Rectangle, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

pub struct Scene {
    conn: RustConnection,
    root: Window,
    gc: Gcontext,
    pub width: u32,
    pub height: u32,
}

impl Scene {
    /// Connects to `display` and paints the root one colour (0xRRGGBB).
    pub fn open(display: &str, background: u32) -> Scene {
        let (conn, n) = x11rb::connect(Some(display)).expect("connect to X");
        let screen = conn.setup().roots[n].clone();
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, screen.root, &CreateGCAux::new())
            .expect("gc");
        conn.change_window_attributes(
            screen.root,
            &ChangeWindowAttributesAux::new().background_pixel(background),
        )
        .expect("root background");
        conn.clear_area(false, screen.root, 0, 0, 0, 0)
            .expect("clear");
        let scene = Scene {
            conn,
            root: screen.root,
            gc,
            width: u32::from(screen.width_in_pixels),
            height: u32::from(screen.height_in_pixels),
        };
        scene.sync();
        scene
    }

    /// A mapped, unmanaged window of one colour.
    pub fn window(&self, x: i16, y: i16, w: u16, h: u16, color: u32) -> Window {
        let win = self.conn.generate_id().expect("id");
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                win,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new()
                    .background_pixel(color)
                    .override_redirect(1),
            )
            .expect("window");
        self.conn.map_window(win).expect("map");
        self.sync();
        win
    }

    pub fn move_to(&self, win: Window, x: i32, y: i32) {
        self.conn
            .configure_window(win, &ConfigureWindowAux::new().x(x).y(y))
            .expect("move");
        self.sync();
    }

    pub fn recolor(&self, win: Window, color: u32) {
        self.conn
            .change_window_attributes(
                win,
                &ChangeWindowAttributesAux::new().background_pixel(color),
            )
            .expect("colour");
        self.conn.clear_area(false, win, 0, 0, 0, 0).expect("clear");
        self.sync();
    }

    /// Fills a rectangle of `drawable` (a window, or the root with [`Scene::root`]).
    pub fn fill(&self, drawable: Window, x: i16, y: i16, w: u16, h: u16, color: u32) {
        self.conn
            .change_gc(self.gc, &ChangeGCAux::new().foreground(color))
            .expect("gc");
        self.conn
            .poly_fill_rectangle(
                drawable,
                self.gc,
                &[Rectangle {
                    x,
                    y,
                    width: w,
                    height: h,
                }],
            )
            .expect("fill");
        self.sync();
    }

    /// Sets one pixel of the root.
    pub fn point(&self, x: i16, y: i16, color: u32) {
        self.conn
            .change_gc(self.gc, &ChangeGCAux::new().foreground(color))
            .expect("gc");
        self.conn
            .poly_point(
                x11rb::protocol::xproto::CoordMode::ORIGIN,
                self.root,
                self.gc,
                &[Point { x, y }],
            )
            .expect("point");
        self.sync();
    }

    pub fn root(&self) -> Window {
        self.root
    }

    /// Waits until the X server has done everything asked so far.
    pub fn sync(&self) {
        self.conn
            .get_input_focus()
            .expect("request")
            .reply()
            .expect("round trip");
    }

    /// The whole screen as the X server has it, RGB.
    pub fn rgb(&self) -> Vec<u8> {
        let reply = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                self.width as u16,
                self.height as u16,
                !0,
            )
            .expect("request")
            .reply()
            .expect("GetImage");
        reply
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect()
    }
}
