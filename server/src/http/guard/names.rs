//! Which names a request may use to reach this server: the Host it was sent to (DNS
//! rebinding always arrives with the attacker's name), the Origin of a WebSocket, and
//! the fetch metadata that tells another site's page from a navigation.

use std::net::{IpAddr, SocketAddr};

use axum::extract::Request;
use axum::http::{header, HeaderMap};

use crate::config::Config;

/// The names this server answers to.
pub struct Names {
    allow_origins: Vec<String>,
    allow_hosts: Vec<String>,
    bind: IpAddr,
    port: u16,
    tls: bool,
}

/// What is wrong with the Host of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum BadHost {
    /// None at all.
    Missing,
    /// More than one `Host` header (RFC 9112 §3.2: answer 400).
    Repeated,
    /// A name this server does not answer to.
    Foreign(String),
}

impl Names {
    /// The names of a server listening on `local` (`tls`: https) with `config`.
    pub fn new(config: &Config, local: SocketAddr, tls: bool) -> Self {
        Names {
            allow_origins: config.allow_origins.clone(),
            allow_hosts: config.allow_hosts.clone(),
            bind: local.ip(),
            port: local.port(),
            tls,
        }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// Whether a Host value names this server: localhost or a loopback address, the
    /// bound address (any address when bound to all), each with our port; or an
    /// `--allow-host` entry.
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

    /// The Host a request was sent to, if it is one of ours.
    pub fn host(&self, req: &Request) -> Result<String, BadHost> {
        let hosts = req.headers().get_all(header::HOST);
        if hosts.iter().nth(1).is_some() {
            return Err(BadHost::Repeated);
        }
        // HTTP/2 carries it as the URI authority; HTTP/1.1 as the header.
        let host = match req.uri().authority() {
            Some(a) => a.as_str().to_string(),
            None => hosts
                .iter()
                .next()
                .and_then(|h| h.to_str().ok())
                .ok_or(BadHost::Missing)?
                .to_string(),
        };
        if self.host_ok(&host) {
            Ok(host)
        } else {
            Err(BadHost::Foreign(host))
        }
    }

    /// Whether a WebSocket `Origin` may connect: our own origin (as the browser reached
    /// us, per Host) or an `--allow-origin` entry.
    pub fn origin_ok(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let own = format!("{}://{}", self.scheme(), host.to_ascii_lowercase());
        origin == own || self.allow_origins.contains(&origin)
    }
}

/// Whether fetch metadata says another site's page embeds or fetches this request.
/// Another site may link here (a top-level navigation), but not embed or fetch
/// anything, so it can neither read a response nor spend a user's failures.
pub fn foreign_fetch(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let foreign = matches!(get("sec-fetch-site"), Some("cross-site" | "same-site"));
    let navigation =
        get("sec-fetch-mode") == Some("navigate") && get("sec-fetch-dest") == Some("document");
    foreign && !navigation
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bind: [u8; 4], port: u16) -> Names {
        let mut c = Config::pattern(16, 16).with_tokens("c", "v");
        c.allow_hosts = vec!["desk.example.org".into(), "proxy.example.org:443".into()];
        c.allow_origins = vec!["https://desk.example.org".into()];
        Names::new(&c, SocketAddr::from((bind, port)), false)
    }

    #[test]
    fn hosts() {
        let g = names([127, 0, 0, 1], 8080);
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
        let all = names([0, 0, 0, 0], 8080);
        assert!(all.host_ok("192.0.2.7:8080"), "bound to all: any address");
        assert!(!all.host_ok("evil.example:8080"));
    }

    #[test]
    fn a_repeated_host_is_refused() {
        let g = names([127, 0, 0, 1], 8080);
        let req = |hosts: &[&str]| {
            let mut b = Request::builder().uri("/");
            for h in hosts {
                b = b.header(header::HOST, *h);
            }
            b.body(axum::body::Body::empty()).expect("request")
        };
        assert_eq!(
            g.host(&req(&["127.0.0.1:8080"])),
            Ok("127.0.0.1:8080".into())
        );
        assert_eq!(
            g.host(&req(&["127.0.0.1:8080", "evil.example"])),
            Err(BadHost::Repeated)
        );
        assert_eq!(g.host(&req(&[])), Err(BadHost::Missing));
        assert_eq!(
            g.host(&req(&["evil.example"])),
            Err(BadHost::Foreign("evil.example".into()))
        );
    }

    #[test]
    fn origins() {
        let g = names([127, 0, 0, 1], 8080);
        assert!(g.origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(g.origin_ok("https://desk.example.org", "127.0.0.1:8080"));
        assert!(!g.origin_ok("https://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!g.origin_ok("http://evil.example", "127.0.0.1:8080"));
        assert!(!g.origin_ok("null", "127.0.0.1:8080"));
    }
}
