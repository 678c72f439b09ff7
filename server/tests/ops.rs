//! Operations (issue 14): the systemd user unit in the repo is one systemd accepts.

mod common;

use common::*;

/// The unit with its ExecStart pointed at the binary under test (systemd checks that
/// the program exists).
fn unit_for_test(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/deskcast.service"
    ))
    .expect("contrib/deskcast.service");
    assert!(unit.contains("ExecStart=%h/.cargo/bin/deskcast"), "{unit}");
    let path = dir.join("deskcast.service");
    std::fs::write(
        &path,
        unit.replace("%h/.cargo/bin/deskcast", env!("CARGO_BIN_EXE_deskcast")),
    )
    .expect("write");
    path
}

fn verify(unit: &std::path::Path, runtime: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && !said.contains("deskcast.service:"),
        said,
    )
}

#[test]
fn systemd_accepts_the_user_unit() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("deskcast-unit-{}", std::process::id()));
    let runtime = dir.join("run");
    std::fs::create_dir_all(&runtime).expect("dirs");
    let _ = std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    );
    let unit = unit_for_test(&dir);
    let (ok, said) = verify(&unit, &runtime);
    assert!(ok, "systemd-analyze verify: {said}");
    // The check can fail: a unit with a bad directive is refused.
    let bad = dir.join("bad").join("deskcast.service");
    std::fs::create_dir_all(bad.parent().expect("dir")).expect("dir");
    let text = std::fs::read_to_string(&unit).expect("read");
    std::fs::write(
        &bad,
        text.replace("Restart=on-failure", "Restart=sometimes"),
    )
    .expect("write");
    let (ok, said) = verify(&bad, &runtime);
    assert!(!ok, "a bad unit must not pass: {said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/metrics` parsed by the Prometheus project's own parser (Python's
/// `prometheus_client`, OpenMetrics): each sample's name, labels and value.
fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
    let script = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        out = []\n\
        for family in p(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, json.dumps(s.labels, sort_keys=True), s.value])\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(String, String, f64)>>(&out.stdout).expect("json")
}

fn sample(samples: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && l.contains(labels))
        .map(|(_, _, v)| *v)
        .sum()
}

fn have_parser() -> bool {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3-prometheus-client is required under CI=true");
        }
        eprintln!("\n!!! SKIPPING: python3-prometheus-client is not installed !!!\n");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_move_while_watched_and_need_the_token() {
    use common::auth::{get, CONTROL, VIEW};
    if !have_parser() {
        return;
    }
    let config = deskcast_server::Config::pattern(320, 240).with_tokens(CONTROL, VIEW);
    let server = TestServer::start(config).await;
    let (head, _) = get(server.addr, "/metrics", &[]).await;
    assert_eq!(head.status, 401, "behind the token like every route");
    let bearer = format!("Bearer {CONTROL}");
    let scrape = || async {
        let (status, head, body) = http_get(
            server.addr,
            "/metrics",
            &[("Authorization", bearer.as_str())],
        )
        .await;
        assert_eq!(status, 200, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("openmetrics-text"),
            "{head}"
        );
        parse_metrics(&String::from_utf8_lossy(&body))
    };
    let before = scrape().await;
    assert_eq!(sample(&before, "deskcast_source_up", ""), 1.0);
    // A viewer watches for a while.
    let (mut ws, _) = common::auth::ws_open(&server, &format!("?token={VIEW}"), &[])
        .await
        .expect("view");
    for _ in 0..10 {
        next_frame(&mut ws).await;
    }
    // And a wrong token is tried.
    let _ = get(server.addr, "/snapshot.jpg?token=wrong", &[]).await;
    let after = scrape().await;
    for counter in [
        "deskcast_frames_captured_total",
        "deskcast_frames_encoded_total",
        "deskcast_frames_sent_total",
        "deskcast_sent_bytes_total",
        "deskcast_capture_seconds_count",
        "deskcast_encode_seconds_count",
        "deskcast_frame_age_seconds_count",
    ] {
        assert!(
            sample(&after, counter, "") > sample(&before, counter, ""),
            "{counter} moves while a viewer watches: {} → {}",
            sample(&before, counter, ""),
            sample(&after, counter, "")
        );
    }
    assert_eq!(
        sample(
            &after,
            "deskcast_viewers",
            r#""kind": "ws", "role": "view""#
        ),
        1.0,
        "{after:?}"
    );
    assert!(sample(&after, "deskcast_auth_failures_total", "") >= 1.0);
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_capture_path_and_says_what_is_missing() {
    if !have("Xvfb") {
        return;
    }
    let x = Xvfb::start(320, 240);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .arg("--check")
        .env("DISPLAY", &x.display)
        .output()
        .expect("run deskcast --check");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("capture: x11-shm+damage"), "{said}");
    assert!(said.contains("XTEST present"), "{said}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskcast"))
        .arg("--check")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run deskcast --check");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "no display: non-zero");
    assert!(said.contains("MISSING: DISPLAY is unset"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn there_is_no_favicon_404() {
    let server = TestServer::start(deskcast_server::Config::pattern(64, 64)).await;
    let (status, _, _) = http_get(server.addr, "/favicon.ico", &[]).await;
    assert_eq!(status, 204);
    let (_, _, page) = http_get(server.addr, "/mjpeg", &[]).await;
    assert!(String::from_utf8_lossy(&page).contains(r#"<link rel="icon" href="data:,">"#));
    server.shutdown().await;
}
