//! The peer deskcast is measured against: TigerVNC's scraping server (`X0tigervnc`,
//! what the `x0vncserver` script starts) behind websockify, serving noVNC.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::have;

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on the loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// TigerVNC on an X display and noVNC in front of it.
pub struct Vnc {
    /// The VNC server.
    pub server: Killed,
    _proxy: Killed,
    /// The RFB port (what the VNC server sends on).
    pub rfb: u16,
    /// noVNC's page, connecting at once, without scaling.
    pub url: String,
}

impl Vnc {
    /// Starts both on `display`; `None` (said loudly by [`have`]) when not installed.
    pub async fn start(display: &str) -> Option<Vnc> {
        if !(have("X0tigervnc") & have("websockify")) {
            return None;
        }
        let (rfb, web) = (free_port(), free_port());
        let server = Killed(
            Command::new("X0tigervnc")
                .args(["-display", display, "-rfbport", &rfb.to_string()])
                .args(["-SecurityTypes", "None", "-localhost"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("X0tigervnc"),
        );
        let proxy = Killed(
            Command::new("websockify")
                .args([
                    "--web",
                    "/usr/share/novnc",
                    &web.to_string(),
                    &format!("127.0.0.1:{rfb}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("websockify"),
        );
        let ready = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let start = Instant::now();
        while !(ready(rfb) && ready(web)) && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Vnc {
            server,
            _proxy: proxy,
            rfb,
            url: format!("http://127.0.0.1:{web}/vnc.html?autoconnect=true&resize=off"),
        })
    }
}
