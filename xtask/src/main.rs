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

fn setup_packages(packages: &[&'static str]) -> Result<()> {
    if version_of("dpkg-query").is_none() {
        eprintln!(
            "xtask: not a Debian-like system; install these yourself: {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
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
        .env("DEBIAN_FRONTEND", "noninteractive"))
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

fn setup_tools() -> Result<()> {
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let has_wasm = matches!(&targets, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"));
    if !has_wasm {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    if !version_of("trunk").is_some_and(|v| v.contains(TRUNK_VERSION)) {
        run(Command::new(cargo()).args([
            "install",
            "trunk",
            "--version",
            TRUNK_VERSION,
            "--locked",
        ]))?;
    }
    let wb = wasm_bindgen_version()?;
    if !version_of("wasm-bindgen").is_some_and(|v| v.contains(&wb)) {
        run(Command::new(cargo()).args(["install", "wasm-bindgen-cli", "--version", &wb]))?;
    }
    let wasm_opt = tools_bin().join("wasm-opt");
    let major = BINARYEN_VERSION
        .split('.')
        .next()
        .unwrap_or(BINARYEN_VERSION);
    let have = version_of(&wasm_opt.to_string_lossy());
    if !have.is_some_and(|v| v.contains(&format!("version {major} "))) {
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
    }
    Ok(())
}

fn setup() -> Result<()> {
    setup_packages(PACKAGES)?;
    setup_tools()
}

fn build_client() -> Result<()> {
    // Trunk takes wasm-opt from PATH: ours first.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(tools_bin()).chain(std::env::split_paths(&path)))
            .context("build PATH")?;
    run(Command::new("trunk")
        .args(["build", "--release", "--offline"])
        .env("PATH", path)
        .current_dir(root()))
}

fn main() -> Result<()> {
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
        "setup" => setup(),
        "run" => {
            setup()?;
            build_client()?;
            run(Command::new(cargo())
                .args([
                    "run",
                    "--release",
                    "-p",
                    "deskcast-server",
                    "--bin",
                    "deskcast",
                    "--",
                ])
                .args(&rest)
                .current_dir(root()))
        }
        "test" => {
            setup()?;
            build_client()?;
            run(Command::new(cargo())
                .args(["fmt", "--all", "--check"])
                .current_dir(root()))?;
            run(Command::new(cargo())
                .args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(root()))?;
            run(Command::new(cargo())
                .args([
                    "clippy",
                    "-p",
                    "deskcast-client",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(root()))?;
            run(Command::new(cargo())
                .args(["test", "--workspace"])
                .args(&rest)
                .current_dir(root()))
        }
        "bench" => {
            setup()?;
            setup_packages(BENCH_PACKAGES)?;
            build_client()?;
            run(Command::new(cargo())
                .args(["bench", "-p", "deskcast-server"])
                .args(&rest)
                .current_dir(root()))
        }
        _ => {
            eprintln!("usage: cargo xtask <run [-- server args] | test | bench | setup>");
            Ok(())
        }
    }
}
