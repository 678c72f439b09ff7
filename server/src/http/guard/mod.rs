//! The gate every request passes, in this order: one Host of ours ([`names`]: DNS
//! rebinding), fetch metadata and, for `/ws`, the Origin; then who it is
//! ([`credentials`]: a token or a session); then the security headers on the way out
//! ([`headers`]).
//!
//! Opening a page (`/`, `/mjpeg`) with `?token=` answers with a session cookie and a
//! `<meta refresh>` to the same page without the token. `DELETE /session` ends the
//! sessions a request's cookies name ("sign out"). A wrong token is answered later the
//! more wrong tokens its address sent ([`crate::auth::lockout`]); a right credential is
//! never refused or held back.

mod credentials;
mod headers;
mod names;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deskcast_shared::{Role, WS_PATH};

use super::conn::Conn;
use crate::auth::{Penalties, Sessions, Tokens};
use crate::config::Config;
use credentials::{bearer_token, exchange_page, query_token, Cookie};
use names::{foreign_fetch, BadHost, Names};

/// The role a request was let in with; handlers read it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(pub Role);

/// For a request let in by a session cookie: fails `changed()` once that session ends
/// (sign-out), so a WebSocket opened with it closes then.
#[derive(Debug, Clone)]
pub struct SessionEnd(pub tokio::sync::watch::Receiver<()>);

/// Pages whose `?token=` is exchanged for a session cookie.
const PAGES: [&str; 2] = ["/", "/mjpeg"];

/// Where `DELETE` ends the request's sessions.
pub const SESSION_PATH: &str = "/session";

/// What the gate checks against; one per server.
pub struct Guard {
    tokens: Option<Tokens>,
    sessions: Sessions,
    penalties: Penalties,
    names: Names,
    cookie: Cookie,
    tls: bool,
    csp_scripts: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// What the gate decided about a request.
enum Outcome {
    /// Pass it on, with this role (`None`: a route that needs none), and the end of the
    /// session it came with, if a cookie let it in.
    Pass(Option<Role>, Option<SessionEnd>),
    /// Answer it here; a role if it authenticated.
    Answer(Response, Option<Role>),
    /// A wrong token: answer this, after the delay its address has earned.
    Refuse(Response, Duration),
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

impl Guard {
    /// The gate for a server listening on `local` (`tls`: https) with `config`.
    pub fn new(config: &Config, local: SocketAddr, tls: bool, csp_scripts: &str) -> Self {
        Guard {
            tokens: config.auth.clone(),
            sessions: Sessions::default(),
            penalties: Penalties::default(),
            names: Names::new(config, local, tls),
            cookie: Cookie::new(local.port(), tls),
            tls,
            csp_scripts: csp_scripts.to_string(),
            metrics: None,
        }
    }

