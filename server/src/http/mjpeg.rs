//! The classic routes: `/video_feed` (multipart/x-mixed-replace), `/mjpeg`, `/snapshot.jpg`.
//!
//! Browsers show a part of `multipart/x-mixed-replace` only once the next part has
//! begun (Chromium: crbug 527446), so each JPEG is followed at once by the boundary and
//! the headers of the part after it ("advance headers", as ustreamer does): a change
//! shows when its frame arrives, not when the next one does, seconds later on a still
//! screen. The first part has a `Content-Length`; the later ones end at their boundary.
//! Whole-screen JPEGs are encoded only while someone reads, and a slow reader takes
//! the newest frame when its socket drains (nothing queues).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;

use deskcast_shared::Role;

use super::AppState;

/// How long a still screen goes before the last frame is sent again.
const KEEPALIVE: Duration = Duration::from_secs(2);

/// The multipart boundary.
const BOUNDARY: &str = "frame";

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deskcast (view only)</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/mjpeg.css"></head>
<body>
<img src="/video_feed" alt="live screen">
</body></html>
"#;

/// The page's style, served as a file so the CSP needs no inline styles.
const STYLE: &str = "body{margin:0;background:#000;height:100vh}\n\
img{display:block;width:100%;height:100%;object-fit:contain}\n";

/// `GET /mjpeg`: a page that needs no script at all.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /mjpeg.css`: the style of [`page`].
pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// The boundary and headers of the part that comes next, sent right after a JPEG.
const NEXT_PART: &str = "\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n";

fn part(jpeg: &Bytes, first: bool) -> Bytes {
    let mut b = BytesMut::with_capacity(jpeg.len() + 128);
    if first {
        b.put_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )
            .as_bytes(),
        );
    }
    b.put_slice(jpeg);
    b.put_slice(NEXT_PART.as_bytes());
    b.freeze()
}

/// `GET /video_feed`: one JPEG per part, newest frame only. Takes a viewer seat.
pub async fn video_feed(
    State(app): State<AppState>,
    axum::Extension(super::guard::Access(role)): axum::Extension<super::guard::Access>,
) -> Response {
    let Some(seat) = app.viewers.try_take(Role::View) else {
        return super::too_many_viewers();
    };
    let viewer = app.pipeline.subscribe_whole();
    let state = (viewer, None::<Bytes>, true);
    let frames = futures_util::stream::unfold(state, |(mut viewer, last, first)| async move {
        // On a still screen no new frame comes; repeat the last one now and then, so a
        // client that went away is noticed (the write fails) and frees its seat and the
        // pipeline, and so proxies do not time the stream out.
        let jpeg = match (tokio::time::timeout(KEEPALIVE, viewer.next()).await, last) {
            (Ok(frame), _) => frame?.jpeg.clone(),
            (Err(_), Some(last)) => last,
            (Err(_), None) => viewer.next().await?.jpeg.clone(),
        };
        let out = part(&jpeg, first);
        Some((Ok::<_, Infallible>(out), (viewer, Some(jpeg), false)))
    });
    // The seat (and the viewer count) go with the stream: freed when the body is dropped.
    let counted = app.metrics.viewer(
        "mjpeg",
        if role == Role::Control {
            "control"
        } else {
            "view"
        },
    );
    let metrics = app.metrics.clone();
    let frames = frames.map(move |part| {
        let _ = (&seat, &counted);
        if let Ok(bytes) = &part {
            let mjpeg = crate::metrics::KindLabels { kind: "mjpeg" };
            metrics.frames_sent.get_or_create(&mjpeg).inc();
            metrics
                .sent_bytes
                .get_or_create(&mjpeg)
                .inc_by(bytes.len() as u64);
        }
        part
    });
    let stop = app.clone();
    let frames = frames.take_until(async move { stop.stopped().await });
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(frames))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /snapshot.jpg`: the current frame.
pub async fn snapshot(State(app): State<AppState>) -> Response {
    let mut viewer = app.pipeline.subscribe_whole();
    match tokio::time::timeout(Duration::from_secs(5), viewer.next()).await {
        Ok(Some(frame)) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            frame.jpeg.clone(),
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no frame available; capture keeps failing, see the server log\n",
        )
            .into_response(),
    }
}
