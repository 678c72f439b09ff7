//! IP cameras: MJPEG over HTTP(S), `multipart/x-mixed-replace` (nearly every IP camera,
//! ustreamer, mjpg-streamer), or a URL that answers one `image/jpeg` per request.
//!
//! A small blocking client on purpose: one GET, then parts read for as long as the
//! stream lasts, with a read timeout so a camera that stops answering counts as gone.
//! `user:password@` in the URL becomes Basic authentication. HTTPS checks the
//! certificate against the system's roots.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::{Device, Frame, ReadError};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A camera silent this long is taken for gone.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The response head, at most.
const MAX_HEAD: usize = 16 * 1024;
/// One part, at most (a 4K JPEG is a few MB).
const MAX_PART: usize = 16 * 1024 * 1024;

/// The parts of a camera URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraUrl {
    tls: bool,
    host: String,
    port: u16,
    path: String,
    auth: Option<String>,
}

impl CameraUrl {
    /// Parses `http(s)://[user:password@]host[:port][/path]`.
    pub fn parse(url: &str) -> Result<CameraUrl, String> {
        let bad = || format!("{url:?} is not an http:// or https:// URL");
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (auth, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, h)) => (
                Some(base64::engine::general_purpose::STANDARD.encode(userinfo)),
                h,
            ),
            None => (None, authority),
        };
        let default = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None => default,
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (hostport.to_string(), default),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(CameraUrl {
            tls,
            host,
            port,
            path,
            auth,
        })
    }

    /// The URL for people: without the password.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// A byte stream with a look-ahead buffer.
struct Input {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
}

fn gone(e: impl std::fmt::Display) -> ReadError {
    ReadError::Gone(format!("the camera stopped answering; {e}"))
}

impl Input {
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.inner.read(&mut chunk) {
            Ok(0) => Err(gone("the connection closed")),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(gone(e)),
        }
    }

    /// Bytes up to (not including) `needle`, which is consumed too; at most `max`.
    fn until(&mut self, needle: &[u8], max: usize) -> Result<Vec<u8>, ReadError> {
        let mut searched = 0usize;
        loop {
            let window = &self.buf[self.start..];
            let from = searched.saturating_sub(needle.len());
            if let Some(p) = window[from..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                let at = from + p;
                let out = window[..at].to_vec();
                self.start += at + needle.len();
                return Ok(out);
            }
            searched = window.len();
            if searched > max {
                return Err(ReadError::Gone(format!(
                    "the camera sent {searched} bytes without a part boundary"
                )));
            }
            self.fill()?;
        }
    }

    fn exactly(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() - self.start < n {
            self.fill()?;
        }
        let out = self.buf[self.start..self.start + n].to_vec();
        self.start += n;
        Ok(out)
    }

    /// Header lines up to the blank line, lowercased names.
    fn headers(&mut self) -> Result<Vec<(String, String)>, ReadError> {
        let head = self.until(b"\r\n\r\n", MAX_HEAD)?;
        let head = String::from_utf8_lossy(&head);
        Ok(head
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect())
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn connect(url: &CameraUrl) -> Result<Box<dyn Read + Send + Sync>, String> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}; {e}", url.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to {}; {e}", url.shown()))?;
    let _ = tcp.set_read_timeout(Some(READ_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(READ_TIMEOUT));
    let _ = tcp.set_nodelay(true);
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: deskcast/{}\r\nAccept: multipart/x-mixed-replace, image/jpeg\r\nConnection: close\r\n",
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(auth) = &url.auth {
        request.push_str(&format!("Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream: Box<dyn ReadWrite> = if url.tls {
        Box::new(tls_stream(url, tcp)?)
    } else {
        Box::new(tcp)
    };
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request to {}; {e}", url.shown()))?;
    Ok(Box::new(ReadOnly(stream)))
}

trait ReadWrite: Read + Write + Send + Sync {}
impl<T: Read + Write + Send + Sync> ReadWrite for T {}

struct ReadOnly(Box<dyn ReadWrite>);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

fn tls_stream(
    url: &CameraUrl,
    tcp: TcpStream,
) -> Result<
    tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ClientConnection, TcpStream>,
    String,
> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(certs) = CertificateDer::pem_file_iter(path) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| format!("TLS to {}; {e}", url.shown()))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// How the camera sends its pictures.
enum Kind {
    /// `multipart/x-mixed-replace` with this boundary line (`--boundary`).
    Multipart(Vec<u8>),
    /// One JPEG per request.
    Single,
}

/// An IP camera, connected.
pub struct HttpCamera {
    url: CameraUrl,
    input: Input,
    kind: Kind,
    /// A snapshot URL's picture waits here until read.
    first: Option<Vec<u8>>,
}

impl HttpCamera {
    /// Connects and reads the response head.
    pub fn open(url: &CameraUrl) -> Result<HttpCamera, String> {
        let mut input = Input {
            inner: connect(url)?,
            buf: Vec::new(),
            start: 0,
        };
        let fail = |e: ReadError| match e {
            ReadError::Gone(m) | ReadError::Bad(m) => m,
        };
        let status_line = input.until(b"\r\n", MAX_HEAD).map_err(fail)?;
        let status_line = String::from_utf8_lossy(&status_line).to_string();
        let status = status_line.split(' ').nth(1).unwrap_or("");
        let headers = input.headers().map_err(fail)?;
        if status != "200" {
            return Err(format!(
                "{} answered {status_line:?}; check the URL (and user:password@ if it needs a login)",
                url.shown()
            ));
        }
        if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            input.inner = Box::new(Chunked {
                inner: Input {
                    inner: input.inner,
                    buf: input.buf.split_off(input.start),
                    start: 0,
                },
                left: 0,
            });
            input.buf = Vec::new();
            input.start = 0;
        }
        let ctype = header(&headers, "content-type").unwrap_or("").to_string();
        let (kind, first) = if ctype.starts_with("multipart/") {
            let boundary = ctype
                .split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
                .map(|b| b.trim_matches('"').trim_start_matches("--").to_string())
                .ok_or_else(|| format!("{} sends multipart without a boundary", url.shown()))?;
            (Kind::Multipart(format!("--{boundary}").into_bytes()), None)
        } else if ctype.starts_with("image/jpeg") {
            let body = match header(&headers, "content-length").and_then(|v| v.parse().ok()) {
                Some(n) if n <= MAX_PART => input.exactly(n).map_err(fail)?,
                _ => {
                    let mut all = input.buf[input.start..].to_vec();
                    let _ = (&mut input.inner)
                        .take(MAX_PART as u64)
                        .read_to_end(&mut all);
                    all
                }
            };
            (Kind::Single, Some(body))
        } else {
            return Err(format!(
                "{} sends {ctype:?}, not MJPEG (multipart/x-mixed-replace) or image/jpeg",
                url.shown()
            ));
        };
        Ok(HttpCamera {
            url: url.clone(),
            input,
            kind,
            first,
        })
    }
}

