use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use super::*;

#[test]
fn write_then_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bt");
    atomic_write(&p, b"abc\n", WriteMode::default()).unwrap();
    assert_eq!(read_own(&p, 100).unwrap().unwrap(), b"abc\n");
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    atomic_write(&p, b"def\n", WriteMode::default()).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"def\n");
    // Only the target remains: no temp file.
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn a_foreign_secret_gets_its_own_fix() {
    let token = FileError::ForeignOwner {
        path: "/tmp/bt_u1000".into(),
        uid: 4242,
    };
    assert!(token.to_string().contains("BEARER_TOKEN_FILE"), "{token}");
    let secret = token.secret().to_string();
    assert!(!secret.contains("BEARER_TOKEN_FILE"), "{secret}");
    assert!(
        secret.contains("chown ") && secret.contains("/tmp/bt_u1000"),
        "{secret}"
    );
}

#[test]
fn fifos_are_refused_without_waiting() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("fifo");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(open_regular(&p), Err(FileError::NotRegular(_))));
    assert!(matches!(read_own(&p, 10), Err(FileError::NotRegular(_))));
    let f = d.path().join("f");
    fs::write(&f, "12345").unwrap();
    assert_eq!(
        &*read_capped(&f, open_regular(&f).unwrap(), 5).unwrap(),
        b"12345"
    );
    assert!(matches!(
        read_capped(&f, open_regular(&f).unwrap(), 4),
        Err(FileError::TooLarge { .. })
    ));
}

#[test]
fn refuses_symlinks() {
    let d = tempfile::tempdir().unwrap();
    let victim = d.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let link = d.path().join("bt");
    symlink(&victim, &link).unwrap();
    assert!(matches!(read_own(&link, 100), Err(FileError::Symlink(_))));
    assert!(matches!(
        atomic_write(&link, b"x", WriteMode::default()),
        Err(FileError::Symlink(_))
    ));
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn caps_reads() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big");
    fs::write(&p, vec![b'a'; 1000]).unwrap();
    assert!(matches!(read_own(&p, 999), Err(FileError::TooLarge { .. })));
    assert!(read_own(&d.path().join("none"), 10).unwrap().is_none());
}

#[test]
fn failed_write_leaves_no_temp() {
    let d = tempfile::tempdir().unwrap();
    // A directory at the target makes the rename fail after the temp file exists.
    let target = d.path().join("bt");
    fs::create_dir(&target).unwrap();
    assert!(atomic_write(&target, b"x", WriteMode::default()).is_err());
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn stale_temps_are_removed() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("bt");
    fs::write(d.path().join(".bt.tmp.0123456789abcdef"), "partial").unwrap();
    fs::write(d.path().join("other"), "keep").unwrap();
    remove_stale_temps(&target);
    let names: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("other")]);
}

#[test]
fn lock_excludes_and_times_out() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("l");
    let held = lock(&p, Instant::now() + Duration::from_secs(1)).unwrap();
    let t = Instant::now();
    let second = lock(&p, Instant::now() + Duration::from_millis(100));
    assert!(matches!(second, Err(FileError::LockTimeout(_))));
    assert!(t.elapsed() >= Duration::from_millis(50));
    drop(held);
    lock(&p, Instant::now() + Duration::from_millis(100)).unwrap();
}

#[test]
fn lock_lives_beside_target_only_in_private_dirs() {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let t = d.path().join("bt");
    assert_eq!(lock_path(&t).unwrap(), d.path().join(".bt.lock"));
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let l = lock_path(&t).unwrap();
    assert!(!l.starts_with(d.path()), "{}", l.display());
}
