//! JPEG encoding with libjpeg-turbo: one reusable compressor per thread, 4:2:0
//! subsampling, any rectangle of captured pixels straight from where they lie (no
//! copy, any row pitch), and a small pool of encoder threads that encodes the pieces
//! of one frame side by side (KasmVNC's `EncodeManager::writeRects` does the same).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use deskcast_shared::{FrameHeader, FLAG_FILL};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

use crate::capture::{PixelLayout, Pixels, Rect};
use crate::error::StartError;

/// Encodes rectangles of captured pixels to JPEG.
pub struct Encoder {
    compressor: Compressor,
    quality: u8,
}

impl Encoder {
    /// An encoder whose first quality is `quality` (1–100).
    pub fn new(quality: u8) -> Result<Self, StartError> {
        let err = |e: turbojpeg::Error| StartError::Encoder(e.to_string());
        let mut compressor = Compressor::new().map_err(err)?;
        let quality = quality.clamp(1, 100);
        compressor.set_quality(i32::from(quality)).map_err(err)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
        Ok(Encoder {
            compressor,
            quality,
        })
    }

    /// Encodes `rect` (source coordinates, inside `pixels.rect`) to a complete JPEG
    /// (SOI … EOI) at `quality`.
    pub fn encode(
        &mut self,
        pixels: &Pixels,
        rect: Rect,
        quality: u8,
    ) -> Result<Vec<u8>, turbojpeg::Error> {
        if !pixels.rect.contains(&rect) || rect.is_empty() || !pixels.is_complete() {
            return Err(turbojpeg::Error::TurboJpegError(format!(
                "rectangle {rect:?} is not inside the captured {:?}",
                pixels.rect
            )));
        }
        let quality = quality.clamp(1, 100);
        if quality != self.quality {
            self.compressor.set_quality(i32::from(quality))?;
            self.quality = quality;
        }
        let start = (rect.y - pixels.rect.y) as usize * pixels.pitch
            + (rect.x - pixels.rect.x) as usize * 4;
        let end = start + (rect.height as usize - 1) * pixels.pitch + rect.width as usize * 4;
        let image = Image {
            pixels: &pixels.bytes()[start..end],
            width: rect.width as usize,
            pitch: pixels.pitch,
            height: rect.height as usize,
            format: match pixels.layout {
                PixelLayout::Rgba => PixelFormat::RGBA,
                PixelLayout::Bgrx => PixelFormat::BGRX,
            },
        };
        self.compressor.compress_to_vec(image)
    }
}

/// The colour of `rect` (inside `pixels.rect`) as RGB when every pixel of it has that
/// one colour; `None` at the first pixel that differs.
pub fn solid(pixels: &Pixels, rect: Rect) -> Option<[u8; 3]> {
    if !pixels.rect.contains(&rect) || rect.is_empty() || !pixels.is_complete() {
        return None;
    }
    let bytes = pixels.bytes();
    let (rgb, mask): ([usize; 3], u32) = match pixels.layout {
        PixelLayout::Rgba => ([0, 1, 2], u32::MAX),
        // The fourth byte is unused: compare the colour only.
        PixelLayout::Bgrx => ([2, 1, 0], u32::from_le_bytes([0xff, 0xff, 0xff, 0])),
    };
    let row = |y: u32| {
        let start =
            (y - pixels.rect.y) as usize * pixels.pitch + (rect.x - pixels.rect.x) as usize * 4;
        &bytes[start..start + rect.width as usize * 4]
    };
    let first = row(rect.y);
    let word = |p: &[u8]| u32::from_le_bytes([p[0], p[1], p[2], p[3]]) & mask;
    let colour = word(first);
    for y in rect.y..rect.bottom() {
        if !row(y).chunks_exact(4).all(|p| word(p) == colour) {
            return None;
        }
    }
    Some(rgb.map(|i| first[i]))
}

/// One rectangle to encode: where its pixels are, and the header its message carries.
/// With [`deskcast_shared::FLAG_FILL`] in its flags it may go as a fill: when it is one
/// colour, its message carries that colour instead of a JPEG (the flag is cleared
/// otherwise).
pub struct Piece {
    /// The captured pixels holding `header`'s rectangle.
    pub pixels: Arc<Pixels>,
    /// The header to put in front of the JPEG (its rectangle and quality say what to encode).
    pub header: FrameHeader,
}

impl Piece {
    fn rect(&self) -> Rect {
        Rect {
            x: self.header.x,
            y: self.header.y,
            width: self.header.width,
            height: self.header.height,
        }
    }
}

