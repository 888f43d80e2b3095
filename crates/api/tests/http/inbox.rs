//! The real mail path the harness starts (`start_mail_relay`): Postfix on
//! `SMTP_RELAY_PORT` delivering every domain into a catch-all Dovecot on
//! `INBOX_IMAP_PORT`, where any address logs in with `inbox`. A small
//! IMAP client reads what arrived; the `notify.email` jobs run here the
//! way a worker runs them.

use std::time::Duration;

use mpanel_domain::notify::{DeliverEmail, EMAIL_JOB};
use mpanel_services::notify::{MailSettings, Mailer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{MAIL_FROM, TestApp};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests under `bash scripts/test.sh` (it starts the mail relay)")
    })
}

/// A mailer sending through the harness's Postfix.
pub fn relay_mailer() -> Mailer {
    let url = format!("smtp://127.0.0.1:{}", env("SMTP_RELAY_PORT"));
    Mailer::new(MailSettings::new(Some(&url), MAIL_FROM).unwrap()).unwrap()
}

/// A mailer with no `smtp_url`.
pub fn unconfigured_mailer() -> Mailer {
    Mailer::new(MailSettings::new(None, MAIL_FROM).unwrap()).unwrap()
}

/// The payloads of the pending `notify.email` jobs, oldest first.
pub async fn mail_jobs(app: &TestApp) -> Vec<DeliverEmail> {
    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(EMAIL_JOB.into()),
        ..Default::default()
    };
    let mut jobs: Vec<DeliverEmail> = app
        .store
        .list_jobs(&filter, None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|j| serde_json::from_value(j.payload).unwrap())
        .collect();
    jobs.reverse();
    jobs
}

/// Runs each pending `notify.invoice_copies` job (the billing run's
/// customers' copies) once, as a worker's attempt would; answers how many
/// ran.
pub async fn write_run_copies(app: &TestApp) -> usize {
    use mpanel_services::notify::invoice_issued::{COPIES_JOB, InvoiceCopies, write_copies};
    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(COPIES_JOB.into()),
        state: Some(mpanel_domain::jobs::JobState::Pending),
        ..Default::default()
    };
    let jobs = app.store.list_jobs(&filter, None, 200).await.unwrap();
    for job in &jobs {
        let copies: InvoiceCopies = serde_json::from_value(job.payload.clone()).unwrap();
        write_copies(&app.store, app.clock.as_ref(), &copies)
            .await
            .unwrap();
    }
    jobs.len()
}

/// Runs each `notify.email` job once, as a worker's attempt would;
/// answers what each came to.
pub async fn run_mail_jobs(app: &TestApp, mailer: &Mailer) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for job in mail_jobs(app).await {
        let done =
            mpanel_services::notify::deliver(&app.store, app.clock.as_ref(), mailer, &job, false)
                .await;
        out.push(done.map_err(|e| e.to_string()));
    }
    out
}

/// One IMAP session, logged in as `address`, INBOX selected.
pub struct Imap {
    reader: BufReader<TcpStream>,
    tag: u32,
}

impl Imap {
    pub async fn login(address: &str) -> Self {
        let port: u16 = env("INBOX_IMAP_PORT").parse().unwrap();
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut imap = Self {
            reader: BufReader::new(stream),
            tag: 0,
        };
        let greeting = imap.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        imap.command(&format!("LOGIN \"{address}\" \"inbox\""))
            .await;
        imap.command("SELECT INBOX").await;
        imap
    }

    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).await.unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Sends a command; answers its untagged lines and literals, raw.
    async fn command(&mut self, command: &str) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{command}: {line}");
                return out;
            }
            out.extend_from_slice(line.as_bytes());
            if let Some(size) = literal_size(&line) {
                let mut literal = vec![0u8; size];
                self.reader.read_exact(&mut literal).await.unwrap();
                out.extend_from_slice(&literal);
            }
        }
    }

    /// The sequence numbers of the messages in INBOX.
    pub async fn search_all(&mut self) -> Vec<u32> {
        let raw = String::from_utf8(self.command("SEARCH ALL").await).unwrap();
        raw.lines()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|n| n.parse().unwrap()))
            .collect()
    }

    /// The message as it arrived (RFC 822 bytes).
    pub async fn fetch(&mut self, seq: u32) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{tag} FETCH {seq} RFC822\r\n").as_bytes())
            .await
            .unwrap();
        let mut message = None;
        loop {
            let line = self.line().await;
            if line.starts_with(&format!("{tag} ")) {
                assert!(line[tag.len() + 1..].starts_with("OK"), "{line}");
                return message.expect("a literal with the message");
            }
            if let Some(size) = literal_size(&line) {
                let mut literal = vec![0u8; size];
                self.reader.read_exact(&mut literal).await.unwrap();
                message = Some(literal);
            }
        }
    }
}

fn literal_size(line: &str) -> Option<usize> {
    let line = line.trim_end();
    let open = line.rfind('{')?;
    line.strip_suffix('}')?[open + 1..].parse().ok()
}

/// The messages in `address`'s INBOX once there are at least `count`
/// (Postfix hands them to Dovecot a moment after it accepts them; waits
/// at most 20 s).
pub async fn messages(address: &str, count: usize) -> Vec<Vec<u8>> {
    for _ in 0..200 {
        let mut imap = Imap::login(address).await;
        let seqs = imap.search_all().await;
        if seqs.len() >= count {
            let mut out = Vec::new();
            for seq in seqs {
                out.push(imap.fetch(seq).await);
            }
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} messages arrived for {address}");
}

/// The text of a PDF, read back with `pdftotext` (poppler-utils).
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attachment.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (poppler-utils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the message's DKIM signature verifies with dkimpy (Debian's
/// python3-dkim), the key looked up at `record_name` answering `txt`.
pub fn dkim_verifies(message: &[u8], record_name: &str, txt: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message).unwrap();
    let script = r#"
import sys, dkim
msg = open(sys.argv[1], 'rb').read()
name, txt = sys.argv[2].encode(), sys.argv[3].encode()
def dns(qname, timeout=5):
    return txt if qname.rstrip(b'.') == name else None
sys.exit(0 if dkim.verify(msg, dnsfunc=dns) else 1)
"#;
    // Debian's interpreter: python3-dkim is installed for it.
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(record_name)
        .arg(txt)
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        eprintln!("dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}
