//! `cargo xtask`: one command to set up a fresh Debian-like machine, build, run, test
//! and benchmark deskcast.
//!
//! - `cargo xtask run [-- server args]`: set up, build the client (trunk) and the
//!   server (release), start the server.
//! - `cargo xtask test`: set up, build the client, check formatting and lints, run every test.
//! - `cargo xtask bench`: set up, run the benchmarks (they print numbers).
//! - `cargo xtask setup`: only the set-up.
//!
//! Set-up checks first and installs only what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Debian packages: build dependencies of the server, and the real parts tests drive.
const PACKAGES: &[&str] = &[
    "pkg-config",
    "cmake",
    "nasm",
    "clang",
    "libclang-dev",
    "libxcb1-dev",
    "libxrandr-dev",
    "libdbus-1-dev",
    "libpipewire-0.3-dev",
    "libwayland-dev",
    "libegl-dev",
    "libgbm-dev",
    "libv4l-dev",
    "xvfb",
    "xdotool",
    "x11-utils",
    // Tests: xterm to type into and read back, setxkbmap for other keyboard layouts.
    "xterm",
    "x11-xkb-utils",
    // Xvnc: an X server whose RandR resizes (xrandr, in x11-xserver-utils); xclip.
    "tigervnc-standalone-server",
    "x11-xserver-utils",
    "xclip",
    // systemd-analyze checks contrib/deskcast.service; Prometheus' own parser reads
    // /metrics in the tests.
    "systemd",
    "python3-prometheus-client",
    "ffmpeg",
    // ip and tc (shaped links in network namespaces), ss (socket byte counts).
    "iproute2",
    "chromium",
    "chromium-driver",
    // A real NATS server for the relay tests and benchmark.
    "nats-server",
];

/// Debian packages only `cargo xtask bench` needs: the peers it measures deskcast
/// against (TigerVNC's scraping server, websockify, noVNC).
const BENCH_PACKAGES: &[&str] = &["tigervnc-scraping-server", "websockify", "novnc"];

const TRUNK_VERSION: &str = "0.21.14";

