//! What the pipeline publishes, and how a viewer follows it without ever drawing a
//! stale tile.
//!
//! Region updates depend on the picture before them, so a viewer must get every
//! update, or a keyframe and every update after it. Updates go out through a bounded
//! `broadcast` ring (shared bytes, one encode for all viewers); each names the update
//! before it. A viewer that joins, falls behind the ring, or finds a gap asks for a
//! keyframe and carries on from there: a slow viewer skips to a newer picture instead
//! of queueing, and never slows the others.

use std::sync::Arc;

use bytes::Bytes;
use deskcast_shared::FrameHeader;
use tokio::sync::{broadcast, watch};

use super::Shared;

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

/// A `/ws` viewer's subscription. While it lives, the pipeline runs.
pub struct Viewer {
    pub(super) shared: Arc<Shared>,
    pub(super) updates: broadcast::Receiver<Arc<Update>>,
    pub(super) keyframes: watch::Receiver<Option<Arc<Keyframe>>>,
    /// The update this viewer's picture is at; `None`: it needs a keyframe.
    pub(super) at: Option<u64>,
    /// The oldest keyframe this viewer may start from.
    pub(super) min_cover: u64,
}

impl Viewer {
    /// The next frame to send: a keyframe first, then updates in order, a keyframe
    /// again after a gap. `None` once the pipeline has shut down. Cancel-safe.
    pub async fn next(&mut self) -> Option<Arc<Update>> {
        loop {
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
                return Some(kf.update.clone());
            };
            match self.updates.recv().await {
                Ok(u) if u.seq <= at => continue,
                Ok(u) if u.prev == at || u.key => {
                    self.at = Some(u.seq);
                    return Some(u);
                }
                Ok(u) => {
                    // A gap (an update that failed to encode, or a keyframe older
                    // than the ring): start over from a newer picture.
                    tracing::debug!(
                        at,
                        next = u.seq,
                        prev = u.prev,
                        "gap; asking for a keyframe"
                    );
                    self.restart(u.seq);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "viewer fell behind; asking for a keyframe");
                    self.restart(self.shared.latest());
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
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
