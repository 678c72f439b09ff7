//! The desktop: xcap (X11 and Wayland through one portable API) finds the monitors;
//! on X11 the faster [`super::x11`] path captures them (MIT-SHM, or GetImage when SHM
//! is refused), xcap otherwise.
//!
//! `DESKCAST_CAPTURE=getimage` or `=xcap` forces a slower path (for benchmarks and for
//! telling a capture bug from a path bug).

use xcap::Monitor;

use super::monitors::MonitorChoice;
use super::x11::{Prefer, X11Capture};
use super::{Damage, FrameSource, Geometry, PixelLayout, Pixels, Rect};
use crate::error::{CaptureError, StartError};

/// Captures one monitor of the desktop.
pub struct ScreenSource {
    /// xcap's monitor, for its capture path only.
    monitor: Option<Monitor>,
    geometry: Geometry,
    x11: Option<X11Capture>,
}

fn display_present() -> Result<(), StartError> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if cfg!(target_os = "linux") && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Err(StartError::NoDisplay("DISPLAY is unset".into()));
    }
    Ok(())
}

impl ScreenSource {
    /// Opens the monitor `choice` names (RandR's list on X11, xcap's elsewhere).
    pub fn open(choice: MonitorChoice) -> Result<Self, StartError> {
        display_present()?;
        let forced = std::env::var("DESKCAST_CAPTURE").unwrap_or_default();
        if forced != "xcap" {
            if let Ok((monitors, whole)) = super::monitors::list() {
                let geometry = match choice {
                    MonitorChoice::All => whole,
                    MonitorChoice::Index(i) => {
                        monitors
                            .get(i)
                            .map(|m| m.geometry)
                            .ok_or_else(|| StartError::Monitor {
                                monitor: choice.to_string(),
                                detail: "no such monitor".into(),
                                available: describe_all(&monitors),
                            })?
                    }
                };
                let prefer = if forced == "getimage" {
                    Prefer::GetImage
                } else {
                    Prefer::Shm
                };
                if let Some(x11) = X11Capture::open(geometry, prefer) {
                    return Ok(ScreenSource::ready(None, geometry, Some(x11), choice));
                }
            }
        }
        Self::open_xcap(choice)
    }

    /// The portable path: xcap's monitors and capture (Wayland, unusual X visuals).
    fn open_xcap(choice: MonitorChoice) -> Result<Self, StartError> {
        let monitors = Monitor::all().map_err(|e| StartError::NoDisplay(e.to_string()))?;
        let describe = |m: &Monitor| {
            format!(
                "{}x{}+{}+{}",
                m.width().unwrap_or(0),
                m.height().unwrap_or(0),
                m.x().unwrap_or(0),
                m.y().unwrap_or(0)
            )
        };
        let available = monitors
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{i}: {}", describe(m)))
            .collect::<Vec<_>>()
            .join(", ");
        let fail = |detail: String| StartError::Monitor {
            monitor: choice.to_string(),
            detail,
            available: if available.is_empty() {
                "none".into()
            } else {
                available.clone()
            },
        };
        let MonitorChoice::Index(index) = choice else {
            return Err(fail("all monitors at once needs X11".into()));
        };
        let monitor = monitors
            .get(index)
            .cloned()
            .ok_or_else(|| fail("no such monitor".into()))?;
        let geometry = Geometry {
            x: monitor.x().map_err(|e| fail(e.to_string()))?,
            y: monitor.y().map_err(|e| fail(e.to_string()))?,
            width: monitor.width().map_err(|e| fail(e.to_string()))?,
            height: monitor.height().map_err(|e| fail(e.to_string()))?,
        };
        Ok(ScreenSource::ready(Some(monitor), geometry, None, choice))
    }

    fn ready(
        monitor: Option<Monitor>,
        geometry: Geometry,
        x11: Option<X11Capture>,
        choice: MonitorChoice,
    ) -> Self {
        let source = ScreenSource {
            monitor,
            geometry,
            x11,
        };
        tracing::info!(
            backend = source.backend(),
            "capturing monitor {choice} ({}x{}+{}+{})",
            geometry.width,
            geometry.height,
            geometry.x,
            geometry.y
        );
        source
    }
}

/// The monitors for an error message, on one line.
fn describe_all(monitors: &[super::monitors::Monitor]) -> String {
    let list = super::monitors::describe(monitors);
    if list.is_empty() {
        "none".into()
    } else {
        list.trim_end().replace('\n', ", ")
    }
}

impl FrameSource for ScreenSource {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn is_desktop(&self) -> bool {
        true
    }

    fn backend(&self) -> &'static str {
        self.x11.as_ref().map_or("xcap", X11Capture::backend)
    }

    fn damage(&mut self) -> Result<Damage, CaptureError> {
        match self.x11.as_mut() {
            Some(x11) => x11.damage(),
            None => Ok(Damage::All),
        }
    }

    fn reshaped(&mut self) -> bool {
        self.x11.as_ref().is_some_and(X11Capture::reshaped)
    }

    fn lost(&mut self) -> Option<String> {
        let alive = match &self.x11 {
            Some(x11) => x11.alive(),
            None => Monitor::all().is_ok(),
        };
        let display = std::env::var("DISPLAY").unwrap_or_default();
        (!alive).then(|| format!("the X display {display} is gone"))
    }

    fn capture(&mut self, areas: &[Rect]) -> Result<Vec<Pixels>, CaptureError> {
        if let Some(x11) = self.x11.as_mut() {
            return x11.capture(areas);
        }
        let Some(monitor) = &self.monitor else {
            return Err(CaptureError("no capture path for this monitor".into()));
        };
        let img = monitor
            .capture_image()
            .map_err(|e| CaptureError(e.to_string()))?;
        let (width, height) = img.dimensions();
        // xcap captures the whole monitor: one picture serves every area.
        Ok(vec![Pixels::owned(
            Rect::full(width, height),
            PixelLayout::Rgba,
            img.into_raw(),
        )])
    }
}
