//! deskcast browser client: draws the streamed screen on a canvas and sends input back.
//!
//! # Layout
//! Pure logic, compiled and unit-tested natively as well as for `wasm32`:
//! - [`geometry`]: letterboxing, device pixels, page position → image fraction.
//! - [`gesture`]: pointer events with timestamps → click, double click, drag, move.
//! - [`keys`]: key, IME composition and `input` events → `text` or `key` messages; held
//!   keys released on blur.
//! - [`wheel`]: wheel deltas → whole wheel steps.
//! - [`frames`]: composing region updates into whole frames: decode and draw scheduling.
//! - [`stats`]: fps and bandwidth meters, the overlay's status line.
//! - [`connect`]: the WebSocket URL, reconnect backoff, input sequence numbers.
//!
//! The DOM glue (`web`, `wasm32` only) wires those to the page: the socket, the
//! canvas, the listeners and the overlay. It holds no logic worth testing by itself.

pub mod clipboard;
pub mod connect;
pub mod cursor;
pub mod frames;
pub mod geometry;
pub mod gesture;
pub mod keys;
pub mod stats;
pub mod wheel;

#[cfg(target_arch = "wasm32")]
mod web;
