//! Embeds the trunk-built client (`../dist`) into the binary, if it was built.
//!
//! Writes `$OUT_DIR/assets.rs`: a table of (path, content type, bytes). With no
//! `dist/` the table is empty and `GET /` explains how to build the client.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The bodies of the `<script>` elements that have no `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (tag, after) = rest.split_once('>')?;
        let (body, _) = after.split_once("</script>")?;
        (!tag.contains("src=")).then_some(body)
    })
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut code = String::from("/// Client assets: (URL path without leading slash, content type, bytes).\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for file in &files {
        let rel = file.strip_prefix(&dist).expect("file is under dist");
        let url = rel.to_string_lossy().replace('\\', "/");
        let abs = file.canonicalize().expect("dist file exists");
        writeln!(
            code,
            "    ({url:?}, {:?}, include_bytes!({:?})),",
            content_type(file),
            abs.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    // Trunk writes one inline module script into index.html; the CSP allows exactly it.
    let index = std::fs::read_to_string(dist.join("index.html")).unwrap_or_default();
    let hashes: String = inline_scripts(&index)
        .map(|body| {
            format!(
                " 'sha256-{}'",
                STANDARD.encode(Sha256::digest(body.as_bytes()))
            )
        })
        .collect();
    writeln!(
        code,
        "/// CSP sources for index.html's inline scripts (each a ` 'sha256-…'`).\npub static CSP_SCRIPT_HASHES: &str = {hashes:?};"
    )
    .expect("write to string");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(out, code).expect("write assets.rs");
}
