//! Command-line arguments (clap) and the validated [`Config`] the server runs with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::auth::Tokens;
use crate::capture::camera::{CameraSpec, Wanted};
use crate::capture::monitors::MonitorChoice;
use crate::error::StartError;

/// What to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The desktop (X11 GetImage on X servers, xcap elsewhere).
    Screen,
    /// A synthetic moving test pattern: for tests, demos and machines without a display.
    Pattern,
    /// A camera: USB (V4L2) or an MJPEG IP camera (`--camera`).
    Camera,
}

/// What this deskcast is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Serve a stream that an origin (`deskcast --nats URL --stream NAME`) publishes to
    /// NATS, to viewers of this machine: for many viewers, past one machine's uplink.
    Relay,
}

/// A width×height pair such as `1280x720`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("expected WIDTHxHEIGHT such as 1280x720, got {s:?}"))?;
        let width: u32 = w
            .trim()
            .parse()
            .map_err(|e| format!("bad width {w:?}; {e}"))?;
        let height: u32 = h
            .trim()
            .parse()
            .map_err(|e| format!("bad height {h:?}; {e}"))?;
        if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
            return Err(format!(
                "size {width}x{height} out of range; 16 to 8192 each way"
            ));
        }
        Ok(Size { width, height })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// deskcast: your desktop in any web browser.
///
/// Streams the screen (or a test pattern) as JPEG frames over WebSocket and as a
/// classic MJPEG stream, and replays the browser's mouse and keyboard on the desktop.
#[derive(Debug, Clone, Parser)]
#[command(name = "deskcast", version, about, long_about = None)]
pub struct Args {
    /// `relay`: serve a stream taken from NATS (needs --nats and --stream), not this
    /// machine's screen.
    #[arg(value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// NATS server to publish the stream to (so relays can serve it), or, as a relay, to
    /// take it from: nats://host:4222 or tls://host:4222 (user:password@ may be in it).
    #[arg(long, value_name = "URL", env = "DESKCAST_NATS", requires = "stream")]
    pub nats: Option<String>,

    /// The stream's name on NATS: its subjects are deskcast.NAME.… .
    #[arg(long, value_name = "NAME", requires = "nats")]
    pub stream: Option<String>,

    /// NATS credentials: a .creds file (JWT and nkey seed), or a file holding an nkey
    /// seed, user:password, or a token.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,

    /// A CA certificate (PEM) to trust for tls:// NATS servers, besides the system's.
    #[arg(long, value_name = "PEM", requires = "nats")]
    pub nats_ca: Option<PathBuf>,

    /// Let the controllers of relays control this desktop (over NATS, one controller
    /// at a time across here and every relay). Off: relays are view-only.
    #[arg(long, requires = "nats")]
    pub relay_control: bool,

    /// What to stream.
    #[arg(long, value_enum, default_value_t = SourceKind::Screen)]
    pub source: SourceKind,

    /// Which monitor to stream with `--source screen`: its index in `--list-monitors`,
    /// or `all` for every monitor as one picture.
    #[arg(long, default_value = "0")]
    pub monitor: MonitorChoice,

    /// List the desktop's monitors, and exit.
    #[arg(long)]
    pub list_monitors: bool,

    /// Size of the test pattern with `--source pattern`, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub size: Size,

    /// The camera with `--source camera`: an index (0), a V4L2 device (/dev/video2),
    /// or the http(s):// URL of an MJPEG IP camera (user:password@ for a login).
    #[arg(long, default_value = "0")]
    pub camera: CameraSpec,

    /// The camera mode to ask for, WIDTHxHEIGHT (the closest it offers is used, and
    /// the log says which) [default: 1280x720].
    #[arg(long)]
    pub camera_size: Option<Size>,

    /// The camera frame rate to ask for [default: 30].
    #[arg(long)]
    pub camera_fps: Option<u32>,

    /// Seconds without input after which a controller loses control to a viewer that
    /// asked for it (with the control token) and got no answer.
    #[arg(long, default_value_t = 60)]
    pub handoff_idle: u64,

    /// Send the remote clipboard to view-only viewers too (by default only the
    /// controller gets it).
    #[arg(long)]
    pub view_clipboard: bool,

    /// Also follow the X PRIMARY selection (what is selected), not only CLIPBOARD
    /// (what is copied).
    #[arg(long)]
    pub clipboard_primary: bool,

    /// Say what works on this machine (display, capture path, extensions, input,
    /// cameras, TLS files), and exit: non-zero when the desktop cannot be streamed.
    #[arg(long)]
    pub check: bool,

    /// List the cameras with their modes, and exit.
    #[arg(long)]
    pub list_cameras: bool,

