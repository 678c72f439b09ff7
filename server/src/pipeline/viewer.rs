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
//! its socket to drain) finds several updates waiting. It does not send them one by
//! one: their rectangles merge into one dirty area, which the pipeline encodes for it
//! alone from the current picture (a catch-up), at the viewer's own quality. So what a
//! slow viewer gets next is always the newest picture, never a backlog.

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
    /// Its header (a full-screen rectangle).
    pub header: FrameHeader,
    /// The JPEG alone.
    pub jpeg: Bytes,
}

/// A viewer's request: these areas, from the current picture, at this quality.
pub(super) struct CatchUp {
    pub(super) rects: Vec<Rect>,
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
    rects: Vec<Rect>,
    quality: u8,
}

/// What waited for a viewer when it was ready again.
enum Waiting {
    /// Exactly the next update.
    Next(Arc<Update>),
    /// Several updates in a row: the areas they changed.
    Merged(Vec<Rect>),
    /// A gap: start over from a keyframe newer than this.
    Gap(u64),
}

impl Viewer {
    /// The next frame to send, at `quality` (the pipeline's own quality or lower): a
    /// keyframe first, then updates in order; when several wait, one catch-up of all
    /// they changed; a keyframe again after a gap. `None` once the pipeline has shut
    /// down. Cancel-safe: nothing is lost if the future is dropped while it waits.
    pub async fn next(&mut self, quality: u8) -> Option<Arc<Update>> {
        let quality = quality.clamp(1, self.shared.quality);
        loop {
            if let Some(p) = self.pending.as_mut() {
                let answer = (&mut p.answer).await;
                let Some(p) = self.pending.take() else {
                    continue;
                };
                match answer {
                    Ok(u) => {
                        self.at = Some(u.seq);
                        if p.quality < REFRESH_QUALITY {
                            self.lossy.extend(p.rects);
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
                            self.catch_up(rects, REFRESH_QUALITY);
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
                    tracing::debug!(missed = n, "viewer fell behind; asking for a keyframe");
                    self.restart(self.shared.latest());
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            match self.gather(at, first) {
                Waiting::Next(u) if quality >= self.shared.quality => {
                    self.at = Some(u.seq);
                    return Some(u);
                }
                Waiting::Next(u) => self.catch_up(u.rects.clone(), quality),
                Waiting::Merged(rects) => self.catch_up(rects, quality),
                Waiting::Gap(next) => {
                    tracing::debug!(at, next, "gap; asking for a keyframe");
                    self.restart(next);
                }
            }
        }
    }

    /// `first` and every update already waiting behind it, checked for gaps.
    fn gather(&mut self, at: u64, first: Arc<Update>) -> Waiting {
        let mut prev = at;
        let mut rects = Vec::new();
        let mut count = 0;
        let mut last = None;
        let mut next = Some(first);
        while let Some(u) = next.take() {
            if u.seq > prev {
                if u.prev != prev && !u.key {
                    return Waiting::Gap(u.seq);
                }
                prev = u.seq;
                count += 1;
                rects.extend_from_slice(&u.rects);
                last = Some(u);
            }
            next = match self.updates.try_recv() {
                Ok(u) => Some(u),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    return Waiting::Gap(self.shared.latest());
                }
                Err(_) => None,
            };
        }
        match (count, last) {
            (1, Some(u)) => Waiting::Next(u),
            _ => Waiting::Merged(rects),
        }
    }

    /// Asks the pipeline for `rects` of the current picture at `quality`; the answer
    /// is awaited at the top of [`Viewer::next`].
    fn catch_up(&mut self, rects: Vec<Rect>, quality: u8) {
        let (reply, answer) = oneshot::channel();
        self.shared.lock().catch_ups.push(CatchUp {
            rects: rects.clone(),
            quality,
            reply,
        });
        self.shared.wake.notify_all();
        self.pending = Some(Pending {
            answer,
            rects,
            quality,
        });
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
