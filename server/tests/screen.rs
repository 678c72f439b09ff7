//! The screen source against a real X server (Xvfb): what is drawn there is what we stream.

mod common;

use common::*;
use deskcast_shared::ServerMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_source_streams_what_xvfb_shows() {
    if !have("Xvfb") || !have("xdotool") {
        return;
    }
    let x = Xvfb::start(640, 480);
    // xcap reads DISPLAY; the other test here runs a child without it, so this is safe.
    std::env::set_var("DISPLAY", &x.display);
    let window = xclient::TestWindow::open(&x.display, 0x3366cc, true);

    let server = TestServer::start(screen_config()).await;
    let (mut ws, hello) = ws_connect(&server).await;
    let ServerMessage::Hello {
        width,
        height,
        input,
        ..
    } = hello
    else {
        panic!("hello first")
    };
    assert_eq!((width, height), (640, 480));
    assert!(input, "a screen takes input");

    let mut picture = Composed::new(640, 480);
    let first = next_update(&mut ws, &mut picture).await;
    assert!(
        first.iter().all(|h| h.is_key()),
        "a keyframe first: {first:?}"
    );
    let px = picture.pixel(320, 240);
    let near = |a: u8, b: u8| a.abs_diff(b) <= 12;
    assert!(
        near(px[0], 0x33) && near(px[1], 0x66) && near(px[2], 0xcc),
        "centre pixel {px:?}, want #3366cc"
    );

    // Change the screen (a click toggles the window's colour): the stream follows.
    x.run("xdotool", &["mousemove", "10", "10", "click", "1"]);
    let events = window.wait_for(std::time::Duration::from_secs(5), |e| !e.is_empty());
    assert!(!events.is_empty(), "the click reached the window");
    assert_eq!(window.color(), 0xcc3300);
    let mut seen = false;
    for _ in 0..60 {
        next_update(&mut ws, &mut picture).await;
        let px = picture.pixel(320, 240);
        if near(px[0], 0xcc) && near(px[1], 0x33) && near(px[2], 0x00) {
            seen = true;
            break;
        }
    }
    assert!(seen, "the new background colour reaches the stream");
    server.shutdown().await;
    drop(window);
    drop(x);
}

#[test]
fn no_display_is_a_clear_start_error() {
    // Run in a child process without DISPLAY, so this test cannot race the one above.
    let exe = env!("CARGO_BIN_EXE_deskcast");
    let out = std::process::Command::new(exe)
        .args(["--port", "0"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run deskcast");
    assert!(
        !out.status.success(),
        "must exit non-zero without a display"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no X display found (DISPLAY is unset)"),
        "{err}"
    );
    assert!(err.contains("--source pattern"), "{err}");
}
