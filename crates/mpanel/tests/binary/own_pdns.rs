//! A PowerDNS of the test's own (the harness's is shared by tests running
//! in parallel, so it must not be stopped): the same gsqlite3 setup as
//! `scripts/lib/services.sh`, stopped and started again at will, its data
//! kept across restarts.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OwnPdns {
    dir: tempfile::TempDir,
    pub api_port: u16,
    pub dns_port: u16,
    pub key: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnPdns {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Command::new("dpkg")
            .args(["-L", "pdns-backend-sqlite3"])
            .output()
            .unwrap();
        let schema = String::from_utf8_lossy(&files.stdout)
            .lines()
            .find(|l| l.ends_with("/schema.sqlite3.sql") && std::path::Path::new(l).exists())
            .expect("pdns-backend-sqlite3's schema (installed by scripts/test.sh)")
            .to_owned();
        let db = dir.path().join("pdns.sqlite3");
        let loaded = Command::new("sqlite3")
            .arg(&db)
            .stdin(std::fs::File::open(&schema).unwrap())
            .status()
            .unwrap();
        assert!(loaded.success());
        let (api_port, dns_port) = (free_port(), free_port());
        let key = format!("own-key-{}", std::process::id());
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={}\nlocal-address=127.0.0.1\nlocal-port={dns_port}\n\
             api=yes\napi-key={key}\nwebserver=yes\nwebserver-address=127.0.0.1\n\
             webserver-port={api_port}\nwebserver-allow-from=127.0.0.1\n\
             default-soa-content=ns1.example.net. hostmaster.@ 0 10800 3600 604800 3600\n\
             cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\nsecurity-poll-suffix=\n",
            db.display()
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).unwrap();
        let mut pdns = Self {
            dir,
            api_port,
            dns_port,
            key,
            child: None,
        };
        pdns.resume();
        pdns
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// Starts it (again) and waits until its API and DNS ports answer.
    pub fn resume(&mut self) {
        let dir = self.dir.path().to_str().unwrap();
        let log = std::fs::File::create(self.dir.path().join("pdns.log")).unwrap();
        let child = Command::new("pdns_server")
            .arg(format!("--config-dir={dir}"))
            .arg(format!("--socket-dir={dir}"))
            .args([
                "--guardian=no",
                "--daemon=no",
                "--disable-syslog",
                "--write-pid=no",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pdns_server (installed by scripts/test.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [self.api_port, self.dns_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "PowerDNS did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the process (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `dig +short A name` against it.
    pub fn dig(&self, name: &str) -> String {
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &self.dns_port.to_string()])
            .args(["+short", "+time=2", "+tries=1", "A", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnPdns {
    fn drop(&mut self) {
        self.stop();
    }
}
