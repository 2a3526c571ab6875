//! The `stella` binary as a user runs it.

use std::process::Command;

pub(crate) fn stella() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stella"))
}

#[test]
fn usage_errors_have_their_own_exit_code_and_a_clear_message() {
    let out = stella()
        .args(["scan", "/nonexistent/image.tar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such OCI layout directory or image tar")
    );

    let out = stella()
        .args(["scan", "x", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = stella()
        .args(["scan", ".", "--platform", "linux"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("os/arch"));
}

#[test]
fn a_file_that_is_not_an_image_is_reported_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, vec![0x42u8; 10_000]).unwrap();
    let out = stella().arg("scan").arg(&junk).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("neither an OCI layout directory nor a docker-archive tar")
    );
    // A FIFO is refused without blocking on it.
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = stella().arg("scan").arg(&fifo).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
}

mod debian;
mod registry;
mod rpm;
mod token;