    /// Highest frame rate sent, frames per second (1–120).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: u32,

    /// JPEG quality (1–100).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,

    /// Address to listen on. Anything but loopback needs authentication (the default).
    #[arg(long, default_value = "127.0.0.1", env = "DESKCAST_BIND")]
    pub bind: IpAddr,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080, env = "DESKCAST_PORT")]
    pub port: u16,

    /// Control token (at least 16 of A-Z a-z 0-9 - . _ ~). A random one when not given.
    /// Other users can read command lines: on a shared machine use the variable.
    #[arg(long, env = "DESKCAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// View-only token: its sessions see the screen but their input is refused. A random
    /// one when not given.
    #[arg(long, env = "DESKCAST_VIEW_TOKEN", hide_env_values = true)]
    pub view_token: Option<String>,

    /// Turn authentication off: anyone who can reach the port controls this machine.
    /// Only with a loopback --bind.
    #[arg(long)]
    pub no_auth: bool,

    /// Another origin whose pages may open /ws, such as `https://desk.example.org`
    /// (repeatable). The server's own origin is always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Another Host name to answer to, HOST or HOST:PORT, such as a reverse proxy's
    /// (repeatable). localhost and IP addresses with the right port are always allowed.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,

    /// Most viewers at once (WebSocket and MJPEG); more get 503.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_clients: u32,

    /// Most input events per second from one client; the excess is dropped. The client
    /// sends at most one move per display frame (240 on a 240 Hz screen) plus keys.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_input_rate: u32,

    /// Do not draw the remote cursor into `/video_feed` and `/snapshot.jpg` frames.
    #[arg(long)]
    pub no_cursor: bool,

    /// The desktop's double-click time, milliseconds (GTK and Qt: 400; xterm: 250).
    /// A second click that the network delayed past it is replayed so the desktop
    /// still sees a double click.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(50..=5_000))]
    pub double_click_ms: u32,

    /// TLS certificate chain, PEM (with --tls-key): serve https and wss.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key, PEM (with --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve https with a certificate generated at start; its SHA-256 fingerprint is
    /// printed so you can check it in the browser.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files given on the command line.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A certificate generated at start.
    SelfSigned,
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A monitor of the desktop.
    Screen {
        /// Which (see `--list-monitors`).
        monitor: MonitorChoice,
    },
    /// The synthetic test pattern.
    Pattern {
        /// Its size.
        size: Size,
    },
    /// A camera.
    Camera {
        /// Which.
        camera: CameraSpec,
        /// The mode asked for.
        wanted: Wanted,
    },
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// A relay: frames come from NATS, not a source here.
    pub relay: bool,
    /// Publish to NATS (an origin), or take from it (a relay).
    pub nats: Option<crate::nats::NatsConfig>,
    /// Where frames come from.
    pub source: SourceSpec,
    /// Highest frame rate.
    pub fps: u32,
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// Listen address.
    pub bind: IpAddr,
    /// Listen port.
    pub port: u16,
    /// Tests only: accept input even from a source that is not a desktop (the pattern),
    /// so tests can observe it through [`crate::App::input_tap`]. No CLI flag sets it.
    pub test_accept_input: bool,
    /// The tokens; `None` means authentication is off (`--no-auth`, and tests).
    pub auth: Option<Tokens>,
    /// Extra origins allowed to open `/ws`, normalized (`scheme://host[:port]`, lowercase).
    pub allow_origins: Vec<String>,
    /// Extra Host values allowed, lowercase: `name` (any port) or `name:port`.
    pub allow_hosts: Vec<String>,
    /// Most viewers at once.
    pub max_clients: usize,
    /// Most input events per second per client.
    pub max_input_rate: u32,
    /// The desktop's double-click time.
    pub double_click: Duration,
    /// How long a controller may stay idle before a request takes control from it.
    pub handoff_idle: Duration,
    /// Viewers get the remote clipboard too (`--view-clipboard`).
    pub view_clipboard: bool,
    /// Follow PRIMARY as well as CLIPBOARD (`--clipboard-primary`).
    pub clipboard_primary: bool,
    /// Draw the remote cursor into whole frames (`/video_feed`, `/snapshot.jpg`).
    pub draw_cursor: bool,
    /// TLS, when on.
    pub tls: Option<TlsSource>,
    /// How long a connection may stay open before a request on it authenticates.
    pub unauthenticated_timeout: Duration,
    /// How long a write to a client may make no progress before it is hung up on.
    pub write_timeout: Duration,
}

