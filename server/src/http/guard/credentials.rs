//! Where a request presents who it is: a token in `?token=` or `Authorization:
//! Bearer`, or a session id in the cookie; and the cookie itself.

use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::sessions::ABSOLUTE;

/// The token in a query string, if any.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The session cookie of one server.
pub struct Cookie {
    name: String,
    tls: bool,
}

impl Cookie {
    /// The cookie of the server on `port`. Cookies are not kept apart by port, their
    /// names are, so two servers on one host keep theirs apart. Under TLS the name has
    /// the `__Host-` prefix: the browser then only takes it from a secure origin, for
    /// the whole host, never set by a sibling domain.
    pub fn new(port: u16, tls: bool) -> Self {
        let prefix = if tls { "__Host-" } else { "" };
        Cookie {
            name: format!("{prefix}deskcast_session_{port}"),
            tls,
        }
    }

    /// Every value sent under our name. Another server on the same host may have
    /// planted one with a narrower path, which the browser sends first: all are tried.
    pub fn values<'a>(&'a self, headers: &'a HeaderMap) -> impl Iterator<Item = &'a str> + 'a {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(move |pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == self.name).then_some(v)
            })
    }

    /// `Set-Cookie` for session `id`.
    pub fn set(&self, id: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            self.name,
            ABSOLUTE.as_secs()
        )
    }

    /// `Set-Cookie` that removes ours.
    pub fn clear(&self) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}",
            self.name
        )
    }
}

/// The page a `?token=` link answers with (beside the cookie): a reload without the
/// token, so the token leaves the address bar with no script, and the reload is
/// same-site, so the SameSite=Strict cookie goes with it even when the first link came
/// from another site.
pub fn exchange_page(path: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={path}\">\
         <title>deskcast</title></head>\n<body><p>Signed in. \
         <a href=\"{path}\">Continue</a>.</p></body></html>\n"
    );
    Html(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_in_query_and_header_and_every_cookie() {
        assert_eq!(query_token(Some("a=1&token=xyz&b=2")), Some("xyz"));
        assert_eq!(query_token(Some("tokens=xyz")), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=1; deskcast_session_8080=planted"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("deskcast_session_8080=mine"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        let ours = Cookie::new(8080, false);
        assert_eq!(ours.values(&h).collect::<Vec<_>>(), ["planted", "mine"]);
        assert_eq!(Cookie::new(8081, false).values(&h).count(), 0);
        let tls = Cookie::new(8443, true);
        assert!(tls
            .set("id")
            .starts_with("__Host-deskcast_session_8443=id; Path=/;"));
        assert!(tls.set("id").ends_with("; Secure"));
        assert!(!ours.set("id").contains("Secure"));
    }
}
