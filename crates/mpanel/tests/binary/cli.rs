//! The command line: migrate, configuration layers, bad values, usage.

use crate::support::*;

#[test]
fn migrate_applies_pending_migrations_and_says_what_it_did() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];

    let out = run(dir.path(), &["migrate", "--status"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pending: 1 foundation"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied 1 foundation"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate"], &env);
    assert!(
        text(&out.stdout).contains("up to date, nothing to apply"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["migrate", "--status"], &env);
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn environment_beats_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let status =
        |env: &[(&str, &str)]| text(&run(dir.path(), &["migrate", "--status"], env).stdout);

    assert!(status(&[]).contains("database: sqlite://./data/mpanel.db"));

    std::fs::write(
        dir.path().join("mpanel.toml"),
        "database_url = \"sqlite://./from-file.db\"\n",
    )
    .unwrap();
    assert!(status(&[]).contains("database: sqlite://./from-file.db"));

    let from_env = status(&[("MPANEL_DATABASE_URL", "sqlite://./from-env.db")]);
    assert!(
        from_env.contains("database: sqlite://./from-env.db"),
        "{from_env}"
    );

    std::fs::write(
        dir.path().join("other.toml"),
        "database_url = \"sqlite://./other.db\"\n",
    )
    .unwrap();
    let out = text(
        &run(
            dir.path(),
            &["--config", "other.toml", "migrate", "--status"],
            &[],
        )
        .stdout,
    );
    assert!(out.contains("database: sqlite://./other.db"), "{out}");
    let out = status(&[("MPANEL_CONFIG", "other.toml")]);
    assert!(out.contains("database: sqlite://./other.db"), "{out}");
}

#[test]
fn a_bad_value_stops_start_up_naming_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    /// Arguments, environment, and words the error must contain.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["serve"],
            &[("MPANEL_LISTEN", "not-an-address")],
            &["listen", "MPANEL_LISTEN"],
        ),
        (
            &["serve"],
            &[("MPANEL_LOG_FORMAT", "xml")],
            &["log_format", "MPANEL_LOG_FORMAT"],
        ),
        (
            &["serve"],
            &[("MPANEL_DATABASE_URL", "mysql://db/x")],
            &["database_url", "MPANEL_DATABASE_URL"],
        ),
        (
            &["serve"],
            &[("MPANEL_CORS_ALLOWED_ORIGINS", "*")],
            &["cors_allowed_origins"],
        ),
        (
            &["--config", "missing.toml", "serve"],
            &[],
            &["missing.toml", "does not exist"],
        ),
    ];
    for (args, env, expected) in cases {
        let out = run(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        let err = text(&out.stderr);
        for word in *expected {
            assert!(err.contains(word), "{word:?} missing from: {err}");
        }
    }

    std::fs::write(dir.path().join("bad.toml"), "request_timeout_secs = 0\n").unwrap();
    let out = run(dir.path(), &["--config", "bad.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("request_timeout_secs") && err.contains("bad.toml"),
        "{err}"
    );

    std::fs::write(dir.path().join("typo.toml"), "lissen = \"127.0.0.1:1\"\n").unwrap();
    let out = run(dir.path(), &["--config", "typo.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key \"lissen\"") && err.contains("typo.toml"),
        "{err}"
    );

    // Nothing was started or created.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn unknown_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["frobnicate"][..], &["serve", "--bogus"], &[]] {
        let out = run(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("Usage:"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["worker", "--help"],
        &["migrate", "--help"],
        &["admin", "--help"],
        &["admin", "create-tenant", "--help"],
        &["admin", "create-user", "--help"],
    ] {
        let out = run(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}
