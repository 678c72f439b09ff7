//! Cameras: USB cameras through V4L2 ([`v4l`], nokhwa), and IP cameras by URL
//! ([`http`]).
//!
//! A reader thread takes frames from the device as fast as it gives them and keeps
//! only the newest (latest frame wins); the pipeline takes that one each tick. A camera
//! whose frames already are JPEG (MJPEG, as nearly all USB and IP cameras offer) is
//! passed through: each frame is made a valid file ([`jpeg::fix`]) and goes to every
//! viewer byte for byte, never decoded. Raw frames (YUYV, NV12) are converted
//! ([`yuv`]) and go the way screen captures go. The device is open only while someone
//! watches; a camera that disappears or stops answering counts as lost
//! ([`FrameSource::lost`]): the pipeline shows a placeholder and opens it again every
//! second.

pub mod http;
pub mod jpeg;
pub mod v4l;
pub mod yuv;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Damage, FrameSource, Geometry, Pixels, Rect};
use crate::error::{CaptureError, StartError};

/// Which camera `--camera` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSpec {
    /// A V4L2 camera by index (`0` is `/dev/video0`'s camera, as `--list-cameras` shows).
    Index(u32),
    /// A V4L2 device node.
    Path(PathBuf),
    /// An MJPEG IP camera.
    Url(String),
}

impl std::str::FromStr for CameraSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            http::CameraUrl::parse(s)?;
            return Ok(CameraSpec::Url(s.to_string()));
        }
        if let Ok(i) = s.parse() {
            return Ok(CameraSpec::Index(i));
        }
        if s.starts_with('/') {
            return Ok(CameraSpec::Path(PathBuf::from(s)));
        }
        Err(format!(
            "{s:?} is not a camera; give an index (0), a device (/dev/video2) or an MJPEG URL (http://…)"
        ))
    }
}

/// What the camera asked for (`--camera-size`, `--camera-fps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wanted {
    /// Width and height.
    pub size: Option<(u32, u32)>,
    /// Frames per second.
    pub fps: Option<u32>,
}

