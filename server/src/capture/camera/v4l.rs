//! USB cameras through V4L2, by nokhwa (`default-features = false`: its own JPEG
//! decoder clashes with turbojpeg at link time, and deskcast never decodes MJPEG).
//!
//! The camera's own MJPEG is preferred: it is passed through as it is. Frames come
//! raw from the mmap'd buffer ([`nokhwa::Camera::frame_raw`]), padding and all; the
//! caller cuts them ([`super::jpeg::fix`]).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use nokhwa::Camera;

use super::{CameraSpec, Device, Frame, ReadError, Wanted};

/// What is asked for when `--camera-size`/`--camera-fps` say nothing.
const DEFAULT_SIZE: (u32, u32) = (1280, 720);
const DEFAULT_FPS: u32 = 30;

/// The V4L2 index a spec names: `0`, or `/dev/video0`.
fn index_of(spec: &CameraSpec) -> Result<u32, String> {
    match spec {
        CameraSpec::Index(i) => Ok(*i),
        CameraSpec::Path(p) => p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("video"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{} is not a V4L2 device (/dev/videoN)", p.display())),
        CameraSpec::Url(u) => Err(format!("{u} is a URL, not a V4L2 device")),
    }
}

/// A USB camera, streaming. nokhwa's camera cannot move between threads, so it lives
/// on a thread of its own that hands frames over; dropping this ends that thread.
pub struct V4lCamera {
    frames: mpsc::Receiver<Result<Frame, ReadError>>,
    described: String,
}

/// Frames waiting between the camera's thread and its reader (latest wins later on).
const HANDOVER: usize = 2;

/// Opens the camera `spec` names with the mode closest to `wanted`, MJPEG preferred.
pub fn open(spec: &CameraSpec, wanted: Wanted) -> Result<Box<dyn Device>, String> {
    let index = index_of(spec)?;
    let node = format!("/dev/video{index}");
    if !Path::new(&node).exists() {
        return Err(format!("{node} does not exist"));
    }
    let (tx, frames) = mpsc::sync_channel(HANDOVER);
    let (opened_tx, opened) = mpsc::channel();
    std::thread::Builder::new()
        .name("deskcast-v4l2".into())
        .spawn(move || {
            let camera = match start(index, wanted) {
                Ok((camera, described)) => {
                    let _ = opened_tx.send(Ok(described));
                    camera
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            stream(camera, &tx);
        })
        .map_err(|e| format!("cannot start the camera thread; {e}"))?;
    let described = opened
        .recv()
        .map_err(|_| format!("{node}: the camera thread ended"))??;
    Ok(Box::new(V4lCamera { frames, described }))
}

/// Opens and starts the camera; returns it and what was chosen.
fn start(index: u32, wanted: Wanted) -> Result<(Camera, String), String> {
    let node = format!("/dev/video{index}");
    let (w, h) = wanted.size.unwrap_or(DEFAULT_SIZE);
    let fps = wanted.fps.unwrap_or(DEFAULT_FPS);
    let asked = CameraFormat::new(Resolution::new(w, h), FrameFormat::MJPEG, fps);
    let request = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(asked));
    let mut camera =
        Camera::with_backend(CameraIndex::Index(index), request, ApiBackend::Video4Linux)
            .map_err(|e| format!("cannot open {node}; {e}"))?;
    camera
        .open_stream()
        .map_err(|e| format!("cannot start {node}; {e}"))?;
    let f = camera.camera_format();
    if (f.width(), f.height(), f.frame_rate()) != (w, h, fps) {
        tracing::info!(
            "camera {node}: asked for {w}x{h} at {fps} fps, the closest it offers is {}x{} at {} fps {}",
            f.width(),
            f.height(),
            f.frame_rate(),
            f.format()
        );
    }
    let described = format!(
        "{node} ({}), {} {}x{} at {} fps",
        camera.info().human_name(),
        f.format(),
        f.width(),
        f.height(),
        f.frame_rate()
    );
    Ok((camera, described))
}

/// Reads the camera until its reader goes away or it fails.
fn stream(mut camera: Camera, tx: &mpsc::SyncSender<Result<Frame, ReadError>>) {
    let format = camera.camera_format();
    let (width, height) = (format.width(), format.height());
    loop {
        let frame = match camera.frame_raw() {
            Ok(data) => {
                let data = data.into_owned();
                match format.format() {
                    FrameFormat::MJPEG => Ok(Frame::Jpeg(data)),
                    FrameFormat::YUYV => Ok(Frame::Yuyv {
                        width,
                        height,
                        data,
                    }),
                    FrameFormat::NV12 => Ok(Frame::Nv12 {
                        width,
                        height,
                        data,
                    }),
                    other => Err(ReadError::Gone(format!(
                        "the camera sends {other}, which deskcast does not read (MJPEG, YUYV, NV12)"
                    ))),
                }
            }
            Err(e) => Err(ReadError::Gone(format!("the camera stopped; {e}"))),
        };
        let end = matches!(frame, Err(ReadError::Gone(_)));
        if tx.send(frame).is_err() || end {
            let _ = camera.stop_stream();
            return;
        }
    }
}

/// How long a camera may send nothing before it counts as gone.
const SILENT_FOR: Duration = Duration::from_secs(5);

impl Device for V4lCamera {
    fn read(&mut self) -> Result<Frame, ReadError> {
        match self.frames.recv_timeout(SILENT_FOR) {
            Ok(frame) => frame,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(ReadError::Gone("the camera sent nothing for 5 s".into()))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(ReadError::Gone("the camera stopped".into()))
            }
        }
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}

/// `deskcast --list-cameras`: each camera with its index, name, device and modes.
pub fn list() -> String {
    let cameras = match nokhwa::query(ApiBackend::Video4Linux) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(cause = %e, "camera query failed");
            Vec::new()
        }
    };
    if cameras.is_empty() {
        return "no cameras found (no /dev/video* device); an IP camera works by URL: \
                --source camera --camera http://…\n"
            .into();
    }
    let mut out = String::new();
    for info in cameras {
        let index = info.index().clone();
        let _ = writeln!(
            out,
            "{}: {} ({})",
            index,
            info.human_name(),
            info.description()
        );
        let request = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
        match Camera::with_backend(index, request, ApiBackend::Video4Linux)
            .and_then(|mut c| c.compatible_camera_formats())
        {
            Ok(mut formats) => {
                formats.sort_by_key(|f| {
                    (
                        f.format().to_string(),
                        f.width(),
                        f.height(),
                        f.frame_rate(),
                    )
                });
                for f in formats {
                    let _ = writeln!(
                        out,
                        "   {} {}x{} at {} fps",
                        f.format(),
                        f.width(),
                        f.height(),
                        f.frame_rate()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "   (modes unavailable: {e})");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_device_paths_name_v4l2_cameras() {
        assert_eq!(index_of(&CameraSpec::Index(2)), Ok(2));
        assert_eq!(index_of(&CameraSpec::Path("/dev/video3".into())), Ok(3));
        assert!(index_of(&CameraSpec::Path("/dev/sda".into())).is_err());
    }
}
