//! `secrets_key`: required for a production start, generated (mode 0600)
//! and reused for the embedded first-run default.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[test]
fn serve_and_worker_on_postgres_refuse_to_start_without_secrets_key() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the check comes before any connection.
    let env = [(
        "MPANEL_DATABASE_URL",
        "postgres://mpanel@127.0.0.1:9/mpanel",
    )];
    for args in [&["serve"][..], &["worker"][..]] {
        let out = mpanel_without_secrets_key(dir.path(), args, &env)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = text(&out.stderr);
        assert!(
            err.contains("secrets_key is required") && err.contains("MPANEL_SECRETS_KEY"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("cannot open the database"), "{err}");
    }
    // A key that is not 32 bytes of base64 is named too.
    let out = mpanel_without_secrets_key(
        dir.path(),
        &["serve"],
        &[("MPANEL_SECRETS_KEY", "c2hvcnQ=")],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("secrets_key") && err.contains("MPANEL_SECRETS_KEY"),
        "{err}"
    );
}

#[test]
fn the_first_run_default_generates_a_private_key_under_data_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("data/secrets.key");
    let start = || {
        Running::start(mpanel_without_secrets_key(
            dir.path(),
            &["serve"],
            &[("MPANEL_LISTEN", "127.0.0.1:0")],
        ))
    };

    let mut server = start();
    let addr = server.address();
    assert_eq!(get(&addr, "/api/health", None).0, 200);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    let log = server.log();
    assert!(
        log.contains("generated one into") && log.contains("secrets.key"),
        "{log}"
    );
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(!log.contains(key.trim()), "the key was logged");

    // The second start reads the same key: the JWT signing key the first
    // run sealed with it opens (with another key, start-up would fail).
    let mut server = start();
    let addr = server.address();
    assert_eq!(get(&addr, "/api/health", None).0, 200);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    let log = server.log();
    assert!(!log.contains("generated one into"), "{log}");
    assert!(log.contains("secrets_key read from"), "{log}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}
