//! The binary frame header: a fixed little-endian header in front of one JPEG.
//!
//! One binary message carries one rectangle of the screen. A frame (one moment of the
//! screen) is one or more such messages with the same `seq`; the last of them has
//! [`FLAG_LAST`] set, and a client presents the frame once that one arrived.
//!
//! Byte layout (all integers little-endian), documented in `docs/PROTOCOL.md`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | header length in bytes (56 today; 44 in the first version) |
//! | 1 | 1 | header version (1) |
//! | 2 | 2 | flags: [`FLAG_LAST`], [`FLAG_KEY`], [`FLAG_REFRESH`], [`FLAG_FILL`] |
//! | 4 | 8 | frame sequence number |
//! | 12 | 8 | capture time, microseconds since the Unix epoch |
//! | 20 | 8 | `seq` of the last input event applied before the capture (0 = none) |
//! | 28 | 4 | x of the rectangle on the screen, pixels |
//! | 32 | 4 | y of the rectangle |
//! | 36 | 4 | width of the rectangle |
//! | 40 | 4 | height of the rectangle |
//! | 44 | 4 | width of the whole screen (0 = unknown, in a 44-byte header) |
//! | 48 | 4 | height of the whole screen |
//! | 52 | 1 | JPEG quality of this rectangle (0 = unknown) |
//! | 53 | 1 | reserved, 0 |
//! | 54 | 2 | number of rectangles in this frame (0 = unknown) |
//!
//! The header only ever grows at its end: a reader skips to the length in byte 0 for
//! the JPEG, so a reader of the 44-byte layout still decodes every message.

use thiserror::Error;

/// Length in bytes of the header [`FrameHeader::encode`] writes.
pub const FRAME_HEADER_LEN: usize = 56;

/// Length in bytes of the first (44-byte) layout: the shortest header a reader accepts.
pub const FRAME_HEADER_MIN_LEN: usize = 44;

/// Version of the header layout written by [`FrameHeader::encode`].
pub const FRAME_HEADER_VERSION: u8 = 1;

/// Flag: the last rectangle of its frame; present the frame now.
pub const FLAG_LAST: u16 = 1;

/// Flag: the rectangles of this frame together cover the whole screen (a keyframe):
/// the picture does not depend on any earlier frame.
pub const FLAG_KEY: u16 = 1 << 1;

/// Flag: this rectangle did not change; it is sent again at a higher quality.
pub const FLAG_REFRESH: u16 = 1 << 2;

/// Flag: the rectangle is one solid colour; its payload is three bytes (red, green,
/// blue) instead of a JPEG. Sent on `/ws` only (never in MJPEG or snapshots).
pub const FLAG_FILL: u16 = 1 << 3;

/// Metadata in front of every binary frame message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Flag bits: [`FLAG_LAST`], [`FLAG_KEY`], [`FLAG_REFRESH`]; unknown bits are kept.
    pub flags: u16,
    /// Sequence number of this frame, counting from 1 within a pipeline run; every
    /// rectangle of one frame carries the same number.
    pub seq: u64,
    /// When the frame was captured, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// `seq` of the last input event applied before this capture; 0 if none.
    pub input_seq: u64,
    /// Left edge of the rectangle this JPEG covers, in screen pixels.
    pub x: u32,
    /// Top edge of the rectangle, in screen pixels.
    pub y: u32,
    /// Width of the rectangle (and of the JPEG), in pixels.
    pub width: u32,
    /// Height of the rectangle (and of the JPEG), in pixels.
    pub height: u32,
    /// Width of the whole screen; 0 when the sender did not say (44-byte header).
    pub screen_width: u32,
    /// Height of the whole screen; 0 when the sender did not say.
    pub screen_height: u32,
    /// JPEG quality the rectangle was encoded at; 0 when unknown.
    pub quality: u8,
    /// Number of rectangles in this frame; 0 when unknown.
    pub rects: u16,
}

