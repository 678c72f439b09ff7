//! `/metrics`: what the server is doing, in the Prometheus text format, through
//! `prometheus-client`. Names start with `deskcast_` and carry their unit.
//!
//! Counters the pipeline keeps anyway ([`Stats`]) are read at scrape time; the rest
//! are counted where they happen (sessions, the gate, input).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::pipeline::{SourceState, Stats};

/// A viewer's kind and role.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViewerLabels {
    /// `ws` or `mjpeg`.
    pub kind: &'static str,
    /// `control` (the control token) or `view`.
    pub role: &'static str,
}

/// Where bytes went.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `ws` or `mjpeg`.
    pub kind: &'static str,
}

/// What became of an input event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InputLabels {
    /// `accepted`, or the error code it was refused with.
    pub outcome: &'static str,
}

/// Everything `/metrics` shows.
pub struct Metrics {
    registry: Registry,
    /// Viewers now.
    pub viewers: Family<ViewerLabels, Gauge>,
    /// Frames (updates) sent to viewers.
    pub frames_sent: Family<KindLabels, Counter>,
    /// Bytes of frames sent.
    pub sent_bytes: Family<KindLabels, Counter>,
    /// How old a frame is when it is sent (capture to send), seconds.
    pub frame_age: Histogram,
    /// The JPEG quality each viewer gets, sampled once a second per viewer.
    pub viewer_quality: Histogram,
    /// Input events, by what became of them.
    pub input: Family<InputLabels, Counter>,
    /// Requests with a wrong token.
    pub auth_failures: Counter,
}

/// The pipeline's own counters and the source's state, read at scrape time.
#[derive(Debug)]
struct PipelineCollector {
    stats: Arc<Stats>,
    source: watch::Receiver<SourceState>,
}

impl Collector for PipelineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters: [(&str, &str, u64); 6] = [
            (
                "frames_captured",
                "Captures made (a still screen makes none).",
                s.captures.load(Ordering::Relaxed),
            ),
            (
                "frames_unchanged",
                "Captures in which nothing really changed (skipped).",
                s.unchanged.load(Ordering::Relaxed),
            ),
            (
                "frames_encoded",
                "Updates published to viewers.",
                s.published.load(Ordering::Relaxed),
            ),
            (
                "keyframes_encoded",
                "Keyframes encoded for viewers who joined or fell behind.",
                s.keyframes.load(Ordering::Relaxed),
            ),
            (
                "whole_frames_encoded",
                "Whole-screen JPEGs encoded for MJPEG readers and snapshots.",
                s.wholes.load(Ordering::Relaxed),
            ),
            (
                "capture_errors",
                "Captures or encodes that failed.",
                s.errors.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let bytes = ConstCounter::new(s.bytes.load(Ordering::Relaxed));
        bytes.encode(encoder.encode_descriptor(
            "encoded",
            "Bytes of all published updates.",
            Some(&Unit::Bytes),
            bytes.metric_type(),
        )?)?;
        let up = ConstGauge::new(i64::from(self.source.borrow().is_up()));
        up.encode(encoder.encode_descriptor(
            "source_up",
            "Whether the source delivers frames (0 while its X server or camera is gone).",
            None,
            up.metric_type(),
        )?)?;
        let running = ConstGauge::new(i64::from(s.running.load(Ordering::Relaxed)));
        running.encode(encoder.encode_descriptor(
            "pipeline_running",
            "Whether the capture loop runs (someone watches).",
            None,
            running.metric_type(),
        )?)?;
        Ok(())
    }
}

impl Metrics {
    /// The metrics of a server whose pipeline keeps `stats` and whose source's state
    /// is `source`.
    pub fn new(stats: Arc<Stats>, source: watch::Receiver<SourceState>) -> Metrics {
        let mut registry = Registry::with_prefix("deskcast");
        let viewers = Family::<ViewerLabels, Gauge>::default();
        registry.register("viewers", "Viewers watching now.", viewers.clone());
        let frames_sent = Family::<KindLabels, Counter>::default();
        registry.register(
            "frames_sent",
            "Frames sent to viewers.",
            frames_sent.clone(),
        );
        let sent_bytes = Family::<KindLabels, Counter>::default();
        registry.register_with_unit(
            "sent",
            "Bytes of frames sent to viewers.",
            Unit::Bytes,
            sent_bytes.clone(),
        );
        let frame_age = Histogram::new(exponential_buckets(0.001, 2.0, 13));
        registry.register_with_unit(
            "frame_age",
            "How old a frame is when it is sent to a viewer (capture to send).",
            Unit::Seconds,
            frame_age.clone(),
        );
        let viewer_quality = Histogram::new([20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]);
        registry.register(
            "viewer_quality",
            "The JPEG quality viewers get, sampled once a second per viewer.",
            viewer_quality.clone(),
        );
        let input = Family::<InputLabels, Counter>::default();
        registry.register("input_events", "Input events, by outcome.", input.clone());
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Requests with a wrong token.",
            auth_failures.clone(),
        );
        registry.register_with_unit(
            "capture",
            "How long one capture takes.",
            Unit::Seconds,
            stats.capture_seconds.clone(),
        );
        registry.register_with_unit(
            "encode",
            "How long one update takes to encode (all its pieces, in parallel).",
            Unit::Seconds,
            stats.encode_seconds.clone(),
        );
        registry.register_collector(Box::new(PipelineCollector { stats, source }));
        Metrics {
            registry,
            viewers,
            frames_sent,
            sent_bytes,
            frame_age,
            viewer_quality,
            input,
            auth_failures,
        }
    }

    /// The text a scrape gets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }

    /// Counts a viewer of `kind` and `role` for as long as the returned guard lives.
    pub fn viewer(&self, kind: &'static str, role: &'static str) -> ViewerGuard {
        let gauge = self
            .viewers
            .get_or_create(&ViewerLabels { kind, role })
            .clone();
        gauge.inc();
        ViewerGuard(gauge)
    }
}

/// One counted viewer; dropping it uncounts it.
pub struct ViewerGuard(Gauge);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The buckets of the capture and encode histograms: 0.5 ms to 4 s.
pub fn timing_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}
