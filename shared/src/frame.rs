//! The binary frame header: a fixed little-endian header in front of one JPEG.
//!
//! Byte layout (all integers little-endian), documented in `docs/PROTOCOL.md`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | header length in bytes (44 for version 1) |
//! | 1 | 1 | header version (1) |
//! | 2 | 2 | flags (reserved, 0) |
//! | 4 | 8 | frame sequence number |
//! | 12 | 8 | capture time, microseconds since the Unix epoch |
//! | 20 | 8 | `seq` of the last input event applied before the capture (0 = none) |
//! | 28 | 4 | x of the region on the screen, pixels |
//! | 32 | 4 | y of the region |
//! | 36 | 4 | width of the region |
//! | 40 | 4 | height of the region |

use thiserror::Error;

/// Length in bytes of a version-1 frame header.
pub const FRAME_HEADER_LEN: usize = 44;

/// Version of the header layout written by [`FrameHeader::encode`].
pub const FRAME_HEADER_VERSION: u8 = 1;

/// Metadata in front of every binary frame message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Sequence number of this frame, counting from 1 within a pipeline run.
    pub seq: u64,
    /// When the frame was captured, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// `seq` of the last input event applied before this capture; 0 if none.
    pub input_seq: u64,
    /// Left edge of the region this JPEG covers, in screen pixels.
    pub x: u32,
    /// Top edge of the region, in screen pixels.
    pub y: u32,
    /// Width of the region (and of the JPEG), in pixels.
    pub width: u32,
    /// Height of the region (and of the JPEG), in pixels.
    pub height: u32,
}

/// Why bytes could not be read as a frame message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameHeaderError {
    /// The message is shorter than the header it announces.
    #[error("frame message too short; {0} bytes")]
    TooShort(usize),
    /// The announced header length is smaller than version 1's.
    #[error("frame header length {0} is smaller than {FRAME_HEADER_LEN}")]
    BadLength(u8),
    /// The header comes from a newer, unknown layout.
    #[error("unsupported frame header version {0}; reload the page")]
    BadVersion(u8),
}

impl FrameHeader {
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
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.capture_us.to_le_bytes());
        b[20..28].copy_from_slice(&self.input_seq.to_le_bytes());
        b[28..32].copy_from_slice(&self.x.to_le_bytes());
        b[32..36].copy_from_slice(&self.y.to_le_bytes());
        b[36..40].copy_from_slice(&self.width.to_le_bytes());
        b[40..44].copy_from_slice(&self.height.to_le_bytes());
        b
    }

    /// Splits a frame message into its header and the JPEG bytes after it.
    ///
    /// A longer header (a later minor version) is accepted: its extra bytes are skipped.
    pub fn decode(msg: &[u8]) -> Result<(FrameHeader, &[u8]), FrameHeaderError> {
        if msg.len() < 2 {
            return Err(FrameHeaderError::TooShort(msg.len()));
        }
        let len = msg[0];
        if (len as usize) < FRAME_HEADER_LEN {
            return Err(FrameHeaderError::BadLength(len));
        }
        if msg[1] != FRAME_HEADER_VERSION {
            return Err(FrameHeaderError::BadVersion(msg[1]));
        }
        if msg.len() < len as usize {
            return Err(FrameHeaderError::TooShort(msg.len()));
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&msg[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let u32_at = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&msg[i..i + 4]);
            u32::from_le_bytes(a)
        };
        let header = FrameHeader {
            seq: u64_at(4),
            capture_us: u64_at(12),
            input_seq: u64_at(20),
            x: u32_at(28),
            y: u32_at(32),
            width: u32_at(36),
            height: u32_at(40),
        };
        Ok((header, &msg[len as usize..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FrameHeader {
        FrameHeader {
            seq: 0x0102_0304_0506_0708,
            capture_us: 1_764_000_000_123_456,
            input_seq: 42,
            x: 1,
            y: 2,
            width: 1920,
            height: 1080,
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_the_payload() {
        let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let msg = sample().encode_with(&jpeg);
        assert_eq!(msg.len(), FRAME_HEADER_LEN + jpeg.len());
        let (h, payload) = FrameHeader::decode(&msg).expect("decodes");
        assert_eq!(h, sample());
        assert_eq!(payload, jpeg);
    }

    #[test]
    fn layout_matches_protocol_document() {
        let b = sample().encode();
        assert_eq!(b[0], 44);
        assert_eq!(b[1], 1);
        assert_eq!(&b[2..4], &[0, 0]);
        assert_eq!(&b[4..12], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[20..28], &[42, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[36..40], &[0x80, 0x07, 0, 0]);
        assert_eq!(&b[40..44], &[0x38, 0x04, 0, 0]);
    }

    #[test]
    fn longer_header_from_a_later_minor_version_is_skipped() {
        let mut msg = sample().encode().to_vec();
        msg[0] = 48;
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
            FrameHeader::decode(&[44, 9]),
            Err(FrameHeaderError::BadVersion(9))
        );
        assert_eq!(
            FrameHeader::decode(&[44, 1, 0]),
            Err(FrameHeaderError::TooShort(3))
        );
    }
}
