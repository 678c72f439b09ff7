//! The real deskcast binary as a child process, for tests that need a whole process
//! (memory, signals, several servers at once).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use deskcast_shared::ServerMessage;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::auth::{CONTROL, VIEW};
use super::{next_text, Ws};

/// The deskcast binary, started with `args`; its pid, its address and its stdout ready
/// line.
pub struct Binary {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    /// Its (control, view) tokens.
    pub tokens: (String, String),
    /// Kept open: a closed pipe would fail the server's later prints.
    _stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Binary {
    pub async fn start(args: &[&str], display: Option<&str>) -> Binary {
        Self::start_with_tokens(args, display, (CONTROL, VIEW)).await
    }

    /// [`Binary::start`] with other tokens: (control, view).
    pub async fn start_with_tokens(
        args: &[&str],
        display: Option<&str>,
        tokens: (&str, &str),
    ) -> Binary {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskcast"));
        cmd.args(args)
            .args(["--port", "0", "--token", tokens.0, "--view-token", tokens.1])
            .env_remove("DESKCAST_TOKEN")
            .env_remove("DESKCAST_VIEW_TOKEN")
            .env_remove("DESKCAST_PORT")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(d) = display {
            cmd.env("DISPLAY", d);
        }
        let mut child = cmd.spawn().expect("start deskcast");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if line.contains("Control: ") {
                    return line;
                }
            }
            panic!("deskcast exited without printing its URL");
        })
        .await
        .expect("the ready line within 20 s");
        let hostport = line
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect("an address in the URL");
        let addr = hostport.parse().expect("host:port");
        Binary {
            child,
            addr,
            tokens: (tokens.0.to_string(), tokens.1.to_string()),
            _stdout: lines,
        }
    }

    pub fn rss(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with_hello(|hello| {
            assert!(matches!(hello, ServerMessage::Hello { .. }), "{hello:?}");
        })
        .await
    }

    /// Opens `/ws` with the control token and hands its `hello` to `check`.
    pub async fn ws_with_hello(&self, check: impl FnOnce(&ServerMessage)) -> Ws {
        let url = format!("ws://{}/ws?token={}", self.addr, self.tokens.0);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("open /ws");
        check(&next_text(&mut ws).await);
        ws
    }
}
