//! A real `nats-server` on a free loopback port, stopped on drop; it can be killed and
//! started again on the same port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    pub port: u16,
    /// Its HTTP monitoring port (`/connz`, `/varz`).
    pub monitor: u16,
    /// More arguments: users, TLS.
    extra: Vec<String>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl NatsServer {
    /// Starts one; ready once it accepts connections.
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// [`NatsServer::start`] with more arguments (`--user`, `--tls`, …).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            monitor: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET /connz` from a nats-server's monitoring port: every client connection, with
/// its name and the bytes it sent (`in_bytes`) and was sent (`out_bytes`).
pub fn connz(monitor: u16) -> serde_json::Value {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", monitor)).expect("monitor");
    s.write_all(b"GET /connz?limit=1024 HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("ask");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read");
    let body = all.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).expect("connz JSON")
}

/// Bytes the client connections named `name` sent to the server so far.
pub fn sent_by(monitor: u16, name: &str) -> u64 {
    connz(monitor)["connections"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["name"] == name)
                .filter_map(|c| c["in_bytes"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