/// Default of [`Config::unauthenticated_timeout`].
pub const UNAUTHENTICATED_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`Config::write_timeout`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    /// A configuration streaming the test pattern on an ephemeral loopback port: for tests.
    pub fn pattern(width: u32, height: u32) -> Self {
        Config {
            relay: false,
            nats: None,
            source: SourceSpec::Pattern {
                size: Size { width, height },
            },
            fps: 30,
            quality: 80,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            test_accept_input: false,
            auth: None,
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            max_clients: 16,
            max_input_rate: 400,
            double_click: crate::input::DESKTOP_DOUBLE_CLICK,
            handoff_idle: crate::control::DEFAULT_HANDOFF_IDLE,
            view_clipboard: false,
            clipboard_primary: false,
            draw_cursor: true,
            tls: None,
            unauthenticated_timeout: UNAUTHENTICATED_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        }
    }

    /// The same configuration with authentication on (for tests).
    pub fn with_tokens(mut self, control: &str, view: &str) -> Self {
        self.auth = Some(Tokens {
            control: control.to_string(),
            view: view.to_string(),
        });
        self
    }
}

/// Checks a token given on the command line.
fn check_token(flag: &str, token: &str) -> Result<(), StartError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if token.chars().count() < 16 || !token.chars().all(ok_char) {
        return Err(StartError::Config(format!(
            "{flag} must be at least 16 characters of A-Z a-z 0-9 - . _ ~; \
             leave it out to get a random one"
        )));
    }
    Ok(())
}

/// Normalizes an `--allow-origin` value to `scheme://host[:port]`.
fn normalize_origin(o: &str) -> Result<String, StartError> {
    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) => Ok(o),
        _ => Err(StartError::Config(format!(
            "--allow-origin {o:?} is not an origin; write it as https://host or http://host:port"
        ))),
    }
}

/// Normalizes an `--allow-host` value to `name` or `name:port`.
fn normalize_host(h: &str) -> Result<String, StartError> {
    let h = h.trim().to_ascii_lowercase();
    if h.is_empty() || h.contains(['/', '?', '#', '@', ' ']) || h.contains("://") {
        return Err(StartError::Config(format!(
            "--allow-host {h:?} is not a host; write it as name or name:port, without a scheme"
        )));
    }
    Ok(h)
}

impl TryFrom<Args> for Config {
    type Error = StartError;

