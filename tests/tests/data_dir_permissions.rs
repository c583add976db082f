//! An existing `data_dir` that other users may reach is tightened to 0700 when it holds nothing
//! but diagd's socket; one that holds other files is refused with an error saying what to do.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use diag_tests::{Diagd, TempDir, request_unix, run_diagd, wait_for};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn config(dir: &TempDir, data_dir: &std::path::Path) -> String {
    let path = dir.path().join("diagd.yaml");
    std::fs::write(&path, format!("data_dir: {}\n", data_dir.display())).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_dedicated_data_dir_open_to_others_is_tightened_to_0700() {
    for loose in [0o777, 0o755, 0o701, 0o1777] {
        let dir = TempDir::new("diagd-datadir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // A stale socket of an earlier diagd may be there: still diagd's own.
        drop(std::os::unix::net::UnixListener::bind(data.join("debug.sock")).unwrap());
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(loose)).unwrap();
        let config = config(&dir, &data);
        let diagd = Diagd::start_with("tokio", None, &["--diag-addr", "127.0.0.1:0", "-c", &config]);
        assert_eq!(mode(&data), 0o700, "{loose:o} tightened");
        // Logged before the address is printed; read from the pipe by a thread of its own.
        wait_for("the warning", Duration::from_secs(5), || {
            let err = diagd.stderr();
            if err.contains("data_dir was open to other users; tightened to 0700") { Ok(()) } else { Err(err) }
        });
        assert_eq!(request_unix(&data.join("debug.sock"), "GET", "/healthz", b"").status, 200);
    }
    // A private one is left alone, without a warning.
    let dir = TempDir::new("diagd-datadir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = config(&dir, &data);
    let diagd = Diagd::start_with("tokio", None, &["--diag-addr", "127.0.0.1:0", "-c", &config]);
    assert_eq!(mode(&data), 0o700);
    wait_for("start-up logs", Duration::from_secs(5), || {
        let err = diagd.stderr();
        if err.contains("serving diagnostics") { Ok(()) } else { Err(err) }
    });
    assert!(!diagd.stderr().contains("tightened"), "{}", diagd.stderr());
}

#[test]
fn a_shared_data_dir_open_to_others_is_refused_and_left_alone() {
    let dir = TempDir::new("diagd-datadir-shared");
    let data = dir.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("someone-else.txt"), "not diagd's").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let config = config(&dir, &data);
    let (status, err) = run_diagd(&["start", "--diag-addr", "127.0.0.1:0", "-c", &config]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("data_dir") && err.contains("has mode 1777"), "{err}");
    assert!(err.contains(&format!("chmod 0700 {}", data.display())), "says what to do: {err}");
    assert_eq!(mode(&data), 0o1777, "a shared directory's mode is not touched");
    assert!(!data.join("debug.sock").exists());
}
