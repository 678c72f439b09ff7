//! The desktop's monitors as RandR 1.5 lists them (`xrandr --listmonitors`): what
//! `--list-monitors` prints and `--monitor` picks from. Monitors made with
//! `xrandr --setmonitor` (no output of their own, such as one half of a wide screen)
//! count too, which xcap's list leaves out.

use std::fmt;
use std::str::FromStr;

use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::ConnectionExt as _;

use std::sync::{Arc, Mutex};

use super::Geometry;
use crate::config::SourceSpec;

/// Which part of the desktop to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorChoice {
    /// One monitor, by its index in [`list`].
    Index(usize),
    /// All of them, as one picture (the whole X screen).
    All,
}

impl FromStr for MonitorChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(MonitorChoice::All);
        }
        s.parse().map(MonitorChoice::Index).map_err(|_| {
            format!("{s:?} is not a monitor; give its index (see --list-monitors) or all")
        })
    }
}

impl fmt::Display for MonitorChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorChoice::Index(i) => write!(f, "{i}"),
            MonitorChoice::All => f.write_str("all"),
        }
    }
}

/// One monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// Its RandR name (`DP-1`, or what `--setmonitor` named it).
    pub name: String,
    /// Where it sits on the X screen.
    pub geometry: Geometry,
    /// Whether it is the primary monitor.
    pub primary: bool,
}

/// The monitors of `$DISPLAY`, in RandR's order, and the whole screen's geometry.
pub fn list() -> Result<(Vec<Monitor>, Geometry), String> {
    let (conn, root) = super::x11::connect_display()?;
    let whole = Geometry {
        x: 0,
        y: 0,
        width: u32::from(root.width_in_pixels),
        height: u32::from(root.height_in_pixels),
    };
    let reply = conn
        .randr_get_monitors(root.root, true)
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("the X server lacks RandR 1.5 monitors; {e}"))?;
    let monitors = reply
        .monitors
        .iter()
        .map(|m| {
            let name = conn
                .get_atom_name(m.name)
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| String::from_utf8_lossy(&r.name).to_string())
                .unwrap_or_default();
            Monitor {
                name,
                geometry: Geometry {
                    x: i32::from(m.x),
                    y: i32::from(m.y),
                    width: u32::from(m.width),
                    height: u32::from(m.height),
                },
                primary: m.primary,
            }
        })
        .collect();
    Ok((monitors, whole))
}

/// The geometry `choice` names, or why not (with the list).
pub fn geometry_of(choice: MonitorChoice) -> Result<Geometry, String> {
    let (monitors, whole) = list()?;
    match choice {
        MonitorChoice::All => Ok(whole),
        MonitorChoice::Index(i) => monitors.get(i).map(|m| m.geometry).ok_or_else(|| {
            format!(
                "there is no monitor {i}; {}",
                describe(&monitors).trim_end().replace('\n', "; ")
            )
        }),
    }
}

/// Which monitor the stream shows, changed at runtime by the controller. The
/// pipeline's reopen function opens whatever [`Switcher::target`] names.
pub struct Switcher {
    target: Arc<Mutex<SourceSpec>>,
}

impl Switcher {
    /// A switcher for a stream of `spec`.
    pub fn new(spec: SourceSpec) -> Self {
        Switcher {
            target: Arc::new(Mutex::new(spec)),
        }
    }

    /// The spec to open now (shared with the reopen function).
    pub fn target(&self) -> Arc<Mutex<SourceSpec>> {
        self.target.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SourceSpec> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The monitor streamed now, for a screen.
    pub fn current(&self) -> Option<MonitorChoice> {
        match &*self.lock() {
            SourceSpec::Screen { monitor } => Some(*monitor),
            _ => None,
        }
    }

    /// Switches to `choice` if it exists; the caller then has the pipeline reopen.
    pub fn set(&self, choice: MonitorChoice) -> Result<(), String> {
        if self.current().is_none() {
            return Err("the source is not a desktop".into());
        }
        geometry_of(choice)?;
        *self.lock() = SourceSpec::Screen { monitor: choice };
        Ok(())
    }

    /// The `monitors` message: the list and the current one; `None` unless a screen
    /// with more than one monitor.
    pub fn message(&self) -> Option<deskcast_shared::ServerMessage> {
        let current = self.current()?;
        let (monitors, _) = list().ok()?;
        if monitors.len() < 2 {
            return None;
        }
        let monitors = monitors
            .into_iter()
            .enumerate()
            .map(|(i, m)| deskcast_shared::MonitorInfo {
                index: i as u32,
                name: m.name,
                x: m.geometry.x,
                y: m.geometry.y,
                width: m.geometry.width,
                height: m.geometry.height,
                primary: m.primary,
            })
            .collect();
        let current = match current {
            MonitorChoice::Index(i) => Some(i as u32),
            MonitorChoice::All => None,
        };
        Some(deskcast_shared::ServerMessage::Monitors { monitors, current })
    }
}

/// `--list-monitors`: one line a monitor, then `all`.
pub fn describe(monitors: &[Monitor]) -> String {
    let mut out = String::new();
    for (i, m) in monitors.iter().enumerate() {
        let g = m.geometry;
        out.push_str(&format!(
            "{i}: {} {}x{}+{}+{}{}\n",
            m.name,
            g.width,
            g.height,
            g.x,
            g.y,
            if m.primary { " (primary)" } else { "" }
        ));
    }
    out
}

/// What `deskcast --list-monitors` prints.
pub fn print_list() -> Result<String, String> {
    let (monitors, whole) = list()?;
    let mut out = describe(&monitors);
    out.push_str(&format!(
        "all: every monitor as one picture, {}x{}\n",
        whole.width, whole.height
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        assert_eq!("2".parse(), Ok(MonitorChoice::Index(2)));
        assert_eq!("ALL".parse(), Ok(MonitorChoice::All));
        assert!("left".parse::<MonitorChoice>().is_err());
        assert_eq!(MonitorChoice::All.to_string(), "all");
        let m = Monitor {
            name: "left".into(),
            geometry: Geometry {
                x: 0,
                y: 0,
                width: 960,
                height: 1080,
            },
            primary: true,
        };
        assert_eq!(describe(&[m]), "0: left 960x1080+0+0 (primary)\n");
    }
}
