//! How frames travel over NATS: one [`Frame`] (an update, a keyframe or a whole
//! JPEG) as one or more NATS messages, each under the server's `max_payload`.
//!
//! Every NATS message starts with the same fixed header (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `DCF1` |
//! | 4 | 1 | kind: 1 update, 2 keyframe, 3 whole |
//! | 5 | 1 | 1 when the frame covers the whole screen |
//! | 6 | 2 | this part, from 0 |
//! | 8 | 2 | parts in all |
//! | 10 | 8 | the origin's run (random at its start) |
//! | 18 | 8 | `seq` (a keyframe: the update it covers) |
//! | 26 | 8 | `prev` |
//!
//! and carries the next piece of the body: `u16` rectangle count, each rectangle as
//! four `u32` (x, y, width, height); `u16` message count, each message as `u32`
//! length and its bytes (a `/ws` binary message: frame header and JPEG).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::capture::Rect;
use crate::pipeline::Relayed;

const MAGIC: &[u8; 4] = b"DCF1";
const HEADER: usize = 34;

/// Most rectangles, messages and parts one frame may have; more is taken for garbage.
const MAX_ITEMS: usize = 4096;
const MAX_PARTS: usize = 1024;
/// Largest frame put back together: a 8192×8192 keyframe at quality 100 fits.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The next update of the stream.
    Update = 1,
    /// A keyframe for relays that need one.
    Keyframe = 2,
    /// A whole-screen JPEG for MJPEG readers (one message, frame header and JPEG).
    Whole = 3,
}

/// One frame as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: Kind,
    /// The frame: the origin's run, `seq`, `prev`, rectangles and messages.
    pub body: Relayed,
}

/// Why NATS messages could not be read as a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Not a deskcast frame, or cut short.
    #[error("not a deskcast frame message ({0})")]
    Garbled(&'static str),
    /// A part went missing: the frame is lost.
    #[error("frame part {got} arrived, {wanted} expected")]
    Missing {
        /// The part that came.
        got: u16,
        /// The part that should have.
        wanted: u16,
    },
}

impl Frame {
    /// The frame as NATS payloads of at most `max_payload` bytes each.
    pub fn encode(&self, max_payload: usize) -> Vec<Bytes> {
        let f = &self.body;
        let mut body = BytesMut::with_capacity(4 + f.rects.len() * 16 + f.messages.len() * 4);
        body.put_u16_le(f.rects.len() as u16);
        for r in &f.rects {
            for v in [r.x, r.y, r.width, r.height] {
                body.put_u32_le(v);
            }
        }
        body.put_u16_le(f.messages.len() as u16);
        for m in &f.messages {
            body.put_u32_le(m.len() as u32);
        }
        // Lengths first, then the bytes: each message is copied once, straight into
        // the payload it travels in.
        let lengths = body.freeze();
        let room = max_payload.saturating_sub(HEADER).max(1024);
        let total = lengths.len() + f.messages.iter().map(Bytes::len).sum::<usize>();
        let parts = total.div_ceil(room).max(1);
        let mut out = Vec::with_capacity(parts);
        let mut pieces = std::iter::once(lengths).chain(f.messages.iter().cloned());
        let mut current: Option<Bytes> = None;
        for part in 0..parts {
            let mut payload = BytesMut::with_capacity(HEADER + room.min(total));
            payload.put_slice(MAGIC);
            payload.put_u8(self.kind as u8);
            payload.put_u8(u8::from(f.key));
            payload.put_u16_le(part as u16);
            payload.put_u16_le(parts as u16);
            payload.put_u64_le(f.instance);
            payload.put_u64_le(f.seq);
            payload.put_u64_le(f.prev);
            while payload.len() < HEADER + room {
                let Some(mut piece) = current.take().or_else(|| pieces.next()) else {
                    break;
                };
                let take = piece.len().min(HEADER + room - payload.len());
                payload.put_slice(&piece[..take]);
                piece.advance(take);
                if !piece.is_empty() {
                    current = Some(piece);
                }
            }
            out.push(payload.freeze());
        }
        out
    }
}

/// Puts frames back together from their parts, in order.
#[derive(Default)]
pub struct Assembler {
    /// The parts of the frame coming in so far.
    parts: Vec<Bytes>,
}