/// What a finished batch hands on: its messages (header + JPEG) in piece order, or
/// the reason one piece failed.
pub type Delivery = Box<dyn FnOnce(Result<Vec<Bytes>, String>) + Send>;

/// The pieces of one frame, encoded in parallel, delivered together once all are done.
struct Batch {
    /// Taken out by the worker that encodes it, and dropped before the piece counts as
    /// done: whoever waits for the batch may then reuse the pixels' memory.
    pieces: Mutex<Vec<Option<Piece>>>,
    results: Mutex<Vec<Option<Result<Bytes, String>>>>,
    remaining: AtomicUsize,
    deliver: Mutex<Option<Delivery>>,
}

/// A few encoder threads, one compressor each.
pub struct Pool {
    jobs: Option<mpsc::Sender<(Arc<Batch>, usize)>>,
    threads: Vec<JoinHandle<()>>,
    size: usize,
}

impl Pool {
    /// As many workers as cores, at least one and at most four.
    pub fn new(quality: u8) -> Result<Pool, StartError> {
        let size = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let (tx, rx) = mpsc::channel::<(Arc<Batch>, usize)>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let mut encoder = Encoder::new(quality)?;
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("deskcast-encode-{i}"))
                    .spawn(move || loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((batch, index)) = job else { return };
                        work(&mut encoder, &batch, index);
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(tx),
            threads,
            size,
        })
    }

    /// Number of worker threads.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Encodes `pieces` on the workers; `deliver` runs on the worker that finishes last.
    pub fn submit(&self, pieces: Vec<Piece>, deliver: Delivery) {
        let n = pieces.len();
        if n == 0 {
            deliver(Ok(Vec::new()));
            return;
        }
        let batch = Arc::new(Batch {
            pieces: Mutex::new(pieces.into_iter().map(Some).collect()),
            results: Mutex::new((0..n).map(|_| None).collect()),
            remaining: AtomicUsize::new(n),
            deliver: Mutex::new(Some(deliver)),
        });
        for i in 0..n {
            let sent = self
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send((batch.clone(), i)).is_ok());
            if !sent {
                // The workers are gone (shutting down): count the piece as failed.
                finish(&batch, i, Err("the encoder threads stopped".into()));
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn work(encoder: &mut Encoder, batch: &Batch, index: usize) {
    let piece = batch
        .pieces
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(index)
        .and_then(Option::take);
    let result = match piece {
        None => Err("piece taken twice".to_string()),
        Some(mut piece) => {
            let fill = piece.header.flags & FLAG_FILL != 0;
            let out = match fill.then(|| solid(&piece.pixels, piece.rect())).flatten() {
                Some(rgb) => Ok(Bytes::from(piece.header.encode_with(&rgb))),
                None => {
                    piece.header.flags &= !FLAG_FILL;
                    encoder
                        .encode(&piece.pixels, piece.rect(), piece.header.quality)
                        .map(|jpeg| Bytes::from(piece.header.encode_with(&jpeg)))
                        .map_err(|e| format!("encode {:?}; {e}", piece.rect()))
                }
            };
            drop(piece);
            out
        }
    };
    finish(batch, index, result);
}

fn finish(batch: &Batch, index: usize, result: Result<Bytes, String>) {
    if let Some(slot) = batch
        .results
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(index)
    {
        *slot = Some(result);
    }
    if batch.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    let results = std::mem::take(&mut *batch.results.lock().unwrap_or_else(|p| p.into_inner()));
    let all = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("piece lost".into())))
        .collect::<Result<Vec<_>, _>>();
    let deliver = batch
        .deliver
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(deliver) = deliver {
        deliver(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskcast_shared::FRAME_HEADER_LEN;

    fn red(width: u32, height: u32) -> Pixels {
        Pixels::owned(
            Rect::full(width, height),
            PixelLayout::Rgba,
            [200u8, 30, 30, 255].repeat((width * height) as usize),
        )
    }

    #[test]
    fn encodes_a_complete_jpeg_of_the_right_size() {
        let frame = red(64, 48);
        let jpeg = Encoder::new(80)
            .expect("encoder")
            .encode(&frame, Rect::full(64, 48), 80)
            .expect("encode");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
        let header = turbojpeg::read_header(&jpeg).expect("header");
        assert_eq!((header.width, header.height), (64, 48));
        let img = turbojpeg::decompress(&jpeg, PixelFormat::RGB).expect("decode");
        let px = &img.pixels[(24 * 64 + 32) * 3..][..3];
        assert!(px[0] > 180 && px[1] < 60 && px[2] < 60, "{px:?}");
    }

    #[test]
    fn a_rectangle_inside_the_pixels_is_encoded_at_its_own_size_and_outside_is_an_error() {
        let frame = red(100, 80);
        let mut enc = Encoder::new(80).expect("encoder");
        let rect = Rect {
            x: 30,
            y: 20,
            width: 40,
            height: 16,
        };
        let jpeg = enc.encode(&frame, rect, 95).expect("encode");
        let header = turbojpeg::read_header(&jpeg).expect("header");
        assert_eq!((header.width, header.height), (40, 16));
        let outside = Rect {
            x: 90,
            y: 0,
            width: 20,
            height: 10,
        };
        assert!(
            enc.encode(&frame, outside, 80).is_err(),
            "no panic, an error"
        );
    }

    /// BGRX pixels of one colour, as X sends them: red, with junk in the unused byte.
    fn bgrx_red(width: u32, height: u32) -> Pixels {
        Pixels::owned(
            Rect::full(width, height),
            PixelLayout::Bgrx,
            [0u8, 0, 255, 0].repeat((width * height) as usize),
        )
    }

    fn poke(px: &mut Pixels, at: usize, value: u8) {
        if let crate::capture::PixelData::Owned(b) = &mut px.data {
            b[at] = value;
        }
    }

    #[test]
    fn one_colour_rectangles_are_found_and_anything_else_is_not() {
        let mut px = bgrx_red(64, 32);
        let whole = Rect::full(64, 32);
        assert_eq!(solid(&px, whole), Some([255, 0, 0]));
        // The unused fourth byte of BGRX does not matter; a colour byte does.
        poke(&mut px, 3, 7);
        assert_eq!(solid(&px, whole), Some([255, 0, 0]));
        poke(&mut px, 64 * 32 * 4 - 2, 1);
        assert_eq!(solid(&px, whole), None, "one pixel off");
        let top = Rect {
            x: 0,
            y: 0,
            width: 64,
            height: 16,
        };
        assert_eq!(solid(&px, top), Some([255, 0, 0]), "the top half still is");
        let outside = Rect {
            x: 60,
            y: 0,
            width: 10,
            height: 10,
        };
        assert_eq!(solid(&px, outside), None);
        assert_eq!(
            solid(&red(8, 8), Rect::full(8, 8)),
            Some([200, 30, 30]),
            "RGBA"
        );
    }

    #[test]
    fn a_fill_piece_of_one_colour_carries_rgb_and_others_a_jpeg() {
        let pool = Pool::new(80).expect("pool");
        let flat = Arc::new(bgrx_red(64, 64));
        let header = FrameHeader {
            flags: FLAG_FILL,
            width: 64,
            height: 64,
            quality: 80,
            ..Default::default()
        };
        let mut noisy = bgrx_red(64, 64);
        poke(&mut noisy, 100, 9);
        let pieces = vec![
            Piece {
                pixels: flat,
                header,
            },
            Piece {
                pixels: Arc::new(noisy),
                header,
            },
        ];
        let (tx, rx) = mpsc::channel();
        pool.submit(pieces, Box::new(move |r| tx.send(r).expect("send")));
        let out = rx.recv().expect("delivered").expect("encoded");
        let (h, payload) = FrameHeader::decode(&out[0]).expect("header");
        assert!(h.is_fill());
        assert_eq!(payload, &[255, 0, 0]);
        let (h, payload) = FrameHeader::decode(&out[1]).expect("header");
        assert!(!h.is_fill(), "not one colour: the flag is cleared");
        assert_eq!(&payload[..2], &[0xFF, 0xD8], "a JPEG");
    }

    #[test]
    fn the_pool_delivers_every_piece_in_order_with_its_header() {
        let pool = Pool::new(80).expect("pool");
        let pixels = Arc::new(red(128, 128));
        let pieces = (0..4)
            .map(|i| Piece {
                pixels: pixels.clone(),
                header: FrameHeader {
                    seq: 7,
                    x: 0,
                    y: i * 32,
                    width: 128,
                    height: 32,
                    quality: 80,
                    ..Default::default()
                },
            })
            .collect();
        let (tx, rx) = mpsc::channel();
        pool.submit(pieces, Box::new(move |r| tx.send(r).expect("send")));
        let messages = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("delivered")
            .expect("encoded");
        assert_eq!(messages.len(), 4);
        for (i, m) in messages.iter().enumerate() {
            let (h, jpeg) = FrameHeader::decode(m).expect("header");
            assert_eq!(h.y, i as u32 * 32);
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
            assert!(m.len() > FRAME_HEADER_LEN);
        }
        assert_eq!(
            Arc::strong_count(&pixels),
            1,
            "the workers let go of the pixels"
        );
    }
}
