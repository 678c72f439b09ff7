//! The pipeline with synthetic sources: errors, still screens, regions, keyframes.

use super::*;
use std::time::Instant;

use deskcast_shared::{FrameHeader, FLAG_REFRESH};

use crate::capture::{Damage, PatternSource, PixelLayout, Pixels, Rect};
use crate::error::CaptureError;

/// Fails every other capture, like xcap while the screen changes mode.
struct Flaky(PatternSource, u32);

impl FrameSource for Flaky {
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn is_desktop(&self) -> bool {
        false
    }
    fn backend(&self) -> &'static str {
        "flaky"
    }
    fn damage(&mut self) -> Result<Damage, CaptureError> {
        self.0.damage()
    }
    fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        self.1 += 1;
        if self.1.is_multiple_of(2) {
            Err(CaptureError("screen changed mid-capture".into()))
        } else {
            self.0.capture(areas)
        }
    }
}

/// Always the same image, and no damage information: the compare must find that
/// nothing changed.
struct Still(u32, u32, Vec<u8>);

impl FrameSource for Still {
    fn geometry(&self) -> Geometry {
        Geometry {
            x: 0,
            y: 0,
            width: self.0,
            height: self.1,
        }
    }
    fn is_desktop(&self) -> bool {
        false
    }
    fn backend(&self) -> &'static str {
        "still"
    }
    fn capture(&mut self, _areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        Ok(vec![Pixels::owned(
            Rect::full(self.0, self.1),
            PixelLayout::Rgba,
            self.2.clone(),
        )])
    }
}

fn still(width: u32, height: u32) -> Still {
    Still(width, height, PatternSource::new(width, height).render())
}

async fn next(viewer: &mut Viewer) -> Arc<Update> {
    tokio::time::timeout(Duration::from_secs(5), viewer.next(100))
        .await
        .expect("an update in time")
        .expect("pipeline alive")
}

fn headers(u: &Update) -> Vec<FrameHeader> {
    u.messages
        .iter()
        .map(|m| FrameHeader::decode(m).expect("header").0)
        .collect()
}

#[test]
fn credit_allows_one_early_capture_then_holds_the_rate() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut c = Credit {
        fps: 10.0,
        level: 1.0,
        at: t0,
    };
    c.spend(ms(0));
    assert_eq!(
        c.ready_at(ms(10)),
        ms(10),
        "a spare capture is there after idling"
    );
    c.spend(ms(10));
    // Now one capture behind: the next may start only when a whole period has refilled.
    let ready = c.ready_at(ms(10));
    assert!(ready >= ms(100) && ready <= ms(101), "{:?}", ready - t0);
    // Idle again: back to one spare capture, never more.
    assert_eq!(c.ready_at(ms(5000)), ms(5000));
    assert!((c.level_at(ms(5000)) - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn capture_errors_skip_frames_and_the_stream_goes_on() {
    let source = Flaky(PatternSource::new(64, 48), 0);
    let pipeline = Pipeline::start(Box::new(source), 100, 80, None).expect("start");
    let mut viewer = pipeline.subscribe();
    let mut last = 0;
    for _ in 0..6 {
        let u = next(&mut viewer).await;
        assert!(u.seq > last);
        last = u.seq;
    }
    assert!(
        pipeline.stats().errors.load(Ordering::SeqCst) >= 3,
        "errors were counted"
    );
}

#[tokio::test]
async fn a_still_screen_is_sent_once_sharp_then_nothing() {
    let pipeline = Pipeline::start(Box::new(still(200, 150)), 100, 80, None).expect("start");
    let stats = pipeline.stats();
    let mut viewer = pipeline.subscribe();
    let first = next(&mut viewer).await;
    assert!(first.key, "the first update is a full frame");
    let h = headers(&first);
    assert!(
        h.iter().all(|h| h.is_key() && h.quality == REFRESH_QUALITY),
        "{h:?}"
    );
    assert!(h.last().expect("one").is_last());
    let again = tokio::time::timeout(REFRESH_AFTER * 4, viewer.next(100)).await;
    assert!(
        again.is_err(),
        "nothing more for a still screen, not even a refresh"
    );
    assert!(
        stats.captures.load(Ordering::SeqCst) >= 10,
        "it kept looking"
    );
    assert!(stats.unchanged.load(Ordering::SeqCst) >= 9, "and compared");
    assert_eq!(stats.published.load(Ordering::SeqCst), 1);
    // A viewer who joins now gets the same picture at once, encoded no more.
    let mut late = pipeline.subscribe();
    let kf = next(&mut late).await;
    assert!(kf.key);
    assert_eq!(kf.seq, first.seq, "it includes everything so far");
    assert_eq!(
        stats.keyframes.load(Ordering::SeqCst),
        0,
        "the first frame serves"
    );
}

#[tokio::test]
async fn a_changed_region_is_sharpened_once_after_it_went_still() {
    let mut source = PatternSource::new(320, 240);
    let _ = source.damage();
    // Move the box twice, then keep still: Still shows the moved picture from then on.
    struct Twice(PatternSource, u32);
    impl FrameSource for Twice {
        fn geometry(&self) -> Geometry {
            self.0.geometry()
        }
        fn is_desktop(&self) -> bool {
            false
        }
        fn backend(&self) -> &'static str {
            "twice"
        }
        fn damage(&mut self) -> Result<Damage, CaptureError> {
            self.1 += 1;
            match self.1 {
                1 => Ok(Damage::All),
                2 | 3 => self.0.damage(),
                _ => Ok(Damage::Nothing),
            }
        }
        fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
            self.0.capture(areas)
        }
    }
    let pipeline = Pipeline::start(Box::new(Twice(source, 0)), 50, 80, None).expect("start");
    let mut viewer = pipeline.subscribe();
    assert!(next(&mut viewer).await.key);
    let moved = [next(&mut viewer).await, next(&mut viewer).await];
    for u in &moved {
        assert!(headers(u)
            .iter()
            .all(|h| h.quality == 80 && h.flags & FLAG_REFRESH == 0));
    }
    let refresh = next(&mut viewer).await;
    let h = headers(&refresh);
    assert!(h
        .iter()
        .all(|h| h.flags & FLAG_REFRESH != 0 && h.quality == REFRESH_QUALITY));
    // Exactly the tiles that changed come back sharp.
    let changed: u64 = moved
        .iter()
        .flat_map(|u| headers(u))
        .map(|h| u64::from(h.width * h.height))
        .max()
        .unwrap_or(0);
    let sharpened: u64 = h.iter().map(|h| u64::from(h.width * h.height)).sum();
    assert!(sharpened >= changed && sharpened < 320 * 240 / 2, "{h:?}");
    let again = tokio::time::timeout(REFRESH_AFTER * 4, viewer.next(100)).await;
    assert!(again.is_err(), "refreshed once only");
}

