//! What the pipeline publishes, and how a viewer follows it without ever drawing a
//! stale tile.
//!
//! Region updates depend on the picture before them, so a viewer must get every
//! update, or a keyframe and every update after it. Updates go out through a bounded
//! `broadcast` ring (shared bytes, one encode for all viewers); each names the update
//! before it. A viewer that joins, falls behind the ring, or finds a gap asks for a
//! keyframe and carries on from there: a slow viewer skips to a newer picture instead
//! of queueing, and never slows the others.
//!
//! A viewer that could not send for a while (its link is slow: it waits for acks or for
//! its socket to drain) finds several updates waiting, or fell out of the ring. It
//! does not send them one by one: the pipeline knows which update last sent each tile,
//! and encodes for this viewer alone, from the current picture and at the viewer's own
//! quality, every tile sent since the update the viewer is at (a catch-up). So what a
//! slow viewer gets next is always the newest picture, never a backlog, and falling
//! behind costs only what changed, never a keyframe.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use deskcast_shared::FrameHeader;
use tokio::sync::{broadcast, oneshot, watch};

use super::{Shared, REFRESH_AFTER, REFRESH_QUALITY};
use crate::capture::Rect;

/// One frame for `/ws` viewers: one or more binary messages (header + JPEG of one
/// rectangle), the last flagged.
#[derive(Debug)]
pub struct Update {
    /// The frame's sequence number (in every message's header).
    pub seq: u64,
    /// `seq` of the update published before this one (0: none since the start).
    pub prev: u64,
    /// Whether the rectangles cover the whole screen (no earlier update needed).
    pub key: bool,
    /// The `/ws` binary messages, in order.
    pub messages: Vec<Bytes>,
    /// The rectangles they cover (what a viewer that skips this update must catch up on).
    pub rects: Vec<Rect>,
}

impl Update {
    /// Bytes of all its messages.
    pub fn bytes(&self) -> usize {
        self.messages.iter().map(Bytes::len).sum()
    }

    /// How long ago its frame was captured, seconds (from its first header).
    pub fn age(&self) -> Option<f64> {
        let (h, _) = deskcast_shared::FrameHeader::decode(self.messages.first()?).ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_micros() as u64;
        Some(now.saturating_sub(h.capture_us) as f64 / 1e6)
    }

    /// The input `seq` its frame shows (from its first header; 0 for none).
    pub fn input_seq(&self) -> u64 {
        self.messages
            .first()
            .and_then(|m| deskcast_shared::FrameHeader::decode(m).ok())
            .map_or(0, |(h, _)| h.input_seq)
    }
}

/// A full picture for a viewer who has to start over: its messages carry `covers` as
/// their sequence number, and updates after `covers` continue from it.
#[derive(Debug)]
pub struct Keyframe {
    /// The last update whose changes it includes.
    pub covers: u64,
    /// The messages.
    pub update: Arc<Update>,
}

/// One whole-screen JPEG, for `/video_feed` and `/snapshot.jpg`.
#[derive(Debug)]
pub struct Whole {
    /// The last update whose changes it includes.
    pub covers: u64,
    /// The cursor drawn into it: shape serial and position, picture pixels.
    pub cursor: Option<(u32, (i32, i32))>,
    /// Its header (a full-screen rectangle).
    pub header: FrameHeader,
    /// The JPEG alone.
    pub jpeg: Bytes,
}

/// What a catch-up covers.
pub(super) enum Area {
    /// Every tile sent in an update after this one.
    Since(u64),
    /// These rectangles (a refresh of what a viewer got lossy).
    Rects(Vec<Rect>),
}

/// A viewer's request: an area of the current picture, at this quality.
pub(super) struct CatchUp {
    pub(super) area: Area,
    pub(super) quality: u8,
    pub(super) reply: oneshot::Sender<Arc<Update>>,
}

/// A `/ws` viewer's subscription. While it lives, the pipeline runs.
pub struct Viewer {
    pub(super) shared: Arc<Shared>,
    pub(super) updates: broadcast::Receiver<Arc<Update>>,
    pub(super) keyframes: watch::Receiver<Option<Arc<Keyframe>>>,
    /// The update this viewer's picture is at; `None`: it needs a keyframe.
    pub(super) at: Option<u64>,
    /// The oldest keyframe this viewer may start from.
    pub(super) min_cover: u64,
    /// Areas this viewer got below the refresh quality in catch-ups, and since when.
    pub(super) lossy: Vec<Rect>,
    pub(super) lossy_since: Option<Instant>,
    /// A catch-up asked for and not yet answered (kept here, so that dropping
    /// [`Viewer::next`] while it waits loses nothing).
    pub(super) pending: Option<Pending>,
}

/// A catch-up on its way.
pub(super) struct Pending {
    answer: oneshot::Receiver<Arc<Update>>,
    quality: u8,
}

