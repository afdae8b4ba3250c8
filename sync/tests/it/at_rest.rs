//! The at-rest key file: made with mode 0600 and never overwritten; refused when its group or
//! others may read it, or when it has the wrong length, with the path and mode in the message.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use busloket_sync::at_rest::{AtRestError, AtRestKey};

#[test]
fn a_generated_key_file_is_private_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("at-rest.key");
    let key = AtRestKey::generate_file(&path).unwrap();
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), 32);
    let loaded = AtRestKey::load_file(&path).unwrap();
    let sealed = key.seal(b"place", b"data");
    assert_eq!(loaded.open(b"place", &sealed).unwrap(), b"data");

    let again = AtRestKey::generate_file(&path).unwrap_err();
    assert!(matches!(again, AtRestError::Exists { .. }), "{again}");
    assert_eq!(
        AtRestKey::load_file(&path)
            .unwrap()
            .open(b"place", &sealed)
            .unwrap(),
        b"data",
        "not overwritten"
    );
}

#[test]
fn a_key_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("at-rest.key");
    AtRestKey::generate_file(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let error = AtRestKey::load_file(&path).unwrap_err();
        assert!(
            matches!(error, AtRestError::Permissions { mode: found, .. } if found == mode),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string())
                && message.contains(&format!("{mode:04o}")),
            "{message}"
        );
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(
        AtRestKey::load_file(&path).is_ok(),
        "owner read-only is fine (systemd credentials are 0400)"
    );
}

#[test]
fn a_key_file_of_the_wrong_length_or_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.key");
    fs::write(&path, [1u8; 31]).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        AtRestKey::load_file(&path),
        Err(AtRestError::Length { found: 31, .. })
    ));
    fs::write(&path, [1u8; 64]).unwrap();
    assert!(matches!(
        AtRestKey::load_file(&path),
        Err(AtRestError::Length { found: 64, .. })
    ));
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        AtRestKey::load_file(dir.path()),
        Err(AtRestError::NotAFile { .. })
    ));
    assert!(matches!(
        AtRestKey::load_file(&dir.path().join("absent")),
        Err(AtRestError::Read { .. })
    ));
}
