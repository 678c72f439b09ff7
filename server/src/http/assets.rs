//! The browser client, embedded in the binary at build time (see `build.rs`).
//!
//! Only paths in the embedded table are served; no file system path is ever read.

use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deskcast</title></head>
<body>
<h1>deskcast</h1>
<p>The browser client is not built into this server. Build and start everything with
<code>cargo xtask run</code>.</p>
<p>Meanwhile the view-only stream works: <a href="/mjpeg">/mjpeg</a>.</p>
</body></html>
"#;

fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, bytes)| (*ct, *bytes))
}

fn serve(content_type: &'static str, bytes: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

/// `GET /`: the client's index.html, or instructions when it was not built.
pub async fn index() -> Response {
    match lookup("index.html") {
        Some((ct, bytes)) => serve(ct, bytes),
        None => Html(NOT_BUILT).into_response(),
    }
}

/// `GET /favicon.ico`: no icon (the pages declare none either), and no 404 for it.
pub async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Any other path: an embedded asset, or 404.
pub async fn file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match lookup(path) {
        Some((ct, bytes)) if path != "index.html" => serve(ct, bytes),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