/// What a device hands over.
pub enum Frame {
    /// A JPEG, possibly padded or without Huffman tables.
    Jpeg(Vec<u8>),
    /// YUYV 4:2:2.
    Yuyv {
        /// Width, pixels.
        width: u32,
        /// Height, pixels.
        height: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// NV12 4:2:0.
    Nv12 {
        /// Width, pixels.
        width: u32,
        /// Height, pixels.
        height: u32,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// Why a read gave no frame.
#[derive(Debug)]
pub enum ReadError {
    /// The camera is gone (unplugged, stopped answering).
    Gone(String),
    /// This frame is bad; the next may be fine.
    Bad(String),
}

/// One opened camera.
pub trait Device: Send {
    /// The next frame; blocks until the camera sends one (or a timeout says it is gone).
    fn read(&mut self) -> Result<Frame, ReadError>;
    /// The camera and its mode, for the log.
    fn describe(&self) -> String;
}

/// Opens the camera (again, after it was lost).
pub type Open = Arc<dyn Fn() -> Result<Box<dyn Device>, String> + Send + Sync>;

/// A frame ready to send.
enum Ready {
    Jpeg(Bytes),
    Pixels(Pixels),
}

/// The newest frame, shared between the reader thread and the pipeline.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

#[derive(Default)]
struct SlotState {
    frame: Option<Ready>,
    /// Counts frames put.
    seq: u64,
    /// Set by the reader when the camera is gone.
    lost: Option<String>,
    /// Set by the pipeline: stop reading.
    stop: bool,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Frames dropped in a row before the camera counts as broken.
const MAX_BAD_IN_A_ROW: u32 = 100;

/// Makes a device's frame one to send, if it is one of `size` (`None`: any).
fn ready(frame: Frame, size: Option<(u32, u32)>) -> Result<(Ready, (u32, u32)), String> {
    let (ready, got) = match frame {
        Frame::Jpeg(buf) => {
            let j = jpeg::fix(&buf).map_err(|e| e.to_string())?;
            (Ready::Jpeg(j.bytes), (j.width, j.height))
        }
        Frame::Yuyv {
            width,
            height,
            data,
        } => (
            Ready::Pixels(yuv::yuyv(width, height, &data).map_err(|e| e.to_string())?),
            (width, height),
        ),
        Frame::Nv12 {
            width,
            height,
            data,
        } => (
            Ready::Pixels(yuv::nv12(width, height, &data).map_err(|e| e.to_string())?),
            (width, height),
        ),
    };
    match size {
        Some(s) if s != got => Err(format!(
            "a {}x{} frame in a {}x{} stream",
            got.0, got.1, s.0, s.1
        )),
        _ => Ok((ready, got)),
    }
}

/// Reads `device` into `slot` until told to stop or the camera is gone.
fn read_loop(mut device: Box<dyn Device>, slot: &Slot, size: (u32, u32)) {
    let mut bad = 0;
    loop {
        if slot.lock().stop {
            return;
        }
        let outcome = match device.read() {
            Ok(frame) => ready(frame, Some(size)),
            Err(ReadError::Bad(why)) => Err(why),
            Err(ReadError::Gone(why)) => {
                slot.lock().lost = Some(why);
                slot.changed.notify_all();
                return;
            }
        };
        match outcome {
            Ok((frame, _)) => {
                bad = 0;
                let mut st = slot.lock();
                st.frame = Some(frame);
                st.seq += 1;
                drop(st);
                slot.changed.notify_all();
            }
            Err(why) => {
                bad += 1;
                tracing::debug!("camera frame dropped: {why}");
                if bad >= MAX_BAD_IN_A_ROW {
                    slot.lock().lost = Some(format!("the camera sends only bad frames ({why})"));
                    return;
                }
            }
        }
    }
}

/// How long opening may wait for the first good frame.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(5);

/// A camera as a frame source.
pub struct CameraSource {
    open: Open,
    geometry: Geometry,
    jpeg: bool,
    backend: &'static str,
    slot: Arc<Slot>,
    reader: Option<JoinHandle<()>>,
    /// The slot's `seq` last taken.
    taken: u64,
    lost: Option<String>,
}

impl CameraSource {
    /// Opens the camera and reads its first good frame (which fixes the size).
    pub fn open(open: Open) -> Result<CameraSource, String> {
        let mut device = open()?;
        let start = Instant::now();
        let (first, size) = loop {
            let why = match device.read() {
                Ok(frame) => match ready(frame, None) {
                    Ok(r) => break r,
                    Err(why) => why,
                },
                Err(ReadError::Bad(why)) => why,
                Err(ReadError::Gone(why)) => return Err(why),
            };
            if start.elapsed() > FIRST_FRAME_WITHIN {
                return Err(format!("no good frame from the camera in 5 s ({why})"));
            }
        };
        let jpeg = matches!(first, Ready::Jpeg(_));
        tracing::info!(
            "camera: {}, {}x{}{}",
            device.describe(),
            size.0,
            size.1,
            if jpeg {
                ", MJPEG passed through"
            } else {
                ", raw frames encoded here"
            }
        );
        let slot = Arc::new(Slot::default());
        {
            let mut st = slot.lock();
            st.frame = Some(first);
            st.seq = 1;
        }
        let mut source = CameraSource {
            open,
            geometry: Geometry {
                x: 0,
                y: 0,
                width: size.0,
                height: size.1,
            },
            jpeg,
            backend: if jpeg { "camera-mjpeg" } else { "camera-raw" },
            slot,
            reader: None,
            taken: 0,
            lost: None,
        };
        source.spawn(device);
        Ok(source)
    }

    fn spawn(&mut self, device: Box<dyn Device>) {
        let slot = self.slot.clone();
        let size = (self.geometry.width, self.geometry.height);
        self.slot.lock().stop = false;
        self.reader = std::thread::Builder::new()
            .name("deskcast-camera".into())
            .spawn(move || read_loop(device, &slot, size))
            .map_err(|e| tracing::error!(cause = %e, "cannot start the camera thread"))
            .ok();
    }

    /// Makes sure the device is open and read; `Err` when the camera is gone.
    fn running(&mut self) -> Result<(), CaptureError> {
        if let Some(why) = self.slot.lock().lost.clone() {
            self.lost = Some(why.clone());
            return Err(CaptureError(why));
        }
        if self.reader.is_none() {
            match (self.open)() {
                Ok(device) => self.spawn(device),
                Err(why) => {
                    self.lost = Some(why.clone());
                    return Err(CaptureError(why));
                }
            }
        }
        Ok(())
    }

    /// The newest frame, if it is new.
    fn take(&mut self) -> Option<Ready> {
        let mut st = self.slot.lock();
        if st.seq == self.taken {
            return None;
        }
        self.taken = st.seq;
        st.frame.take()
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.slot.lock().stop = true;
    }
}

impl FrameSource for CameraSource {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn is_desktop(&self) -> bool {
        false
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    fn damage(&mut self) -> Result<Damage, CaptureError> {
        self.running()?;
        let st = self.slot.lock();
        Ok(if st.seq != self.taken {
            Damage::All
        } else {
            Damage::Nothing
        })
    }

    fn capture(&mut self, _areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        self.running()?;
        match self.take() {
            Some(Ready::Pixels(p)) => Ok(vec![p]),
            Some(Ready::Jpeg(_)) | None => Ok(Vec::new()),
        }
    }

    fn jpeg(&mut self) -> Option<Result<Option<Bytes>, CaptureError>> {
        if !self.jpeg {
            return None;
        }
        if let Err(e) = self.running() {
            return Some(Err(e));
        }
        Some(Ok(match self.take() {
            Some(Ready::Jpeg(j)) => Some(j),
            _ => None,
        }))
    }

    fn lost(&mut self) -> Option<String> {
        self.lost.clone()
    }

    fn pause(&mut self) {
        // Nobody watches: let go of the device (its light goes off); the next damage
        // query opens it again.
        self.slot.lock().stop = true;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let mut st = self.slot.lock();
        st.frame = None;
        self.taken = st.seq;
    }
}

/// Opens the camera `spec` names, asking for `wanted`; a clear error with what to do
/// when there is none.
pub fn open(spec: &CameraSpec, wanted: Wanted) -> Result<CameraSource, StartError> {
    let opener: Open = match spec {
        CameraSpec::Url(url) => {
            let url = http::CameraUrl::parse(url).map_err(StartError::Config)?;
            Arc::new(move || http::HttpCamera::open(&url).map(|c| Box::new(c) as Box<dyn Device>))
        }
        CameraSpec::Index(_) | CameraSpec::Path(_) => {
            let spec = spec.clone();
            Arc::new(move || v4l::open(&spec, wanted))
        }
    };
    CameraSource::open(opener).map_err(StartError::NoCamera)
}

#[cfg(test)]
mod tests;
