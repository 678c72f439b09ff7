//! Command-line arguments (clap) and the validated [`Config`] the server runs with.

use std::net::IpAddr;
use std::str::FromStr;

use clap::{Parser, ValueEnum};

use crate::error::StartError;

/// What to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The desktop, captured with xcap.
    Screen,
    /// A synthetic moving test pattern: for tests, demos and machines without a display.
    Pattern,
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
    /// What to stream.
    #[arg(long, value_enum, default_value_t = SourceKind::Screen)]
    pub source: SourceKind,

    /// Which monitor to stream with `--source screen` (0 = the first xcap lists).
    #[arg(long, default_value_t = 0)]
    pub monitor: usize,

    /// Size of the test pattern with `--source pattern`, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub size: Size,

    /// Highest frame rate sent, frames per second (1–120).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: u32,

    /// JPEG quality (1–100).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,

    /// Address to listen on. Only loopback until authentication lands.
    #[arg(long, default_value = "127.0.0.1", env = "DESKCAST_BIND")]
    pub bind: IpAddr,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080, env = "DESKCAST_PORT")]
    pub port: u16,
}

/// Where frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceSpec {
    /// A monitor of the desktop, by index.
    Screen {
        /// Index in xcap's monitor list.
        monitor: usize,
    },
    /// The synthetic test pattern.
    Pattern {
        /// Its size.
        size: Size,
    },
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
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
}

impl Config {
    /// A configuration streaming the test pattern on an ephemeral loopback port: for tests.
    pub fn pattern(width: u32, height: u32) -> Self {
        Config {
            source: SourceSpec::Pattern {
                size: Size { width, height },
            },
            fps: 30,
            quality: 80,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            test_accept_input: false,
        }
    }
}

impl TryFrom<Args> for Config {
    type Error = StartError;

    fn try_from(a: Args) -> Result<Self, StartError> {
        if !a.bind.is_loopback() {
            return Err(StartError::Config(format!(
                "refusing to listen on {}; without authentication anyone who can reach it \
                 controls this machine. Bind to 127.0.0.1 (the default)",
                a.bind
            )));
        }
        let source = match a.source {
            SourceKind::Screen => SourceSpec::Screen { monitor: a.monitor },
            SourceKind::Pattern => SourceSpec::Pattern { size: a.size },
        };
        Ok(Config {
            source,
            fps: a.fps,
            quality: a.quality,
            bind: a.bind,
            port: a.port,
            test_accept_input: false,
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
        let help = <Args as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        for d in [
            "[default: screen]",
            "[default: 30]",
            "[default: 80]",
            "[default: 127.0.0.1]",
            "[default: 8080]",
        ] {
            assert!(help.contains(d), "help lacks {d}:\n{help}");
        }
    }

    #[test]
    fn non_loopback_bind_is_refused_for_now() {
        let a = Args::try_parse_from(["deskcast", "--bind", "0.0.0.0"]).expect("parses");
        assert!(Config::try_from(a).is_err());
    }
}
