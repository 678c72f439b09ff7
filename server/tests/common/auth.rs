//! Helpers for the security tests: requests with chosen headers (and a chosen source
//! address), WebSocket handshakes with chosen headers, and reading refusals.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use deskcast_shared::ServerMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{next_text, TestServer, Ws};

/// The control and view tokens the security tests use.
pub const CONTROL: &str = "control-token-for-tests";
pub const VIEW: &str = "view-token-for-tests";

/// A response head: status and lowercase header lines.
pub struct Head {
    pub status: u16,
    pub head: String,
}

impl Head {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends a raw request on `s` and reads the response head (the body may never end:
/// /video_feed), plus whatever body arrived with it.
async fn request_on(mut s: TcpStream, raw: String) -> (Head, Vec<u8>) {
    s.write_all(raw.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (Head { status, head }, buf[end + 4..].to_vec())
}

fn raw_get(path: &str, host: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// GET `path` with `headers`; returns the head and the start of the body.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (Head, Vec<u8>) {
    let s = TcpStream::connect(addr).await.expect("connect");
    request_on(s, raw_get(path, &addr.to_string(), headers)).await
}

/// GET `path` with an explicit Host header.
pub async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> Head {
    let s = TcpStream::connect(addr).await.expect("connect");
    request_on(s, raw_get(path, host, &[])).await.0
}

/// GET `path` from the source address `from` (any of 127.0.0.0/8 works on Linux).
pub async fn get_from(from: IpAddr, addr: SocketAddr, path: &str) -> Head {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    let s = socket.connect(addr).await.expect("connect");
    request_on(s, raw_get(path, &addr.to_string(), &[])).await.0
}

/// The status of GET `path`.
pub async fn status(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
    get(addr, path, headers).await.0.status
}

/// Opens `/ws{query}` with extra `headers`: the socket and its `hello`, or the HTTP
/// status the upgrade was refused with.
pub async fn ws_open(
    server: &TestServer,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, ServerMessage), u16> {
    let mut req = format!("{}{query}", server.ws_url())
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName =
            k.parse().expect("header name");
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).expect("header value"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => {
            let hello = next_text(&mut ws).await;
            Ok((ws, hello))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed without a status: {e}"),
    }
}

/// Opens `/ws` with the control token in the query.
pub async fn ws_control(server: &TestServer) -> (Ws, ServerMessage) {
    ws_open(server, &format!("?token={CONTROL}"), &[])
        .await
        .expect("the control token opens /ws")
}

/// An in-process deskcast serving HTTPS with a generated certificate, and a client that
/// trusts it.
pub struct TlsServer {
    pub addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TlsServer {
    pub async fn start(config: deskcast_server::Config) -> TlsServer {
        use deskcast_server::config::TlsSource;
        use std::sync::Arc;
        use tokio_rustls::rustls;
        let cert = deskcast_server::tls::load(&TlsSource::SelfSigned, config.bind, &[])
            .expect("certificate");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(cert.cert.clone())
            .expect("trust the generated certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let app = deskcast_server::App::new(&config).expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, Some(cert), async move {
            let _ = stopped.await;
        }));
        TlsServer {
            addr,
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// GET `path` over TLS (handshake within 5 s); the whole answer.
    pub async fn get(&self, path: &str) -> String {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name =
            tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut s = tokio::time::timeout(Duration::from_secs(5), self.connector.connect(name, tcp))
            .await
            .expect("the TLS handshake is not held up")
            .expect("TLS handshake");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            self.addr.port()
        );
        s.write_all(req.as_bytes()).await.expect("send");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).to_string()
    }

    pub async fn shutdown(mut self) {
        super::stop_served(self.stop.take(), self.task.take()).await;
    }
}
