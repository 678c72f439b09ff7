//! Error types, split by when they happen: at start-up, or while capturing.

use thiserror::Error;

/// Errors that stop the server from starting. Each says what to do about it.
#[derive(Debug, Error)]
pub enum StartError {
    /// No display server to capture.
    #[error(
        "no X display found ({0}); run it inside your desktop session, or try --source pattern"
    )]
    NoDisplay(String),
    /// No camera could be opened.
    #[error("no camera found: {0}; plug one in, pass --camera /dev/videoN, or an MJPEG URL (--camera http://…)")]
    NoCamera(String),
    /// The display is there but the monitor could not be opened.
    #[error("cannot open monitor {monitor}; {detail}. List: {available}")]
    Monitor {
        /// The requested monitor.
        monitor: String,
        /// What went wrong.
        detail: String,
        /// The monitors that exist.
        available: String,
    },
    /// The JPEG encoder could not be set up.
    #[error("cannot set up the JPEG encoder; {0}")]
    Encoder(String),
    /// A configuration value is not acceptable.
    #[error("{0}")]
    Config(String),
    /// The operating system gave no random bytes for a token.
    #[error("{0}")]
    Random(String),
    /// The TLS certificate or key could not be loaded or made.
    #[error("{0}")]
    Tls(String),
    /// The pipeline thread could not be started.
    #[error("cannot start the capture thread; {0}")]
    Thread(#[from] std::io::Error),
}

/// A failed capture. The pipeline skips the frame and goes on.
#[derive(Debug, Error)]
#[error("capture failed; {0}")]
pub struct CaptureError(pub String);
