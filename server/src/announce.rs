//! What the server prints once it listens: the ready URLs, and warnings about risky
//! settings.

use std::net::SocketAddr;

use crate::config::Config;
use crate::tls::Tls;

/// Prints the ready URLs once, and warns about risky settings.
pub fn announce(config: &Config, addr: SocketAddr, tls: Option<&Tls>) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Bound to all addresses: show loopback; from elsewhere use this machine's address.
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let base = format!("{scheme}://{shown}");
    if !addr.ip().is_loopback() {
        println!(
            "deskcast listens on {addr}: reachable from other machines (use this machine's address there)"
        );
        if tls.is_none() {
            tracing::warn!(
                "TLS is off on a non-loopback address: tokens and the screen cross the network \
                 in clear text; add --tls-self-signed or --tls-cert/--tls-key"
            );
        }
    }
    if let Some(tls) = tls {
        println!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint);
    }
    match &config.auth {
        Some(tokens) => {
            println!(
                "deskcast is streaming. Control: {base}/?token={}",
                tokens.control
            );
            println!("View only:   {base}/?token={}", tokens.view);
            println!("No script:   {base}/mjpeg?token={}", tokens.view);
        }
        None => {
            eprintln!(
                "!!! AUTHENTICATION IS OFF (--no-auth): every program and every user on this"
            );
            eprintln!("!!! machine can see the screen and control mouse and keyboard at {base}/");
            println!("deskcast is streaming; open {base}/ (view only, no script: {base}/mjpeg)");
        }
    }
}