/// What waited for a viewer when it was ready again.
enum Waiting {
    /// Exactly the next update.
    Next(Arc<Update>),
    /// Several updates, or a gap: catch up.
    More,
}

impl Viewer {
    /// The next frame to send, at `quality` (the pipeline's own quality or lower): a
    /// keyframe first, then updates in order; when several wait, one catch-up of all
    /// they changed; a keyframe again after a gap. `None` once the pipeline has shut
    /// down. Cancel-safe: nothing is lost if the future is dropped while it waits.
    pub async fn next(&mut self, quality: u8) -> Option<Arc<Update>> {
        // Relayed frames come encoded: every viewer gets them as they are.
        let quality = if self.shared.passthrough {
            self.shared.quality
        } else {
            quality.clamp(1, self.shared.quality)
        };
        loop {
            if let Some(p) = self.pending.as_mut() {
                let answer = (&mut p.answer).await;
                let Some(p) = self.pending.take() else {
                    continue;
                };
                match answer {
                    Ok(u) => {
                        self.at = Some(u.seq);
                        if p.quality < REFRESH_QUALITY && !u.rects.is_empty() {
                            self.lossy.extend_from_slice(&u.rects);
                            self.lossy_since = Some(Instant::now());
                        }
                        return Some(u);
                    }
                    // The pipeline went idle or the encode failed: start over.
                    Err(_) => self.restart(self.shared.latest()),
                }
            }
            let Some(at) = self.at else {
                self.shared.want_keyframe();
                let min = self.min_cover;
                let kf = self
                    .keyframes
                    .wait_for(|k| k.as_ref().is_some_and(|k| k.covers >= min))
                    .await
                    .ok()?
                    .clone()?;
                self.at = Some(kf.covers);
                self.lossy.clear();
                self.lossy_since = None;
                return Some(kf.update.clone());
            };
            let first = match self.lossy_since {
                Some(since) => {
                    let due = tokio::time::Instant::from_std(since + REFRESH_AFTER);
                    match tokio::time::timeout_at(due, self.updates.recv()).await {
                        Ok(r) => r,
                        Err(_) => {
                            // Still for a while after a lossy catch-up: sharpen it.
                            let rects = std::mem::take(&mut self.lossy);
                            self.lossy_since = None;
                            self.catch_up(Area::Rects(rects), REFRESH_QUALITY);
                            continue;
                        }
                    }
                }
                None => self.updates.recv().await,
            };
            let first = match first {
                Ok(u) if u.seq <= at => continue,
                Ok(u) => u,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "viewer fell behind; catching up");
                    self.catch_up(Area::Since(at), quality);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            match self.gather(at, first) {
                Waiting::Next(u) if quality >= self.shared.quality => {
                    self.at = Some(u.seq);
                    return Some(u);
                }
                Waiting::Next(_) | Waiting::More => self.catch_up(Area::Since(at), quality),
            }
        }
    }

    /// Whether `first` is exactly the next update with nothing waiting behind it.
    fn gather(&mut self, at: u64, first: Arc<Update>) -> Waiting {
        let next = first.prev == at || first.key;
        let mut more = false;
        loop {
            match self.updates.try_recv() {
                Ok(u) if u.seq <= at => continue,
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => more = true,
                Err(_) => break,
            }
        }
        if next && !more {
            Waiting::Next(first)
        } else {
            Waiting::More
        }
    }

    /// Asks the pipeline for `area` of the current picture at `quality`; the answer
    /// is awaited at the top of [`Viewer::next`].
    fn catch_up(&mut self, area: Area, quality: u8) {
        let (reply, answer) = oneshot::channel();
        self.shared.lock().catch_ups.push(CatchUp {
            area,
            quality,
            reply,
        });
        self.shared.wake.notify_all();
        self.pending = Some(Pending { answer, quality });
    }

    fn restart(&mut self, min_cover: u64) {
        self.at = None;
        self.min_cover = min_cover;
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.viewers = st.viewers.saturating_sub(1);
    }
}

/// A `/video_feed` or `/snapshot.jpg` reader: whole-screen JPEGs are encoded only
/// while one of these lives.
pub struct WholeViewer {
    pub(super) shared: Arc<Shared>,
    pub(super) whole: watch::Receiver<Option<Arc<Whole>>>,
}

impl WholeViewer {
    /// The next whole-screen JPEG newer than the last one taken; the current one first
    /// if it is up to date. `None` once the pipeline has shut down.
    pub async fn next(&mut self) -> Option<Arc<Whole>> {
        loop {
            self.whole.changed().await.ok()?;
            if let Some(w) = self.whole.borrow_and_update().clone() {
                return Some(w);
            }
        }
    }
}

impl Drop for WholeViewer {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.whole_viewers = st.whole_viewers.saturating_sub(1);
    }
}
