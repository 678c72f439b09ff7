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
