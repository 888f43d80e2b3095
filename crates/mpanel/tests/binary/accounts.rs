//! First start and the `admin` commands that make tenants and users.

use crate::support::*;

#[test]
fn admin_creates_a_tenant_once() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];
    let args = [
        "admin",
        "create-tenant",
        "--slug",
        "acme",
        "--name",
        "Acme Hosting",
        "--timezone",
        "Europe/Berlin",
        "--currency",
        "EUR",
    ];
    let out = run(dir.path(), &args, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("created tenant acme") && said.contains("Europe/Berlin"),
        "{said}"
    );

    let out = run(dir.path(), &args, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-tenant",
            "--slug",
            "Bad Slug",
            "--name",
            "X",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--slug"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn first_start_creates_the_first_tenant_and_admin_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Without an admin e-mail address: no account at all.
    let db = test_database();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
        ],
    ));
    let addr = server.address();
    assert_eq!(
        login(&addr, "default", "admin@example.test", "whatever password"),
        401
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);

    // With one and a password: that admin can log in.
    let db = test_database();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_BOOTSTRAP_TENANT", "acme"),
            ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@acme.test"),
            (
                "MPANEL_BOOTSTRAP_ADMIN_PASSWORD",
                "a long bootstrap password",
            ),
        ],
    ));
    let addr = server.address();
    assert_eq!(
        login(
            &addr,
            "acme",
            "admin@acme.test",
            "a long bootstrap password"
        ),
        200
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    assert!(!server.log().contains("a long bootstrap password"));
}

#[test]
fn a_generated_bootstrap_password_is_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_database();
    let env = [
        ("MPANEL_DATABASE_URL", db.url()),
        ("MPANEL_LISTEN", "127.0.0.1:0"),
        ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@example.test"),
    ];
    let mut cmd = mpanel(dir.path(), &["serve"], &env);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut password = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(rest) = line.split("with password: ").nth(1) {
            password = Some(rest.trim().to_owned());
            break;
        }
    }
    let password = password.expect("the generated password is printed");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mut server = Running { child, lines };
    let addr = server.address();
    assert_eq!(
        login(&addr, "default", "admin@example.test", &password),
        200
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    assert!(
        !server.log().contains(&password),
        "the password is never logged"
    );

    // A second start prints nothing: the tenant exists.
    let out = run(dir.path(), &["migrate"], &env);
    assert!(out.status.success());
}

#[test]
fn admin_creates_users_with_a_role() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [("MPANEL_DATABASE_URL", db.url())];
    let out = run(
        dir.path(),
        &["admin", "create-tenant", "--slug", "acme", "--name", "Acme"],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "ops@acme.test",
            "--role",
            "SUPER_ADMIN",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("created user ops@acme.test") && said.contains("SUPER_ADMIN"),
        "{said}"
    );
    let password = said
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("a generated password")
        .to_owned();

    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
        ],
    ));
    let addr = server.address();
    assert_eq!(login(&addr, "acme", "ops@acme.test", &password), 200);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);

    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "x@acme.test",
            "--role",
            "ROOT",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--role"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--tenant",
            "nope",
            "--email",
            "x@acme.test",
            "--role",
            "CUSTOMER",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--tenant"),
        "{}",
        text(&out.stderr)
    );
}
