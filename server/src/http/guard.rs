//! The gate every request passes: Host (DNS rebinding), fetch metadata, Origin for
//! `/ws`, the failure lockout, and the token; then the security headers on the way out.
//!
//! A token is taken from `?token=`, `Authorization: Bearer`, or the HttpOnly cookie.
//! Opening a page (`/`, `/mjpeg`) with `?token=` answers with the cookie and a
//! `<meta refresh>` to the same page without the token, so the token leaves the address
//! bar with no script, and the reload is same-site, so the SameSite=Strict cookie goes
//! with it even when the first link came from another site.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use deskcast_shared::{Role, WS_PATH};

use super::conn::Conn;
use crate::auth::{role_for, Failures};
use crate::config::{Config, Tokens};

/// The role a request was let in with; handlers read it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(pub Role);

/// Pages whose `?token=` is exchanged for the cookie.
const PAGES: [&str; 2] = ["/", "/mjpeg"];

/// What the gate checks against; one per server.
pub struct Guard {
    tokens: Option<Tokens>,
    failures: Failures,
    allow_origins: Vec<String>,
    allow_hosts: Vec<String>,
    bind: IpAddr,
    port: u16,
    tls: bool,
    cookie: String,
    csp_scripts: String,
}

impl Guard {
    /// The gate for a server listening on `local` (`tls`: https) with `config`.
    pub fn new(config: &Config, local: SocketAddr, tls: bool, csp_scripts: &str) -> Self {
        Guard {
            tokens: config.auth.clone(),
            failures: Failures::default(),
            allow_origins: config.allow_origins.clone(),
            allow_hosts: config.allow_hosts.clone(),
            bind: local.ip(),
            port: local.port(),
            tls,
            // Cookies are not kept apart by port; the name is, so two servers on one
            // host do not overwrite each other's.
            cookie: format!("deskcast_token_{}", local.port()),
            csp_scripts: csp_scripts.to_string(),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// Whether a Host value names this server: localhost or a loopback address, the
    /// bound address (any address when bound to all), each with our port; or an
    /// `--allow-host` entry. DNS rebinding always arrives with the attacker's name.
    pub fn host_ok(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let default_port = if self.tls { 443 } else { 80 };
        let allowed = self
            .allow_hosts
            .iter()
            .any(|entry| match split_host(entry) {
                Some((n, Some(p))) => n == name && port.unwrap_or(default_port) == p,
                Some((n, None)) => n == name,
                None => false,
            });
        if allowed {
            return true;
        }
        if port.unwrap_or(default_port) != self.port {
            return false;
        }
        if name == "localhost" {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bind || self.bind.is_unspecified(),
            Err(_) => false,
        }
    }

    /// Whether a WebSocket `Origin` may connect: our own origin (as the browser reached
    /// us, per Host) or an `--allow-origin` entry.
    fn origin_ok(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let own = format!("{}://{}", self.scheme(), host.to_ascii_lowercase());
        origin == own || self.allow_origins.contains(&origin)
    }

    /// The Content-Security-Policy for a response to a request for `host`.
    fn csp(&self, host: Option<&str>) -> String {
        let ws = match host {
            Some(h) if self.tls => format!(" wss://{h}"),
            Some(h) => format!(" ws://{h}"),
            None => String::new(),
        };
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
             connect-src 'self'{ws}; img-src 'self' data:; style-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            scripts = self.csp_scripts
        )
    }

    fn set_cookie(&self, token: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie
        )
    }

    fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
            self.cookie
        )
    }
}

/// Splits `name[:port]` / `[v6][:port]`; `None` if the port is not a number.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((name, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((name, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        Some((name, p)) if !name.contains(':') => Some((name, Some(p.parse().ok()?))),
        Some(_) => Some((host, None)), // a bare IPv6 address
        None if host.is_empty() => None,
        None => Some((host, None)),
    }
}

/// The Host a request was sent to: the URI authority (HTTP/2) or the Host header.
fn request_host(req: &Request) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str().to_string());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

/// Where a request presented a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Query,
    Header,
    Cookie,
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// The page a `?token=` link answers with: the cookie, and a reload without the token.
fn exchange_page(path: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={path}\">\
         <title>deskcast</title></head>\n<body><p>Signed in. \
         <a href=\"{path}\">Continue</a>.</p></body></html>\n"
    );
    Html(body).into_response()
}

/// The middleware: refuses what it must, else passes the request on with its [`Access`]
/// (and `ConnectInfo<SocketAddr>`), and marks its connection authenticated.
pub async fn check(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    mut req: Request,
    next: Next,
) -> Response {
    let host = request_host(&req);
    let answered = gate(&guard, conn.peer, host.as_deref(), &mut req);
    if req.extensions().get::<Access>().is_some() {
        conn.pass();
    }
    let response = match answered {
        Some(r) => r,
        None => {
            req.extensions_mut().insert(ConnectInfo(conn.peer));
            next.run(req).await
        }
    };
    with_headers(&guard, host.as_deref(), response)
}