#[tokio::test]
async fn a_moving_box_is_sent_as_small_regions_in_order() {
    let (w, h) = (640, 480);
    let pipeline =
        Pipeline::start(Box::new(PatternSource::new(w, h)), 60, 90, None).expect("start");
    let mut viewer = pipeline.subscribe();
    let first = next(&mut viewer).await;
    assert!(first.key);
    let mut at = first.seq;
    let mut last = Vec::new();
    for _ in 0..10 {
        let u = next(&mut viewer).await;
        assert_eq!(u.prev, at, "no update skipped");
        at = u.seq;
        assert!(!u.key, "a small change is not a full frame");
        let hs = headers(&u);
        let area: u64 = hs.iter().map(|h| u64::from(h.width * h.height)).sum();
        assert!(
            area * 5 < u64::from(w * h),
            "regions, not the screen: {hs:?}"
        );
        assert!(hs.iter().all(|h| h.y >= h.screen_height * 2 / 3 - 64));
        assert_eq!(hs.iter().filter(|h| h.is_last()).count(), 1);
        assert!(hs.last().expect("some").is_last());
        assert!(hs
            .iter()
            .all(|x| x.seq == u.seq && usize::from(x.rects) == hs.len()));
        last = hs;
    }
    // Changing frame after frame: the box is in motion, sent at the motion quality.
    assert!(
        last.iter().all(|h| h.quality == plan::motion_quality(90)),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_viewer_that_falls_behind_catches_up_on_what_changed_not_a_keyframe() {
    let pipeline =
        Pipeline::start(Box::new(PatternSource::new(320, 240)), 200, 90, None).expect("start");
    let mut fast = pipeline.subscribe();
    let mut slow = pipeline.subscribe();
    next(&mut slow).await;
    // The fast viewer takes well over BACKLOG updates while the slow one reads nothing.
    let mut newest = 0;
    for _ in 0..BACKLOG + 20 {
        newest = next(&mut fast).await.seq;
    }
    let u = next(&mut slow).await;
    assert!(!u.key, "no keyframe: only what changed");
    assert!(
        u.seq >= newest,
        "at once at the newest picture: {} < {newest}",
        u.seq
    );
    let area: u32 = headers(&u).iter().map(|h| h.width * h.height).sum();
    assert!(
        area < 320 * 240 / 2,
        "the box's band, not the screen: {area}"
    );
    let after = next(&mut slow).await;
    assert!(after.seq > u.seq, "and on from there");
    assert_eq!(pipeline.stats().keyframes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn whole_frames_are_encoded_only_for_mjpeg_readers() {
    let pipeline = Pipeline::start(Box::new(still(160, 120)), 100, 80, None).expect("start");
    let stats = pipeline.stats();
    let mut viewer = pipeline.subscribe();
    next(&mut viewer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.wholes.load(Ordering::SeqCst), 0);
    let mut reader = pipeline.subscribe_whole();
    let whole = tokio::time::timeout(Duration::from_secs(5), reader.next())
        .await
        .expect("in time")
        .expect("alive");
    assert_eq!((whole.header.width, whole.header.height), (160, 120));
    assert_eq!(&whole.jpeg[..2], &[0xFF, 0xD8]);
    // A still screen: no new whole frame, and a second reader gets the same one.
    let mut second = pipeline.subscribe_whole();
    let same = tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .expect("in time")
        .expect("alive");
    assert_eq!(same.covers, whole.covers);
    assert_eq!(stats.wholes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn viewers_behind_at_the_same_quality_share_one_catch_up_encode() {
    let pipeline =
        Pipeline::start(Box::new(PatternSource::new(320, 240)), 60, 90, None).expect("start");
    let mut viewer = pipeline.subscribe();
    let first = next(&mut viewer).await;
    next(&mut viewer).await;
    // Two viewers behind (one further than the other) ask in the same moment.
    let (a, wait_a) = tokio::sync::oneshot::channel();
    let (b, wait_b) = tokio::sync::oneshot::channel();
    let (c, wait_c) = tokio::sync::oneshot::channel();
    {
        let mut st = pipeline.shared.lock();
        st.catch_ups.push(viewer::CatchUp {
            area: viewer::Area::Since(first.seq),
            quality: 50,
            reply: a,
        });
        st.catch_ups.push(viewer::CatchUp {
            area: viewer::Area::Since(first.seq + 1),
            quality: 50,
            reply: b,
        });
        st.catch_ups.push(viewer::CatchUp {
            area: viewer::Area::Since(first.seq),
            quality: 70,
            reply: c,
        });
    }
    pipeline.shared.wake.notify_all();
    let wait = |w: tokio::sync::oneshot::Receiver<Arc<Update>>| async move {
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("in time")
            .expect("answered")
    };
    let (ua, ub, uc) = (wait(wait_a).await, wait(wait_b).await, wait(wait_c).await);
    assert!(
        Arc::ptr_eq(&ua, &ub),
        "one encode for both viewers at quality 50"
    );
    assert!(!Arc::ptr_eq(&ua, &uc), "another for quality 70");
    assert!(headers(&ua).iter().all(|h| h.quality == 50));
    assert!(headers(&uc).iter().all(|h| h.quality == 70));
    assert!(
        !ua.messages.is_empty(),
        "the box moved since: something to send"
    );
}

/// A "video" in the left quarter that changes on every capture, and a "button" at
/// the right edge that changes colour when asked (together under the full-frame share), in the damage query (after the tick
/// read the input `seq`).
struct VideoAndButton {
    frame: u32,
    flip: Arc<std::sync::atomic::AtomicBool>,
    button: u8,
}

const VB: (u32, u32) = (512, 256);

impl FrameSource for VideoAndButton {
    fn geometry(&self) -> Geometry {
        Geometry {
            x: 0,
            y: 0,
            width: VB.0,
            height: VB.1,
        }
    }
    fn is_desktop(&self) -> bool {
        false
    }
    fn backend(&self) -> &'static str {
        "video-and-button"
    }
    fn damage(&mut self) -> Result<Damage, CaptureError> {
        if self.flip.swap(false, Ordering::SeqCst) {
            self.button = self.button.wrapping_add(80);
        }
        Ok(Damage::All)
    }
    fn capture(&mut self, _areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        self.frame += 1;
        let mut px = Vec::with_capacity((VB.0 * VB.1 * 4) as usize);
        for y in 0..VB.1 {
            for x in 0..VB.0 {
                let v = if x < VB.0 / 4 {
                    (x * 7 + y * 3 + self.frame * 13) as u8
                } else if x >= VB.0 * 7 / 8 {
                    self.button
                } else {
                    90
                };
                px.extend_from_slice(&[v, v / 2, 255 - v, 255]);
            }
        }
        Ok(vec![Pixels::owned(
            Rect::full(VB.0, VB.1),
            PixelLayout::Rgba,
            px,
        )])
    }
}

#[tokio::test]
async fn an_update_answering_input_goes_first_without_the_video_beside_it() {
    let flip = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let source = VideoAndButton {
        frame: 0,
        flip: flip.clone(),
        button: 40,
    };
    let pipeline = Pipeline::start(Box::new(source), 50, 80, None).expect("start");
    let mut viewer = pipeline.subscribe();
    // Let the video play long enough to count as motion.
    for _ in 0..8 {
        next(&mut viewer).await;
    }
    let in_video = |h: &FrameHeader| h.x < VB.0 / 4;
    let in_button = |h: &FrameHeader| h.x + h.width > VB.0 * 7 / 8;
    let mut split = false;
    for attempt in 1..=5u64 {
        // Input applied, then the button repaints (in the next damage query).
        pipeline.stats().input_seq.store(attempt, Ordering::SeqCst);
        flip.store(true, Ordering::SeqCst);
        let answer = loop {
            let u = next(&mut viewer).await;
            if headers(&u).iter().any(in_button) {
                break u;
            }
        };
        let hs = headers(&answer);
        if hs.iter().all(|h| !in_video(h)) {
            assert!(hs.iter().all(|h| h.input_seq == attempt), "{hs:?}");
            // The video's change follows in the next update.
            let after = next(&mut viewer).await;
            assert!(
                headers(&after).iter().any(in_video),
                "the held-back video follows: {:?}",
                headers(&after)
            );
            split = true;
            break;
        }
        // The flip landed between the tick's input read and its damage query (a
        // race of microseconds): try again.
    }
    assert!(
        split,
        "the update answering input never went without the video"
    );
}