    fn try_from(a: Args) -> Result<Self, StartError> {
        let auth = if a.no_auth {
            if !a.bind.is_loopback() {
                return Err(StartError::Config(format!(
                    "refusing --no-auth on {}; without authentication anyone who can reach \
                     it controls this machine. Drop --no-auth, or bind to 127.0.0.1",
                    a.bind
                )));
            }
            if a.token.is_some() || a.view_token.is_some() {
                return Err(StartError::Config(
                    "--no-auth contradicts --token/--view-token (or DESKCAST_TOKEN/DESKCAST_VIEW_TOKEN); \
                     pick one"
                        .into(),
                ));
            }
            None
        } else {
            let control = match a.token {
                Some(t) => {
                    check_token("--token", &t)?;
                    t
                }
                None => crate::auth::random_token()?,
            };
            let view = match a.view_token {
                Some(t) => {
                    check_token("--view-token", &t)?;
                    t
                }
                None => crate::auth::random_token()?,
            };
            if control == view {
                return Err(StartError::Config(
                    "--token and --view-token are the same; the view token must differ".into(),
                ));
            }
            Some(Tokens { control, view })
        };
        let tls = match (a.tls_cert, a.tls_key, a.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsSource::Files { cert, key }),
            (_, _, true) => Some(TlsSource::SelfSigned),
            _ => None,
        };
        let allow_origins = a
            .allow_origin
            .iter()
            .map(|o| normalize_origin(o))
            .collect::<Result<_, _>>()?;
        let allow_hosts = a
            .allow_host
            .iter()
            .map(|h| normalize_host(h))
            .collect::<Result<_, _>>()?;
        let source = match a.source {
            SourceKind::Screen => SourceSpec::Screen { monitor: a.monitor },
            SourceKind::Pattern => SourceSpec::Pattern { size: a.size },
            SourceKind::Camera => SourceSpec::Camera {
                camera: a.camera.clone(),
                wanted: Wanted {
                    size: a.camera_size.map(|s| (s.width, s.height)),
                    fps: a.camera_fps,
                },
            },
        };
        let relay = a.mode == Some(Mode::Relay);
        let nats = match (a.nats, a.stream) {
            (Some(url), Some(stream)) => {
                crate::nats::check_stream(&stream)?;
                if !["nats://", "tls://"].iter().any(|p| url.starts_with(p)) {
                    return Err(StartError::Config(format!(
                        "--nats {url:?} must start with nats:// or tls://"
                    )));
                }
                Some(crate::nats::NatsConfig {
                    url,
                    stream,
                    creds: a.nats_creds,
                    ca: a.nats_ca,
                    relay_control: a.relay_control,
                })
            }
            _ => None,
        };
        if relay && nats.is_none() {
            return Err(StartError::Config(
                "a relay needs --nats URL and --stream NAME: where the origin publishes".into(),
            ));
        }
        if relay && a.relay_control {
            return Err(StartError::Config(
                "--relay-control is the origin's to give; leave it off the relay".into(),
            ));
        }
        Ok(Config {
            relay,
            nats,
            source,
            fps: a.fps,
            quality: a.quality,
            bind: a.bind,
            port: a.port,
            test_accept_input: false,
            auth,
            allow_origins,
            allow_hosts,
            max_clients: a.max_clients as usize,
            max_input_rate: a.max_input_rate,
            double_click: Duration::from_millis(u64::from(a.double_click_ms)),
            handoff_idle: Duration::from_secs(a.handoff_idle),
            view_clipboard: a.view_clipboard,
            clipboard_primary: a.clipboard_primary,
            draw_cursor: !a.no_cursor,
            tls,
            unauthenticated_timeout: UNAUTHENTICATED_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_parses_and_rejects_nonsense() {
        assert_eq!(
            "1920x1080".parse(),
            Ok(Size {
                width: 1920,
                height: 1080
            })
        );
        assert!("1920".parse::<Size>().is_err());
        assert!("0x0".parse::<Size>().is_err());
        assert!("axb".parse::<Size>().is_err());
    }

    #[test]
    fn defaults_are_safe_and_shown() {
        let a = Args::try_parse_from(["deskcast"]).expect("parses");
        assert_eq!(a.source, SourceKind::Screen);
        assert_eq!(a.fps, 30);
        assert_eq!(a.quality, 80);
        assert!(a.bind.is_loopback());
        assert_eq!(a.port, 8080);
        assert!(!a.no_auth, "authentication is on by default");
        let help = <Args as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        for d in [
            "[default: screen]",
            "[default: 30]",
            "[default: 80]",
            "[default: 127.0.0.1]",
            "[default: 8080]",
            "[default: 16]",
            "[default: 400]",
        ] {
            assert!(help.contains(d), "help lacks {d}:\n{help}");
        }
    }

    fn parse(args: &[&str]) -> Result<Config, StartError> {
        let mut all = vec!["deskcast"];
        all.extend_from_slice(args);
        Config::try_from(Args::try_parse_from(all).expect("parses"))
    }

    #[test]
    fn non_loopback_bind_needs_auth() {
        assert!(parse(&["--bind", "0.0.0.0", "--no-auth"]).is_err());
        let c = parse(&["--bind", "0.0.0.0"]).expect("auth is on by default");
        assert!(c.auth.is_some());
        assert!(parse(&["--no-auth"]).expect("loopback").auth.is_none());
        assert!(parse(&["--no-auth", "--token", "0123456789abcdef"]).is_err());
    }

    #[test]
    fn tokens_are_random_and_checked() {
        let (a, b) = (parse(&[]).expect("ok"), parse(&[]).expect("ok"));
        let (ta, tb) = (a.auth.expect("on"), b.auth.expect("on"));
        assert_ne!(ta.control, tb.control);
        assert_ne!(ta.control, ta.view);
        assert_eq!(ta.control.len(), 32, "128 bits in hex");
        assert!(parse(&["--token", "short"]).is_err());
        assert!(parse(&["--token", "has spaces in it, too many"]).is_err());
        let same = [
            "--token",
            "0123456789abcdef",
            "--view-token",
            "0123456789abcdef",
        ];
        assert!(parse(&same).is_err());
        let c = parse(&["--token", "0123456789abcdef"]).expect("ok");
        assert_eq!(c.auth.expect("on").control, "0123456789abcdef");
    }

    #[test]
    fn allow_lists_and_tls_flags() {
        let c = parse(&[
            "--allow-origin",
            "HTTPS://Desk.Example.org/",
            "--allow-host",
            "Desk.example.org",
            "--tls-self-signed",
        ])
        .expect("ok");
        assert_eq!(c.allow_origins, ["https://desk.example.org"]);
        assert_eq!(c.allow_hosts, ["desk.example.org"]);
        assert_eq!(c.tls, Some(TlsSource::SelfSigned));
        assert!(parse(&["--allow-origin", "desk.example.org"]).is_err());
        assert!(Args::try_parse_from(["deskcast", "--tls-cert", "c.pem"]).is_err());
        assert_eq!(parse(&[]).expect("ok").max_clients, 16);
    }
}
