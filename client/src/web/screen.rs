//! The picture: canvas sizing for HiDPI, JPEG decode, composing region updates.
//!
//! Decoding uses `createImageBitmap(new Blob([jpeg]))`, off the main thread; the
//! scheduling (one decode at a time, whole frames only) is [`crate::frames`]. Each
//! rectangle is drawn at its place into a persistent off-page canvas at the screen's
//! own size, which is then drawn letterboxed onto the visible canvas, once per
//! complete frame on `requestAnimationFrame`, and on resize.

use js_sys::{Array, Promise};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{console, Blob, BlobPropertyBag, ImageBitmap};

use super::{App, Job, Ready, State};
use crate::geometry::View;

impl App {
    /// Re-lays out the canvas for its current CSS size and device pixel ratio, then repaints.
    pub(super) fn resize(&self) {
        let mut s = self.s.borrow_mut();
        self.relayout(&mut s);
    }

    /// Re-lays out only if the canvas's CSS size changed since the last layout.
    pub(super) fn relayout_if_moved(&self, s: &mut State) {
        let rect = self.canvas.get_bounding_client_rect();
        if s.gestures.view().css_size() != (rect.width(), rect.height()) {
            self.relayout(s);
        }
    }

    fn relayout(&self, s: &mut State) {
        let rect = self.canvas.get_bounding_client_rect();
        let view = View::new(
            rect.width(),
            rect.height(),
            self.window.device_pixel_ratio(),
            s.image,
        )
        .keeping_zoom_of(s.gestures.view());
        let (w, h) = view.backing_size();
        if self.canvas.width() != w || self.canvas.height() != h {
            // Resizing the backing store clears it; it is repainted just below.
            self.canvas.set_width(w);
            self.canvas.set_height(h);
        }
        s.gestures.set_view(view);
        self.paint(s);
    }

    /// The streamed image has a new size (from `hello` or a full frame).
    pub(super) fn set_image_size(&self, s: &mut State, width: u32, height: u32) {
        s.image = Some((width, height));
        // Resizing clears the off-page canvas: the next frame repaints it.
        self.screen.set_width(width);
        self.screen.set_height(height);
        s.have_picture = false;
        self.relayout(s);
    }

