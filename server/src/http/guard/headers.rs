//! The security headers every response leaves with.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The policy for everything that is not a page (streams, images, scripts, text):
/// nothing may load from it, and nothing may frame it.
const CSP_NOT_A_PAGE: &str = "default-src 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of a page served to `host` (`tls`: wss) whose inline
/// scripts have the hashes `scripts`.
fn page_csp(host: Option<&str>, tls: bool, scripts: &str) -> String {
    let ws = match host {
        Some(h) if tls => format!(" wss://{h}"),
        Some(h) => format!(" ws://{h}"),
        None => String::new(),
    };
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
         connect-src 'self'{ws}; img-src 'self' data:; style-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Adds the headers: a CSP (a page's allows its own scripts and socket), no framing,
/// no sniffing, no referrer. `host` is the request's Host if it is one of ours.
pub fn secure(mut response: Response, host: Option<&str>, tls: bool, scripts: &str) -> Response {
    let h = response.headers_mut();
    let page = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if page {
        if let Ok(v) = HeaderValue::from_str(&page_csp(host, tls, scripts)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    } else {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_NOT_A_PAGE),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