impl Assembler {
    /// Takes the next NATS payload; a frame once its last part came.
    pub fn push(&mut self, payload: Bytes) -> Result<Option<Frame>, WireError> {
        if payload.len() < HEADER || &payload[..4] != MAGIC {
            self.parts.clear();
            return Err(WireError::Garbled("no DCF1 header"));
        }
        let part = u16::from_le_bytes([payload[6], payload[7]]);
        let parts = u16::from_le_bytes([payload[8], payload[9]]);
        if parts == 0 || usize::from(parts) > MAX_PARTS || part >= parts {
            self.parts.clear();
            return Err(WireError::Garbled("bad part count"));
        }
        let wanted = self.parts.len() as u16;
        // A later part must be of the frame the first part began (kind, key, parts, run,
        // seq, prev): else parts of two frames would be joined.
        let same = self.parts.first().is_none_or(|first| {
            first[4..6] == payload[4..6] && first[8..HEADER] == payload[8..HEADER]
        });
        if part != wanted || !same {
            self.parts.clear();
            // The first part of a new frame starts over.
            if part != 0 {
                return Err(WireError::Missing { got: part, wanted });
            }
        }
        let bytes: usize = self.parts.iter().map(Bytes::len).sum::<usize>() + payload.len();
        if bytes > MAX_FRAME_BYTES {
            self.parts.clear();
            return Err(WireError::Garbled("frame too large"));
        }
        self.parts.push(payload);
        if self.parts.len() < usize::from(parts) {
            return Ok(None);
        }
        let parts = std::mem::take(&mut self.parts);
        let head = parts[0].slice(..HEADER);
        let body = if parts.len() == 1 {
            parts[0].slice(HEADER..)
        } else {
            let mut all = BytesMut::new();
            for p in &parts {
                all.put_slice(&p[HEADER..]);
            }
            all.freeze()
        };
        decode(&head, body).map(Some)
    }
}

fn decode(head: &[u8], mut body: Bytes) -> Result<Frame, WireError> {
    let kind = match head[4] {
        1 => Kind::Update,
        2 => Kind::Keyframe,
        3 => Kind::Whole,
        _ => return Err(WireError::Garbled("unknown kind")),
    };
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let short = WireError::Garbled("body cut short");
    if body.remaining() < 2 {
        return Err(short);
    }
    let n_rects = usize::from(body.get_u16_le());
    if n_rects > MAX_ITEMS || body.remaining() < n_rects * 16 + 2 {
        return Err(short);
    }
    let rects = (0..n_rects)
        .map(|_| Rect {
            x: body.get_u32_le(),
            y: body.get_u32_le(),
            width: body.get_u32_le(),
            height: body.get_u32_le(),
        })
        .collect();
    let n_messages = usize::from(body.get_u16_le());
    if n_messages > MAX_ITEMS || body.remaining() < n_messages * 4 {
        return Err(short);
    }
    let lengths: Vec<usize> = (0..n_messages)
        .map(|_| body.get_u32_le() as usize)
        .collect();
    if lengths.iter().sum::<usize>() != body.remaining() {
        return Err(WireError::Garbled("message lengths do not add up"));
    }
    let messages = lengths.into_iter().map(|n| body.split_to(n)).collect();
    Ok(Frame {
        kind,
        body: Relayed {
            instance: u64_at(10),
            seq: u64_at(18),
            prev: u64_at(26),
            key: head[5] == 1,
            rects,
            messages,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sizes: &[usize]) -> Frame {
        Frame {
            kind: Kind::Update,
            body: Relayed {
                instance: 7,
                seq: 42,
                prev: 41,
                key: false,
                rects: vec![Rect {
                    x: 1,
                    y: 2,
                    width: 3,
                    height: 4,
                }],
                messages: sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
                    .collect(),
            },
        }
    }

    #[test]
    fn a_frame_comes_back_whole_in_one_part_or_many() {
        for (sizes, max) in [
            (vec![10, 20], 1 << 20),
            (vec![5000, 3, 9000], 2048),
            (vec![0], 1024),
            (vec![], 1024),
        ] {
            let f = frame(&sizes);
            let payloads = f.encode(max);
            assert!(payloads.iter().all(|p| p.len() <= max.max(1024 + HEADER)));
            let mut a = Assembler::default();
            let mut got = None;
            for (i, p) in payloads.iter().enumerate() {
                let r = a.push(p.clone()).expect("reads");
                assert_eq!(r.is_some(), i + 1 == payloads.len());
                got = got.or(r);
            }
            assert_eq!(got.expect("a frame"), f, "sizes {sizes:?} max {max}");
        }
    }

    #[test]
    fn a_lost_part_loses_the_frame_not_the_next() {
        let big = frame(&[5000]).encode(2048);
        assert!(big.len() > 2);
        let mut a = Assembler::default();
        assert_eq!(a.push(big[0].clone()), Ok(None));
        assert!(matches!(
            a.push(big[2].clone()),
            Err(WireError::Missing { .. })
        ));
        let small = frame(&[10]);
        let next = small.encode(2048);
        assert_eq!(a.push(next[0].clone()), Ok(Some(small)));
        assert!(a.push(Bytes::from_static(b"hello")).is_err());
    }

    #[test]
    fn parts_of_two_frames_are_never_joined() {
        let one = frame(&[5000]).encode(2048);
        let mut other = frame(&[5000]);
        other.body.seq = 43;
        let other = other.encode(2048);
        let mut a = Assembler::default();
        assert_eq!(a.push(one[0].clone()), Ok(None));
        // Part 1 of another frame, where part 1 of this one should come.
        assert!(a.push(other[1].clone()).is_err());
        for p in &other {
            let _ = a.push(p.clone());
        }
        let mut a = Assembler::default();
        let mut got = None;
        for p in &other {
            got = a.push(p.clone()).expect("reads");
        }
        assert_eq!(got.map(|f| f.body.seq), Some(43));
    }
}