    /// Draws the off-page screen canvas letterboxed onto the visible canvas.
    pub(super) fn paint(&self, s: &State) {
        let (w, h) = (
            f64::from(self.canvas.width()),
            f64::from(self.canvas.height()),
        );
        self.ctx.set_fill_style_str("#000");
        self.ctx.fill_rect(0.0, 0.0, w, h);
        let Some(r) = s.gestures.view().drawn() else {
            return;
        };
        self.place_pointer(s);
        if !s.have_picture {
            return;
        }
        if let Err(e) = self.ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
            &self.screen,
            r.x,
            r.y,
            r.width,
            r.height,
        ) {
            console::warn_2(&JsValue::from_str("deskcast: draw failed"), &e);
        }
    }

    /// A rectangle arrived: decode it now or let it wait for the running decode.
    pub(super) fn frame_arrived(&self, s: &mut State, job: Job) {
        let h = job.header;
        // A sender without flags sends whole frames: each message is its own last.
        let last = h.is_last() || h.rects == 0;
        if let Some(job) = s.frames.arrived(h.seq, last, h.is_key(), job) {
            self.decode(s, job);
        }
    }

    /// Starts decoding `job`; on an immediate failure, moves on to the waiting frame.
    /// A fill needs no decoding: it is done at once, and the next job follows.
    fn decode(&self, s: &mut State, job: Job) {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            if job.header.is_fill() {
                let rgb = job.jpeg.to_vec();
                let Ok(rgb) = <[u8; 3]>::try_from(rgb.as_slice()) else {
                    console::warn_1(&JsValue::from_str("deskcast: a fill is not RGB"));
                    next = s.frames.failed();
                    continue;
                };
                next = finish_decode(
                    s,
                    Ready {
                        header: job.header,
                        picture: super::Picture::Fill(rgb),
                    },
                );
                continue;
            }
            match self.start_decode(&job) {
                Ok(promise) => {
                    s.decoding = Some(job.header);
                    // The handlers take the promise's result; the derived promise is unused.
                    let _ = promise.then2(&self.js.decoded, &self.js.decode_failed);
                }
                Err(e) => {
                    console::warn_2(&JsValue::from_str("deskcast: cannot decode a frame"), &e);
                    next = s.frames.failed();
                }
            }
        }
        self.draw_ready(s);
    }

    fn start_decode(&self, job: &Job) -> Result<Promise, JsValue> {
        let options = BlobPropertyBag::new();
        options.set_type("image/jpeg");
        let blob = Blob::new_with_u8_array_sequence_and_options(&Array::of1(&job.jpeg), &options)?;
        self.window.create_image_bitmap_with_blob(&blob)
    }

    pub(super) fn on_decoded(&self, value: JsValue) {
        let Ok(bitmap) = value.dyn_into::<ImageBitmap>() else {
            self.on_decode_failed(JsValue::from_str("decode result is not an ImageBitmap"));
            return;
        };
        let mut s = self.s.borrow_mut();
        let Some(header) = s.decoding.take() else {
            // Not ours to draw (cannot happen: one decode runs at a time).
            bitmap.close();
            return;
        };
        let ready = Ready {
            header,
            picture: super::Picture::Bitmap(bitmap),
        };
        match finish_decode(&mut s, ready) {
            // Starts the next decode, then draws what is ready.
            Some(job) => self.decode(&mut s, job),
            // Drawn at once, not at the next animation frame: the browser shows the
            // canvas at its next paint either way, and no frame waits a vsync for a draw.
            None => self.draw_ready(&mut s),
        }
    }

    pub(super) fn on_decode_failed(&self, reason: JsValue) {
        console::warn_2(
            &JsValue::from_str("deskcast: a frame did not decode"),
            &reason,
        );
        let mut s = self.s.borrow_mut();
        s.decoding = None;
        if let Some(job) = s.frames.failed() {
            self.decode(&mut s, job);
        }
        // Its frame may be complete now (to draw the rest, and to acknowledge).
        if s.frames.has_ready() {
            self.request_frame(&mut s);
        }
    }

    /// Once per animation frame: flush coalesced moves, draw what is ready.
    pub(super) fn on_animation_frame(&self, _time: JsValue) {
        let mut s = self.s.borrow_mut();
        s.animation_frame_requested = false;
        let moves = s.gestures.frame();
        s.send(moves);
        self.draw_ready(&mut s);
    }

    /// Draws every complete decoded frame (the newest shows), and acknowledges it.
    fn draw_ready(&self, s: &mut State) {
        let now = self.now();
        let ready = s.frames.take_ready();
        // Acknowledge every completed frame, even one with nothing to draw.
        if let Some(seq) = s.frames.completed().filter(|&seq| seq > s.acked) {
            s.acked = seq;
            s.ack(seq);
        }
        let Some(newest) = ready.last().map(|r| r.header) else {
            return;
        };
        let mut frames = 0.0;
        for r in ready {
            let h = r.header;
            self.fit_image(s, &h);
            let drawn = match &r.picture {
                super::Picture::Bitmap(bitmap) => self.screen_ctx.draw_image_with_image_bitmap(
                    bitmap,
                    f64::from(h.x),
                    f64::from(h.y),
                ),
                super::Picture::Fill([red, green, blue]) => {
                    let ctx = &self.screen_ctx;
                    ctx.set_fill_style_str(&format!("rgb({red} {green} {blue})"));
                    ctx.fill_rect(
                        f64::from(h.x),
                        f64::from(h.y),
                        f64::from(h.width),
                        f64::from(h.height),
                    );
                    Ok(())
                }
            };
            r.close();
            match drawn {
                Ok(()) => s.have_picture = true,
                Err(e) => console::warn_2(&JsValue::from_str("deskcast: draw failed"), &e),
            }
            if h.is_last() || h.rects == 0 {
                frames += 1.0;
            }
        }
        self.paint(s);
        s.fps.record(now, frames);
        s.status.quality = Some(newest.quality).filter(|q| *q > 0);
        if let Some(ms) = s.photon.drawn(newest.input_seq, js_sys::Date::now()) {
            s.status.photon_ms = Some(ms);
        }
    }

    /// Resizes the picture if a rectangle says the screen has another size (or, from a
    /// sender that does not say, lies beyond the known screen).
    fn fit_image(&self, s: &mut State, h: &deskcast_shared::FrameHeader) {
        let size = if h.screen_width > 0 && h.screen_height > 0 {
            (h.screen_width, h.screen_height)
        } else {
            let (right, bottom) = (h.x.saturating_add(h.width), h.y.saturating_add(h.height));
            match s.image {
                Some((w, hh)) if right <= w && bottom <= hh => (w, hh),
                Some((w, hh)) => (w.max(right), hh.max(bottom)),
                None => (right, bottom),
            }
        };
        if s.image != Some(size) {
            self.set_image_size(s, size.0, size.1);
        }
    }
}

/// Hands a decoded rectangle to the composer; releases what that made stale and
/// returns the job to decode next, if one waits.
fn finish_decode(s: &mut State, ready: Ready) -> Option<Job> {
    let done = s.frames.decoded(ready);
    if let Some(stale) = done.release {
        stale.close();
    }
    done.next
}
