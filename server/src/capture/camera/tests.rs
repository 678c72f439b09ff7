//! The camera's state machine with a scripted device: open fails, frames stop, the
//! device returns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// What the fake camera does next, shared with the test.
#[derive(Default)]
struct Script {
    /// Whether opening works now.
    present: bool,
    /// Reads to answer, in order; when empty, the camera is gone.
    reads: VecDeque<Result<Frame, ReadError>>,
    opens: u32,
}

struct Fake(Arc<Mutex<Script>>);

impl Device for Fake {
    fn read(&mut self) -> Result<Frame, ReadError> {
        std::thread::sleep(Duration::from_millis(2));
        let mut s = self.0.lock().expect("script");
        s.reads
            .pop_front()
            .unwrap_or_else(|| Err(ReadError::Gone("unplugged".into())))
    }

    fn describe(&self) -> String {
        "a fake camera".into()
    }
}

fn opener(script: &Arc<Mutex<Script>>) -> Open {
    let script = script.clone();
    Arc::new(move || {
        let mut s = script.lock().expect("script");
        s.opens += 1;
        if s.present {
            Ok(Box::new(Fake(script.clone())) as Box<dyn Device>)
        } else {
            Err("no such camera".into())
        }
    })
}

fn jpeg(w: usize, h: usize, shade: u8) -> Vec<u8> {
    super::jpeg::encode_rgb(&vec![shade; w * h * 3], w, h, 80)
}

/// Polls `source.jpeg()` until `want` accepts what it says, within 2 s.
fn until(
    source: &mut CameraSource,
    want: impl Fn(&Result<Option<Bytes>, CaptureError>) -> bool,
) -> Result<Option<Bytes>, CaptureError> {
    let start = Instant::now();
    loop {
        let got = source.jpeg().expect("an MJPEG camera passes JPEG through");
        if want(&got) || start.elapsed() > Duration::from_secs(2) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn open_fails_frames_stop_and_the_device_returns() {
    let script = Arc::new(Mutex::new(Script::default()));
    // No camera: opening fails, with the reason.
    let err = CameraSource::open(opener(&script)).err().expect("fails");
    assert!(err.contains("no such camera"), "{err}");

    // A camera whose first frames are garbage and then good ones, padded.
    let a = jpeg(64, 48, 40);
    let mut padded = a.clone();
    padded.resize(a.len() + 10_000, 0);
    {
        let mut s = script.lock().expect("script");
        s.present = true;
        s.reads.push_back(Ok(Frame::Jpeg(vec![1, 2, 3])));
        s.reads
            .push_back(Err(ReadError::Bad("a short read".into())));
        s.reads.push_back(Ok(Frame::Jpeg(padded)));
        for _ in 0..20 {
            s.reads.push_back(Ok(Frame::Jpeg(a.clone())));
        }
    }
    let mut source = CameraSource::open(opener(&script)).expect("opens");
    assert_eq!(
        (source.geometry().width, source.geometry().height),
        (64, 48)
    );
    assert_eq!(source.backend(), "camera-mjpeg");
    let first = until(&mut source, |r| matches!(r, Ok(Some(_)))).expect("a frame");
    assert_eq!(first.as_deref(), Some(a.as_slice()), "cut, byte for byte");
    // The frames run out: the camera is gone, and says so.
    let gone = until(&mut source, |r| r.is_err());
    assert!(gone.is_err(), "{gone:?}");
    assert_eq!(source.lost().as_deref(), Some("unplugged"));

    // It comes back: a new source opens (the pipeline re-opens every second).
    {
        let mut s = script.lock().expect("script");
        for _ in 0..20 {
            s.reads.push_back(Ok(Frame::Jpeg(a.clone())));
        }
    }
    let mut again = CameraSource::open(opener(&script)).expect("opens again");
    assert!(matches!(
        until(&mut again, |r| matches!(r, Ok(Some(_)))),
        Ok(Some(_))
    ));
    assert!(again.lost().is_none());
}

#[test]
fn idle_lets_go_of_the_device_and_watching_again_reopens_it() {
    let script = Arc::new(Mutex::new(Script::default()));
    let a = jpeg(32, 32, 200);
    {
        let mut s = script.lock().expect("script");
        s.present = true;
        for _ in 0..1000 {
            s.reads.push_back(Ok(Frame::Jpeg(a.clone())));
        }
    }
    let mut source = CameraSource::open(opener(&script)).expect("opens");
    assert!(matches!(
        until(&mut source, |r| matches!(r, Ok(Some(_)))),
        Ok(Some(_))
    ));
    source.pause();
    assert_eq!(script.lock().expect("script").opens, 1);
    let left = script.lock().expect("script").reads.len();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        script.lock().expect("script").reads.len(),
        left,
        "paused: nothing is read"
    );
    assert!(matches!(
        until(&mut source, |r| matches!(r, Ok(Some(_)))),
        Ok(Some(_))
    ));
    assert_eq!(script.lock().expect("script").opens, 2, "opened again");
}

#[test]
fn raw_yuyv_cameras_give_pixels_not_jpeg() {
    let script = Arc::new(Mutex::new(Script::default()));
    {
        let mut s = script.lock().expect("script");
        s.present = true;
        for _ in 0..50 {
            s.reads.push_back(Ok(Frame::Yuyv {
                width: 4,
                height: 2,
                data: vec![
                    235, 128, 235, 128, 235, 128, 235, 128, 16, 128, 16, 128, 16, 128, 16, 128,
                ],
            }));
        }
    }
    let mut source = CameraSource::open(opener(&script)).expect("opens");
    assert!(source.jpeg().is_none(), "raw frames are pixels");
    assert_eq!(source.backend(), "camera-raw");
    let start = Instant::now();
    let pixels = loop {
        if source.damage().expect("damage") == Damage::All {
            let p = source.capture(&[]).expect("capture");
            if !p.is_empty() {
                break p;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(2), "no frame");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(pixels[0].rect, Rect::full(4, 2));
    assert!(
        pixels[0].bytes()[..3].iter().all(|&c| c > 250),
        "white first row"
    );
}