fn gate(
    guard: &Guard,
    peer: SocketAddr,
    host: Option<&str>,
    req: &mut Request,
) -> Option<Response> {
    let Some(host) = host.filter(|h| guard.host_ok(h)) else {
        tracing::warn!(%peer, host = ?host, "refused: foreign Host");
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "forbidden; this server does not answer to that Host name (add it with --allow-host)",
        ));
    };
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return None;
    }
    let headers = req.headers();
    if path == WS_PATH {
        // Browsers always send Origin on a WebSocket handshake; a client without one is
        // not a browser, so no page can be riding on it. It still needs a token.
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| guard.origin_ok(o, host));
            if !ok {
                tracing::warn!(%peer, ?origin, "refused: foreign Origin");
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    "forbidden; WebSocket from a foreign origin (add it with --allow-origin)",
                ));
            }
        }
    } else {
        // Fetch metadata: another site's page may link here (a top-level navigation),
        // but not embed or fetch anything, so it cannot count failures against you.
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let foreign = matches!(get("sec-fetch-site"), Some("cross-site" | "same-site"));
        let navigation =
            get("sec-fetch-mode") == Some("navigate") && get("sec-fetch-dest") == Some("document");
        if foreign && !navigation {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "forbidden; other sites may not embed or fetch from this server",
            ));
        }
    }
    let Some(tokens) = &guard.tokens else {
        req.extensions_mut().insert(Access(Role::Control));
        return None;
    };
    let now = Instant::now();
    if let Some(secs) = guard.failures.locked(peer.ip(), now) {
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many wrong tokens from your address; try again in {secs} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(r);
    }
    let presented = [
        (Via::Query, query_token(req.uri().query())),
        (Via::Header, bearer_token(headers)),
        (Via::Cookie, cookie_token(headers, &guard.cookie)),
    ];
    let found = presented
        .iter()
        .filter_map(|(via, t)| Some((*via, (*t)?)))
        .find_map(|(via, t)| role_for(tokens, t).map(|role| (via, t, role)));
    match found {
        Some((Via::Query, token, role))
            if req.method() == Method::GET && PAGES.contains(&&*path) =>
        {
            let mut r = exchange_page(&path);
            let cookie = guard.set_cookie(token);
            req.extensions_mut().insert(Access(role));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            Some(r)
        }
        Some((_, _, role)) => {
            req.extensions_mut().insert(Access(role));
            None
        }
        None => {
            let any = presented.iter().any(|(_, t)| t.is_some());
            let mut r = refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized; open the URL with ?token=… that deskcast printed at start, \
                 or send Authorization: Bearer <token>",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"deskcast\""),
            );
            if any {
                guard.failures.fail(peer.ip(), now);
                tracing::warn!(%peer, path, "refused: wrong token");
            }
            if presented[2].1.is_some() {
                // A stale cookie (from an earlier run) is cleared, so a tab left open
                // does not keep failing and lock its address out.
                if let Ok(v) = HeaderValue::from_str(&guard.clear_cookie()) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            Some(r)
        }
    }
}

/// The policy for everything that is not a page (streams, images, scripts, text):
/// nothing may load from it, and nothing may frame it.
const CSP_NOT_A_PAGE: &str = "default-src 'none'; frame-ancestors 'none'";

fn with_headers(guard: &Guard, host: Option<&str>, mut response: Response) -> Response {
    let h = response.headers_mut();
    let page = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if page {
        let safe_host = host.filter(|h| guard.host_ok(h));
        if let Ok(v) = HeaderValue::from_str(&guard.csp(safe_host)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bind: [u8; 4], port: u16) -> Guard {
        let mut c = Config::pattern(16, 16).with_tokens("c", "v");
        c.allow_hosts = vec!["desk.example.org".into(), "proxy.example.org:443".into()];
        c.allow_origins = vec!["https://desk.example.org".into()];
        Guard::new(&c, SocketAddr::from((bind, port)), false, "")
    }

    #[test]
    fn hosts() {
        let g = guard([127, 0, 0, 1], 8080);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "desk.example.org",
            "desk.example.org:1234",
            "proxy.example.org:443",
        ] {
            assert!(g.host_ok(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:8081",
            "localhost",
            "192.0.2.7:8080",
            "proxy.example.org:80",
            "",
            "localhost:x",
        ] {
            assert!(!g.host_ok(bad), "{bad}");
        }
        let all = guard([0, 0, 0, 0], 8080);
        assert!(all.host_ok("192.0.2.7:8080"), "bound to all: any address");
        assert!(!all.host_ok("evil.example:8080"));
    }

    #[test]
    fn origins() {
        let g = guard([127, 0, 0, 1], 8080);
        assert!(g.origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(g.origin_ok("https://desk.example.org", "127.0.0.1:8080"));
        assert!(!g.origin_ok("https://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!g.origin_ok("http://evil.example", "127.0.0.1:8080"));
        assert!(!g.origin_ok("null", "127.0.0.1:8080"));
    }

    #[test]
    fn tokens_in_query_header_and_cookie() {
        assert_eq!(query_token(Some("a=1&token=xyz&b=2")), Some("xyz"));
        assert_eq!(query_token(Some("tokens=xyz")), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; deskcast_token_8080=def"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        assert_eq!(cookie_token(&h, "deskcast_token_8080"), Some("def"));
        assert_eq!(cookie_token(&h, "deskcast_token_8081"), None);
    }
}