    /// Counts wrong tokens in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn gate(&self, peer: SocketAddr, host: &str, req: &Request) -> Outcome {
        let path = req.uri().path();
        if path == "/healthz" {
            return Outcome::Pass(None, None);
        }
        let headers = req.headers();
        if path == WS_PATH {
            // Browsers always send Origin on a WebSocket handshake; a client without one
            // is not a browser, so no page can be riding on it. It still needs a token.
            if let Some(origin) = headers.get(header::ORIGIN) {
                if !origin.to_str().is_ok_and(|o| self.names.origin_ok(o, host)) {
                    tracing::warn!(%peer, ?origin, "refused: foreign Origin");
                    return Outcome::Answer(
                        text(
                            StatusCode::FORBIDDEN,
                            "forbidden; WebSocket from a foreign origin (add it with --allow-origin)",
                        ),
                        None,
                    );
                }
            }
        } else if foreign_fetch(headers) {
            return Outcome::Answer(
                text(
                    StatusCode::FORBIDDEN,
                    "forbidden; other sites may not embed or fetch from this server",
                ),
                None,
            );
        }
        if path == SESSION_PATH && req.method() == Method::DELETE {
            return Outcome::Answer(self.sign_out(headers), None);
        }
        let Some(tokens) = &self.tokens else {
            return Outcome::Pass(Some(Role::Control), None);
        };
        let now = Instant::now();
        let session = self
            .cookie
            .values(headers)
            .find_map(|id| self.sessions.check(id, now).map(|role| (id, role)));
        let query = query_token(req.uri().query());
        let bearer = bearer_token(headers);
        let by_token = |t: Option<&str>| t.and_then(|t| tokens.role_for(t));
        if let Some(role) = by_token(query) {
            if req.method() == Method::GET && PAGES.contains(&path) {
                return Outcome::Answer(self.sign_in(path, role, now), Some(role));
            }
            return Outcome::Pass(Some(role), None);
        }
        if let Some(role) = by_token(bearer) {
            return Outcome::Pass(Some(role), None);
        }
        if let Some((id, role)) = session {
            let end = self.sessions.end_of(id).map(SessionEnd);
            return Outcome::Pass(Some(role), end);
        }
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "unauthorized; open the URL with ?token=… that deskcast printed at start, \
             or send Authorization: Bearer <token>",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"deskcast\""),
        );
        if self.cookie.values(headers).next().is_some() {
            // A session that ended (an earlier run, signed out, expired) is cleared, so
            // a tab left open stops sending it.
            r = with_cookie(r, &self.cookie.clear());
        }
        if query.is_some() || bearer.is_some() {
            tracing::warn!(%peer, path, "refused: wrong token");
            if let Some(m) = &self.metrics {
                m.auth_failures.inc();
            }
            return Outcome::Refuse(r, self.penalties.fail(peer.ip(), now));
        }
        // A session id is 128 random bits: guessing one is hopeless, so an unknown one
        // costs nothing (and a cookie planted by another server costs its victim nothing).
        Outcome::Answer(r, None)
    }

    /// The answer to a page opened with a valid `?token=`: a new session in the cookie.
    fn sign_in(&self, path: &str, role: Role, now: Instant) -> Response {
        match self.sessions.create(role, now) {
            Ok(id) => with_cookie(exchange_page(path), &self.cookie.set(&id)),
            Err(e) => {
                tracing::error!(cause = %e, "cannot make a session");
                text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
            }
        }
    }

    /// `DELETE /session`: ends every session the request's cookies name.
    fn sign_out(&self, headers: &axum::http::HeaderMap) -> Response {
        let ended = self
            .cookie
            .values(headers)
            .filter(|id| self.sessions.revoke(id))
            .count();
        tracing::info!(ended, "signed out");
        with_cookie(StatusCode::NO_CONTENT.into_response(), &self.cookie.clear())
    }
}

/// The middleware: refuses what it must, else passes the request on with its [`Access`]
/// (and `ConnectInfo<SocketAddr>`), and marks its connection authenticated.
pub async fn check(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = conn.peer;
    let host = match guard.names.host(&req) {
        Ok(host) => host,
        Err(BadHost::Repeated) => {
            tracing::warn!(%peer, "refused: more than one Host");
            let r = text(
                StatusCode::BAD_REQUEST,
                "bad request; more than one Host header",
            );
            return guard.secure(r, None);
        }
        Err(bad) => {
            tracing::warn!(%peer, host = ?bad, "refused: foreign Host");
            let r = text(
                StatusCode::FORBIDDEN,
                "forbidden; this server does not answer to that Host name (add it with --allow-host)",
            );
            return guard.secure(r, None);
        }
    };
    let response = match guard.gate(peer, &host, &req) {
        Outcome::Pass(role, end) => {
            if let Some(role) = role {
                conn.pass();
                req.extensions_mut().insert(Access(role));
            }
            if let Some(end) = end {
                req.extensions_mut().insert(end);
            }
            req.extensions_mut().insert(ConnectInfo(peer));
            next.run(req).await
        }
        Outcome::Answer(r, role) => {
            if role.is_some() {
                conn.pass();
            }
            r
        }
        Outcome::Refuse(r, delay) => {
            tokio::time::sleep(delay).await;
            r
        }
    };
    guard.secure(response, Some(&host))
}

impl Guard {
    fn secure(&self, response: Response, host: Option<&str>) -> Response {
        headers::secure(response, host, self.tls, &self.csp_scripts)
    }
}
