//! `SmtpSink`: a local SMTP server on 127.0.0.1:0 that speaks enough SMTP (EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) to accept and record messages, and can be told
//! to refuse the next N mails with a 4xx (or 5xx) answer to MAIL FROM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body, dots undone).
    pub data: String,
}

impl Mail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            let Some((n, v)) = line.split_once(':') else {
                continue;
            };
            if n.eq_ignore_ascii_case(name) {
                let mut v = v.trim().to_string();
                while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                    v.push(' ');
                    v.push_str(next.trim());
                    lines.next();
                }
                return Some(v);
            }
        }
        None
    }

    /// The message with quoted-printable soft breaks and `=XX` escapes undone, so a
    /// test can look for body text whatever transfer encoding was chosen.
    pub fn decoded(&self) -> String {
        let text = self.data.replace("=\r\n", "");
        let mut out = Vec::with_capacity(text.len());
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if b[i] == b'='
                && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Answers to give to the next MAIL FROM commands instead of 250.
    refusals: Vec<String>,
    refused: usize,
}

pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        SmtpSink { port, state }
    }

    /// Refuses the next `n` mails with `451 4.3.0 Try again later`.
    pub fn refuse_next(&self, n: usize) {
        self.refuse_with(n, "451 4.3.0 Try again later");
    }

    /// Refuses the next `n` mails with `answer` (a full SMTP reply line).
    pub fn refuse_with(&self, n: usize, answer: &str) {
        let mut s = self.state.lock().unwrap();
        s.refusals
            .extend(std::iter::repeat_n(answer.to_string(), n));
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// How many MAIL FROM commands were refused.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Waits (up to 20 s) until at least `n` mails arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP sink got {} mails, expected {n}",
                mails.len()
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    out.write_all(b"220 sink.local ESMTP test sink\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.local\r\n250-8BITMIME\r\n250 SMTPUTF8".into()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK".into()
        } else if upper.starts_with("RSET") {
            (from, to) = (String::new(), Vec::new());
            "250 OK".into()
        } else if upper.starts_with("MAIL FROM:") {
            let mut s = state.lock().unwrap();
            if s.refusals.is_empty() {
                from = addr(&cmd["MAIL FROM:".len()..]);
                "250 OK".into()
            } else {
                s.refused += 1;
                s.refusals.remove(0)
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(addr(&cmd["RCPT TO:".len()..]));
            "250 OK".into()
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            state.lock().unwrap().mails.push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 OK queued".into()
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            "502 Command not implemented".into()
        };
        out.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}

/// The address inside `<...>` (parameters after it dropped).
fn addr(s: &str) -> String {
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.split_whitespace().next().unwrap_or("").to_string(),
    }
}