impl Device for HttpCamera {
    fn read(&mut self) -> Result<Frame, ReadError> {
        match &self.kind {
            Kind::Single => {
                if let Some(body) = self.first.take() {
                    return Ok(Frame::Jpeg(body));
                }
                // Snapshot URLs: ask again, at most a few times a second.
                std::thread::sleep(Duration::from_millis(100));
                let again = HttpCamera::open(&self.url).map_err(ReadError::Gone)?;
                *self = again;
                self.read()
            }
            Kind::Multipart(boundary) => {
                let boundary = boundary.clone();
                // Skip to the boundary line, then the part's headers.
                self.input.until(&boundary, MAX_PART)?;
                let headers = self.input.headers()?;
                let body = match header(&headers, "content-length").and_then(|v| v.parse().ok()) {
                    Some(n) if n <= MAX_PART => self.input.exactly(n)?,
                    Some(n) => return Err(ReadError::Gone(format!("a part of {n} bytes"))),
                    // No length: the part ends where the next boundary begins.
                    None => {
                        let mut end = b"\r\n".to_vec();
                        end.extend_from_slice(&boundary);
                        let body = self.input.until(&end, MAX_PART)?;
                        // Leave the boundary for the next read.
                        self.input.start -= boundary.len();
                        body
                    }
                };
                Ok(Frame::Jpeg(body))
            }
        }
    }

    fn describe(&self) -> String {
        format!("IP camera {}", self.url.shown())
    }
}

/// Undoes `Transfer-Encoding: chunked`.
struct Chunked {
    inner: Input,
    left: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let io = |e: ReadError| match e {
            ReadError::Gone(m) | ReadError::Bad(m) => std::io::Error::other(m),
        };
        if self.left == 0 {
            let line = self.inner.until(b"\r\n", MAX_HEAD).map_err(io)?;
            let line = if line.is_empty() {
                // The CRLF after the previous chunk.
                self.inner.until(b"\r\n", MAX_HEAD).map_err(io)?
            } else {
                line
            };
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or("").trim();
            self.left = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other("a bad chunk size"))?;
            if self.left == 0 {
                return Ok(0);
            }
        }
        while self.inner.buf.len() == self.inner.start {
            self.inner.fill().map_err(io)?;
        }
        let have = &self.inner.buf[self.inner.start..];
        let n = have.len().min(self.left).min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.inner.start += n;
        self.left -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_urls_parse_with_logins_ports_and_paths() {
        let u =
            CameraUrl::parse("http://admin:secret@192.0.2.7:8081/video.mjpg?x=1").expect("parses");
        assert_eq!(u.host, "192.0.2.7");
        assert_eq!(u.port, 8081);
        assert_eq!(u.path, "/video.mjpg?x=1");
        assert_eq!(u.auth.as_deref(), Some("YWRtaW46c2VjcmV0"));
        assert_eq!(
            u.shown(),
            "http://192.0.2.7:8081/video.mjpg?x=1",
            "no password"
        );
        let u = CameraUrl::parse("https://[2001:db8::1]/stream").expect("parses");
        assert_eq!((u.host.as_str(), u.port, u.tls), ("2001:db8::1", 443, true));
        assert!(CameraUrl::parse("rtsp://cam/stream").is_err());
        assert!(CameraUrl::parse("http://:80/").is_err());
    }
}