/// Why bytes could not be read as a frame message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameHeaderError {
    /// The message is shorter than the header it announces.
    #[error("frame message too short; {0} bytes")]
    TooShort(usize),
    /// The announced header length is smaller than the first layout's.
    #[error("frame header length {0} is smaller than {FRAME_HEADER_MIN_LEN}")]
    BadLength(u8),
    /// The header comes from a newer, unknown layout.
    #[error("unsupported frame header version {0}; reload the page")]
    BadVersion(u8),
}

impl FrameHeader {
    /// Whether this is the last rectangle of its frame.
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Whether this rectangle belongs to a keyframe (the frame covers the whole screen).
    pub fn is_key(&self) -> bool {
        self.flags & FLAG_KEY != 0
    }

    /// Whether the rectangle is one solid colour ([`FLAG_FILL`]): the payload is RGB.
    pub fn is_fill(&self) -> bool {
        self.flags & FLAG_FILL != 0
    }

    /// Writes the header followed by `jpeg` into one message buffer.
    pub fn encode_with(&self, jpeg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + jpeg.len());
        out.extend_from_slice(&self.encode());
        out.extend_from_slice(jpeg);
        out
    }

    /// Encodes the header alone.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0] = FRAME_HEADER_LEN as u8;
        b[1] = FRAME_HEADER_VERSION;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.capture_us.to_le_bytes());
        b[20..28].copy_from_slice(&self.input_seq.to_le_bytes());
        b[28..32].copy_from_slice(&self.x.to_le_bytes());
        b[32..36].copy_from_slice(&self.y.to_le_bytes());
        b[36..40].copy_from_slice(&self.width.to_le_bytes());
        b[40..44].copy_from_slice(&self.height.to_le_bytes());
        b[44..48].copy_from_slice(&self.screen_width.to_le_bytes());
        b[48..52].copy_from_slice(&self.screen_height.to_le_bytes());
        b[52] = self.quality;
        b[54..56].copy_from_slice(&self.rects.to_le_bytes());
        b
    }

    /// Splits a frame message into its header and the JPEG bytes after it.
    ///
    /// A 44-byte header (the first layout) reads with the later fields 0; a longer one
    /// (a later minor version) is accepted and its extra bytes are skipped.
    pub fn decode(msg: &[u8]) -> Result<(FrameHeader, &[u8]), FrameHeaderError> {
        if msg.len() < 2 {
            return Err(FrameHeaderError::TooShort(msg.len()));
        }
        let len = msg[0];
        if (len as usize) < FRAME_HEADER_MIN_LEN {
            return Err(FrameHeaderError::BadLength(len));
        }
        if msg[1] != FRAME_HEADER_VERSION {
            return Err(FrameHeaderError::BadVersion(msg[1]));
        }
        if msg.len() < len as usize {
            return Err(FrameHeaderError::TooShort(msg.len()));
        }
        let head = &msg[..len as usize];
        // Fields past the announced length read as 0.
        let bytes = |i: usize, n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            if let Some(src) = head.get(i..i + n) {
                a[..n].copy_from_slice(src);
            }
            a
        };
        let u64_at = |i: usize| u64::from_le_bytes(bytes(i, 8));
        let u32_at = |i: usize| u64::from_le_bytes(bytes(i, 4)) as u32;
        let u16_at = |i: usize| u64::from_le_bytes(bytes(i, 2)) as u16;
        let header = FrameHeader {
            flags: u16_at(2),
            seq: u64_at(4),
            capture_us: u64_at(12),
            input_seq: u64_at(20),
            x: u32_at(28),
            y: u32_at(32),
            width: u32_at(36),
            height: u32_at(40),
            screen_width: u32_at(44),
            screen_height: u32_at(48),
            quality: bytes(52, 1)[0],
            rects: u16_at(54),
        };
        Ok((header, &msg[len as usize..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FrameHeader {
        FrameHeader {
            flags: FLAG_LAST | FLAG_KEY,
            seq: 0x0102_0304_0506_0708,
            capture_us: 1_764_000_000_123_456,
            input_seq: 42,
            x: 1,
            y: 2,
            width: 1920,
            height: 1080,
            screen_width: 2560,
            screen_height: 1440,
            quality: 80,
            rects: 3,
        }
    }

    #[test]
    fn round_trip_keeps_every_field_flags_and_the_payload() {
        let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let msg = sample().encode_with(&jpeg);
        assert_eq!(msg.len(), FRAME_HEADER_LEN + jpeg.len());
        let (h, payload) = FrameHeader::decode(&msg).expect("decodes");
        assert_eq!(h, sample());
        assert!(h.is_last() && h.is_key());
        assert_eq!(payload, jpeg);
        let plain = FrameHeader {
            flags: FLAG_REFRESH,
            ..sample()
        };
        let (h, _) = FrameHeader::decode(&plain.encode_with(&jpeg)).expect("decodes");
        assert!(!h.is_last() && !h.is_key());
        assert_eq!(h.flags, FLAG_REFRESH);
    }

    #[test]
    fn layout_matches_protocol_document() {
        let b = sample().encode();
        assert_eq!(b[0], 56);
        assert_eq!(b[1], 1);
        assert_eq!(&b[2..4], &[3, 0], "last | key");
        assert_eq!(&b[4..12], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[20..28], &[42, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[36..40], &[0x80, 0x07, 0, 0]);
        assert_eq!(&b[40..44], &[0x38, 0x04, 0, 0]);
        assert_eq!(&b[44..48], &[0x00, 0x0A, 0, 0]);
        assert_eq!(&b[48..52], &[0xA0, 0x05, 0, 0]);
        assert_eq!(b[52], 80);
        assert_eq!(&b[54..56], &[3, 0]);
    }

    /// A reader of the first layout: 44 bytes, flags ignored, JPEG at byte 0's offset.
    fn v1_reader(msg: &[u8]) -> Option<(u32, u32, u32, u32, &[u8])> {
        let len = *msg.first()? as usize;
        if len < 44 || msg.get(1) != Some(&1) || msg.len() < len {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        Some((u32_at(28), u32_at(32), u32_at(36), u32_at(40), &msg[len..]))
    }

    #[test]
    fn a_reader_of_the_44_byte_layout_still_decodes_every_message() {
        let jpeg = [0xFF, 0xD8, 7, 0xFF, 0xD9];
        for flags in [0, FLAG_LAST, FLAG_LAST | FLAG_KEY, FLAG_REFRESH] {
            let msg = FrameHeader { flags, ..sample() }.encode_with(&jpeg);
            let (x, y, w, h, payload) = v1_reader(&msg).expect("old reader decodes");
            assert_eq!((x, y, w, h), (1, 2, 1920, 1080));
            assert_eq!(payload, jpeg);
        }
    }

    #[test]
    fn a_44_byte_header_reads_with_the_new_fields_zero() {
        let mut msg = sample().encode()[..44].to_vec();
        msg[0] = 44;
        msg.extend_from_slice(&[0xFF, 0xD8]);
        let (h, payload) = FrameHeader::decode(&msg).expect("decodes");
        assert_eq!((h.width, h.height, h.flags), (1920, 1080, 3));
        assert_eq!(
            (h.screen_width, h.screen_height, h.quality, h.rects),
            (0, 0, 0, 0)
        );
        assert_eq!(payload, [0xFF, 0xD8]);
    }

    #[test]
    fn longer_header_from_a_later_minor_version_is_skipped() {
        let mut msg = sample().encode().to_vec();
        msg[0] = 60;
        msg.extend_from_slice(&[9, 9, 9, 9, 0xFF, 0xD8]);
        let (h, payload) = FrameHeader::decode(&msg).expect("decodes");
        assert_eq!(h.width, 1920);
        assert_eq!(payload, [0xFF, 0xD8]);
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        assert_eq!(FrameHeader::decode(&[]), Err(FrameHeaderError::TooShort(0)));
        assert_eq!(
            FrameHeader::decode(&[10, 1]),
            Err(FrameHeaderError::BadLength(10))
        );
        assert_eq!(
            FrameHeader::decode(&[56, 9]),
            Err(FrameHeaderError::BadVersion(9))
        );
        assert_eq!(
            FrameHeader::decode(&[56, 1, 0]),
            Err(FrameHeaderError::TooShort(3))
        );
    }
}