/// binaryen (wasm-opt) from the npm registry, installed into `target/tools`. Debian 12's
/// binaryen 108 writes every exported table as table 0, which breaks wasm-bindgen's
/// externref table (the page dies in `WebAssembly.Table.set`). Trunk.toml pins its major.
const BINARYEN_VERSION: &str = "132.0.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where `cargo xtask` installs the binaryen it builds the client with.
fn tools_bin() -> PathBuf {
    root().join("target/tools/node_modules/.bin")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Numbered steps, each saying what it does and how long it takes, and a summary.
struct Steps {
    total: usize,
    done: Vec<(String, String, Duration)>,
    started: Instant,
}

impl Steps {
    fn new(total: usize) -> Steps {
        Steps {
            total,
            done: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Runs step `what` (`takes`: what to expect, said before it starts); `f` says
    /// what it did ("skipped: …" when there was nothing to do).
    fn step(&mut self, what: &str, takes: &str, f: impl FnOnce() -> Result<String>) -> Result<()> {
        let n = self.done.len() + 1;
        eprintln!("xtask: [{n}/{}] {what}{takes}", self.total);
        let t0 = Instant::now();
        let outcome = f().with_context(|| format!("step {n}/{} ({what}) failed", self.total))?;
        let took = t0.elapsed();
        eprintln!(
            "xtask: [{n}/{}] {what}: {outcome} ({})",
            self.total,
            secs(took)
        );
        self.done.push((what.to_string(), outcome, took));
        Ok(())
    }

    fn summary(&self, last: &str) {
        eprintln!("xtask: ---------------------------------------------------------------");
        for (i, (what, outcome, took)) in self.done.iter().enumerate() {
            eprintln!(
                "xtask: {:>2}. {what:<42} {outcome} ({})",
                i + 1,
                secs(*took)
            );
        }
        eprintln!("xtask: {last}, {} in all", secs(self.started.elapsed()));
    }
}

fn secs(d: Duration) -> String {
    if d.as_secs() >= 60 {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The first line a tool prints for `--version`, or None if it is missing.
fn version_of(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn missing_packages(packages: &[&'static str]) -> Vec<&'static str> {
    packages
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect()
}

fn setup_packages(packages: &[&'static str]) -> Result<String> {
    if version_of("dpkg-query").is_none() {
        eprintln!(
            "xtask: not a Debian-like system; install these yourself: {}",
            packages.join(" ")
        );
        return Ok("skipped: not a Debian-like system".into());
    }
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(format!("skipped: all {} installed", packages.len()));
    }
    if !is_root() {
        bail!(
            "missing system packages; run:\n  sudo apt-get update && sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(format!("installed {}", missing.join(" ")))
}

/// The `wasm-bindgen` crate version in Cargo.lock: the CLI must match it exactly.
fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

fn setup_wasm_target() -> Result<String> {
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let has_wasm = matches!(&targets, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"));
    if has_wasm {
        return Ok("skipped: installed".into());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    Ok("installed".into())
}

fn setup_trunk() -> Result<String> {
    if version_of("trunk").is_some_and(|v| v.contains(TRUNK_VERSION)) {
        return Ok(format!("skipped: trunk {TRUNK_VERSION} installed"));
    }
    run(Command::new(cargo()).args(["install", "trunk", "--version", TRUNK_VERSION, "--locked"]))?;
    Ok(format!("built trunk {TRUNK_VERSION}"))
}

fn setup_wasm_bindgen() -> Result<String> {
    let wb = wasm_bindgen_version()?;
    if version_of("wasm-bindgen").is_some_and(|v| v.contains(&wb)) {
        return Ok(format!("skipped: wasm-bindgen {wb} installed"));
    }
    run(Command::new(cargo()).args(["install", "wasm-bindgen-cli", "--version", &wb]))?;
    Ok(format!("built wasm-bindgen-cli {wb}"))
}

fn setup_binaryen() -> Result<String> {
    let wasm_opt = tools_bin().join("wasm-opt");
    let major = BINARYEN_VERSION
        .split('.')
        .next()
        .unwrap_or(BINARYEN_VERSION);
    let have = version_of(&wasm_opt.to_string_lossy());
    if have.is_some_and(|v| v.contains(&format!("version {major} "))) {
        return Ok(format!("skipped: binaryen {major} installed"));
    }
    if version_of("npm").is_none() {
        bail!("npm is missing; install Node.js and npm (apt-get install nodejs npm)");
    }
    run(Command::new("npm")
        .args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ])
        .arg(root().join("target/tools"))
        .arg(format!("binaryen@{BINARYEN_VERSION}")))?;
    Ok(format!("installed binaryen {BINARYEN_VERSION}"))
}

/// The set-up steps every task starts with ([`SETUP_STEPS`] of them).
fn setup(steps: &mut Steps, packages: &[&'static str]) -> Result<()> {
    steps.step(
        "system packages",
        " (apt, when some are missing: a few minutes)",
        || setup_packages(packages),
    )?;
    steps.step("the wasm32 target", "", setup_wasm_target)?;
    steps.step(
        "trunk",
        " (built from source when missing: about 8 minutes on 2 cores, once)",
        setup_trunk,
    )?;
    steps.step(
        "wasm-bindgen-cli",
        " (built from source when missing: about 2 minutes, once)",
        setup_wasm_bindgen,
    )?;
    steps.step("binaryen (wasm-opt, from npm)", "", setup_binaryen)
}

const SETUP_STEPS: usize = 5;

/// Builds the client into a staging folder, then copies into `dist/` only what changed:
/// an unchanged client leaves `dist/` untouched, so the server (which embeds it) is not
/// rebuilt.
fn build_client() -> Result<String> {
    // Trunk takes wasm-opt from PATH: ours first.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(tools_bin()).chain(std::env::split_paths(&path)))
            .context("build PATH")?;
    let staging = root().join("target/dist-staging");
    run(Command::new("trunk")
        .args(["build", "--release", "--offline", "--dist"])
        .arg(&staging)
        .env("PATH", path)
        .current_dir(root()))?;
    let changed = sync_dir(&staging, &root().join("dist")).context("update dist/")?;
    Ok(if changed == 0 {
        "unchanged (dist/ left alone)".into()
    } else {
        format!("{changed} files updated in dist/")
    })
}

/// Makes `to` hold exactly `from`'s files, writing only those whose bytes differ.
/// Returns how many files it wrote or removed.
fn sync_dir(from: &Path, to: &Path) -> Result<usize> {
    std::fs::create_dir_all(to)?;
    let mut changed = 0;
    let mut wanted = std::collections::HashSet::new();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        wanted.insert(name.clone());
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            changed += sync_dir(&src, &dst)?;
            continue;
        }
        let bytes = std::fs::read(&src)?;
        if std::fs::read(&dst).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&dst, &bytes)?;
            changed += 1;
        }
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !wanted.contains(&entry.file_name()) {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
            changed += 1;
        }
    }
    Ok(changed)
}

/// A child process stopped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's pictures, made anew: a real X desktop (Xvfb with an xterm) streamed by
/// the release server, photographed by headless Chromium as the control page, the
/// view-only page (its badge and status line) and the script-free `/mjpeg` page.
fn screenshots() -> Result<String> {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x720x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start Xvfb")?;
    let mut line = String::new();
    std::io::BufReader::new(xvfb.stdout.take().context("Xvfb stdout")?)
        .read_line(&mut line)
        .context("read Xvfb's display")?;
    let _xvfb = Child(xvfb);
    let display = format!(":{}", line.trim());
    let _xterm = Child(
        Command::new("xterm")
            .args([
                "-geometry",
                "110x34+40+30",
                "-fa",
                "Monospace",
                "-fs",
                "11",
                "-e",
                "sh -c 'echo A desktop streamed by deskcast; echo; ls -l /usr/share/doc | head -28; sleep 120'",
            ])
            .env("DISPLAY", &display)
            .stderr(Stdio::null())
            .spawn()
            .context("start xterm")?,
    );
    std::thread::sleep(Duration::from_secs(2));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (control, view) = ("screenshots-control-0001", "screenshots-view-00000001");
    let _server = Child(
        Command::new(release_binary())
            .args([
                "--port",
                &port.to_string(),
                "--token",
                control,
                "--view-token",
                view,
            ])
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start deskcast")?,
    );
    std::thread::sleep(Duration::from_secs(2));
    let out = root().join("docs/images");
    std::fs::create_dir_all(&out)?;
    let shots = [
        ("control.png", format!("/?token={control}")),
        ("view-only.png", format!("/?token={view}")),
        ("mjpeg.png", format!("/mjpeg?token={view}")),
    ];
    for (name, path) in &shots {
        run(Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--hide-scrollbars",
                "--window-size=1280,800",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--screenshot={}", out.join(name).display()))
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .stderr(Stdio::null()))?;
    }
    Ok(format!("{} pictures in docs/images", shots.len()))
}

/// What a second `cargo xtask run` does, checked: the client build leaves `dist/`
/// alone, so building the server compiles and links nothing.
fn second_build_is_fresh() -> Result<String> {
    let build = || -> Result<String> {
        let out = Command::new(cargo())
            .args(["build", "-p", "deskcast-server", "--bin", "deskcast"])
            .current_dir(root())
            .output()
            .context("run cargo build")?;
        if !out.status.success() {
            bail!(
                "cargo build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).to_string())
    };
    build()?; // settles the build (tests built with dev-dependencies' features)
    let client = build_client()?;
    if !client.starts_with("unchanged") {
        bail!("building the same client again changed dist/: {client}");
    }
    let said = build()?;
    if said.contains("Compiling deskcast-server") {
        bail!("the server was rebuilt although nothing changed:\n{said}");
    }
    Ok("client unchanged, server fresh".into())
}

/// The release server, built (what `run` starts and `screenshots` photographs).
fn build_release_server() -> Result<String> {
    cargo_in_root(
        &[
            "build",
            "--release",
            "-p",
            "deskcast-server",
            "--bin",
            "deskcast",
        ],
        &[],
    )
}

/// Where [`build_release_server`] puts the binary.
fn release_binary() -> PathBuf {
    root().join("target/release/deskcast")
}

/// `cargo <args> <rest>` in the workspace, as one step's work.
fn cargo_in_root(args: &[&str], rest: &[String]) -> Result<String> {
    run(Command::new(cargo())
        .args(args)
        .args(rest)
        .current_dir(root()))?;
    Ok("ok".into())
}

fn main() {
    // One message for a failure, not a second copy with a backtrace: the command that
    // failed has printed its own output already.
    if let Err(e) = task() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn task() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, rest)) => (
            t.as_str(),
            rest.iter()
                .skip_while(|a| *a == "--")
                .cloned()
                .collect::<Vec<_>>(),
        ),
        None => ("help", Vec::new()),
    };
    match task {
        "setup" => {
            let mut steps = Steps::new(SETUP_STEPS);
            setup(&mut steps, PACKAGES)?;
            steps.summary("set up");
            Ok(())
        }
        "run" => {
            let mut steps = Steps::new(SETUP_STEPS + 2);
            setup(&mut steps, PACKAGES)?;
            steps.step(
                "the browser client (trunk)",
                " (a minute the first time)",
                build_client,
            )?;
            steps.step(
                "the server (release)",
                " (about 5 minutes the first time, seconds when nothing changed)",
                build_release_server,
            )?;
            steps.summary("ready; starting deskcast");
            let binary = release_binary();
            let status = Command::new(&binary)
                .args(&rest)
                .status()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            if !status.success() {
                // deskcast said why itself.
                std::process::exit(status.code().unwrap_or(1));
            }
            Ok(())
        }
        "test" => {
            let mut steps = Steps::new(SETUP_STEPS + 6);
            setup(&mut steps, PACKAGES)?;
            steps.step("the browser client (trunk)", "", build_client)?;
            steps.step("formatting (cargo fmt --check)", "", || {
                cargo_in_root(&["fmt", "--all", "--check"], &[])
            })?;
            steps.step("lints (clippy)", "", || {
                cargo_in_root(
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                    &[],
                )
            })?;
            steps.step("lints of the client for wasm32 (clippy)", "", || {
                cargo_in_root(
                    &[
                        "clippy",
                        "-p",
                        "deskcast-client",
                        "--target",
                        "wasm32-unknown-unknown",
                        "--",
                        "-D",
                        "warnings",
                    ],
                    &[],
                )
            })?;
            steps.step(
                "every test (cargo test --workspace)",
                " (several minutes: real X servers, Chromium, ffmpeg)",
                || cargo_in_root(&["test", "--workspace"], &rest),
            )?;
            steps.step(
                "a second build with nothing changed (no server re-link)",
                "",
                second_build_is_fresh,
            )?;
            steps.summary("all passed");
            Ok(())
        }
        "screenshots" => {
            let mut steps = Steps::new(SETUP_STEPS + 3);
            setup(&mut steps, PACKAGES)?;
            steps.step("the browser client (trunk)", "", build_client)?;
            steps.step("the server (release)", "", build_release_server)?;
            steps.step(
                "screenshots into docs/images (Xvfb, xterm, headless Chromium)",
                "",
                screenshots,
            )?;
            steps.summary("done");
            Ok(())
        }
        "bench" => {
            let mut steps = Steps::new(SETUP_STEPS + 3);
            setup(&mut steps, PACKAGES)?;
            steps.step(
                "the peers measured against (TigerVNC, websockify, noVNC)",
                "",
                || setup_packages(BENCH_PACKAGES),
            )?;
            steps.step("the browser client (trunk)", "", build_client)?;
            steps.step("the benchmarks (they print numbers)", "", || {
                cargo_in_root(&["bench", "-p", "deskcast-server"], &rest)
            })?;
            steps.summary("done");
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <run [-- server args] | test | bench | setup | screenshots>"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_client_leaves_dist_untouched() {
        let base = std::env::temp_dir().join(format!("xtask-sync-{}", std::process::id()));
        let (from, to) = (base.join("staging"), base.join("dist"));
        std::fs::create_dir_all(from.join("snippets")).expect("dirs");
        std::fs::write(from.join("index.html"), "<html>").expect("write");
        std::fs::write(from.join("snippets/a.js"), "a").expect("write");
        assert_eq!(
            sync_dir(&from, &to).expect("sync"),
            2,
            "a first build writes all"
        );
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .expect("mtime")
        };
        let before = stamp(&to.join("index.html"));
        std::thread::sleep(Duration::from_millis(20));
        // The same build again (trunk rewrites its output): nothing is touched.
        std::fs::write(from.join("index.html"), "<html>").expect("write");
        assert_eq!(sync_dir(&from, &to).expect("sync"), 0);
        assert_eq!(stamp(&to.join("index.html")), before);
        // A changed file is written, a gone one removed.
        std::fs::write(from.join("index.html"), "<html lang=en>").expect("write");
        std::fs::remove_file(from.join("snippets/a.js")).expect("rm");
        assert_eq!(sync_dir(&from, &to).expect("sync"), 2);
        assert!(!to.join("snippets/a.js").exists());
        let _ = std::fs::remove_dir_all(&base);
    }
}
