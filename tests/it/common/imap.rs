//! `FakeImap`: a scripted IMAP server on 127.0.0.1:0 — not a real one (none can run
//! here without installing it). It speaks the subset muninn's imap_folder agent uses,
//! as RFC 3501 words it: the greeting, LOGIN, SELECT/EXAMINE, FETCH <seq> (UID),
//! UID FETCH <set> with UID/FLAGS/RFC822.SIZE/BODY.PEEK[], UID STORE +FLAGS, EXPUNGE,
//! LOGOUT, plain TCP only. Folders and mails live in shared state the test changes and
//! reads (flags set, mails expunged); every command received is recorded.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Mail {
    pub uid: u32,
    pub flags: Vec<String>,
    pub raw: String,
}

#[derive(Debug, Default)]
pub struct Folder {
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub mails: Vec<Mail>,
}

#[derive(Debug, Default)]
pub struct State {
    pub folders: BTreeMap<String, Folder>,
    /// Every command line received (LOGIN's password masked).
    pub commands: Vec<String>,
    pub connections: usize,
}

pub struct FakeImap {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

impl FakeImap {
    /// A server with one user and an empty INBOX (UIDVALIDITY 100).
    pub fn start(user: &str, password: &str) -> FakeImap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let fake = FakeImap { port, state };
        fake.add_folder("INBOX", 100);
        let (st, user, password) = (fake.state.clone(), user.to_string(), password.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, user, password) = (st.clone(), user.clone(), password.clone());
                std::thread::spawn(move || serve(conn, &st, &user, &password));
            }
        });
        fake
    }

    pub fn add_folder(&self, name: &str, uidvalidity: u32) {
        self.state.lock().unwrap().folders.insert(
            name.to_string(),
            Folder {
                uidvalidity,
                next_uid: 1,
                mails: Vec::new(),
            },
        );
    }

    /// Delivers a mail to `folder`; returns its UID.
    pub fn deliver(&self, folder: &str, raw: &str, flags: &[&str]) -> u32 {
        let mut st = self.state.lock().unwrap();
        let f = st.folders.get_mut(folder).unwrap();
        let uid = f.next_uid;
        f.next_uid += 1;
        f.mails.push(Mail {
            uid,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            raw: raw.to_string(),
        });
        uid
    }

    pub fn flags(&self, folder: &str, uid: u32) -> Option<Vec<String>> {
        let st = self.state.lock().unwrap();
        let f = st.folders.get(folder)?;
        f.mails
            .iter()
            .find(|m| m.uid == uid)
            .map(|m| m.flags.clone())
    }

    pub fn uids(&self, folder: &str) -> Vec<u32> {
        let st = self.state.lock().unwrap();
        st.folders[folder].mails.iter().map(|m| m.uid).collect()
    }

    pub fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }
}

/// An IMAP astring argument: quoted (with \" and \\ escapes) or an atom.
fn args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut a = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => a.extend(chars.next()),
                    '"' => break,
                    _ => a.push(c),
                }
            }
            out.push(a);
        } else if c == '(' {
            // A parenthesized list is one argument.
            let mut a = String::new();
            for c in chars.by_ref() {
                a.push(c);
                if c == ')' {
                    break;
                }
            }
            out.push(a);
        } else {
            let mut a = String::new();
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                a.push(c);
                chars.next();
            }
            out.push(a);
        }
    }
    out
}

/// The UIDs `set` (`n`, `a:b`, `a:*`, comma lists) names, `*` being the largest UID.
fn uid_set(set: &str, mails: &[Mail]) -> Vec<u32> {
    let max = mails.iter().map(|m| m.uid).max().unwrap_or(0);
    let num = |s: &str| {
        if s == "*" {
            max
        } else {
            s.parse().unwrap_or(0)
        }
    };
    let mut out = Vec::new();
    for part in set.split(',') {
        let (lo, hi) = match part.split_once(':') {
            Some((a, b)) => (num(a), num(b)),
            None => (num(part), num(part)),
        };
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        out.extend(mails.iter().map(|m| m.uid).filter(|u| *u >= lo && *u <= hi));
    }
    out
}

fn serve(conn: TcpStream, st: &Mutex<State>, user: &str, password: &str) {
    st.lock().unwrap().connections += 1;
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let _ = w.write_all(b"* OK [CAPABILITY IMAP4rev1] fake IMAP ready\r\n");
    let mut selected: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let text = line.trim_end().to_string();
        let (tag, rest) = text.split_once(' ').unwrap_or((&text, ""));
        let mut a = args(rest);
        let mut cmd = if a.is_empty() {
            String::new()
        } else {
            a.remove(0).to_uppercase()
        };
        if cmd == "UID" && !a.is_empty() {
            cmd = format!("UID {}", a.remove(0).to_uppercase());
        }
        let recorded = if cmd == "LOGIN" {
            format!("{tag} LOGIN {} ***", a.first().cloned().unwrap_or_default())
        } else {
            text.clone()
        };
        let mut state = st.lock().unwrap();
        state.commands.push(recorded);
        let mut out = String::new();
        let done = match cmd.as_str() {
            "LOGIN" if a.len() == 2 && a[0] == user && a[1] == password => {
                format!("{tag} OK LOGIN completed")
            }
            "LOGIN" => format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"),
            "SELECT" | "EXAMINE" => match a.first().and_then(|n| state.folders.get(n)) {
                Some(f) => {
                    out.push_str("* FLAGS (\\Seen \\Deleted)\r\n");
                    out.push_str(&format!("* {} EXISTS\r\n* 0 RECENT\r\n", f.mails.len()));
                    out.push_str(&format!(
                        "* OK [UIDVALIDITY {}] UIDs valid\r\n",
                        f.uidvalidity
                    ));
                    out.push_str(&format!("* OK [UIDNEXT {}] next\r\n", f.next_uid));
                    selected = a.first().cloned();
                    format!("{tag} OK [READ-WRITE] {cmd} completed")
                }
                None => format!("{tag} NO no such mailbox"),
            },
            "FETCH" | "UID FETCH" | "UID STORE" | "EXPUNGE" if selected.is_none() => {
                format!("{tag} BAD no mailbox selected")
            }
            "FETCH" => {
                let f = &state.folders[selected.as_deref().unwrap()];
                let seq: usize = a.first().and_then(|s| s.parse().ok()).unwrap_or(0);
                if let Some(m) = seq.checked_sub(1).and_then(|i| f.mails.get(i)) {
                    out.push_str(&format!("* {seq} FETCH (UID {})\r\n", m.uid));
                }
                format!("{tag} OK FETCH completed")
            }
            "UID FETCH" => {
                let f = &state.folders[selected.as_deref().unwrap()];
                let items = a.get(1).cloned().unwrap_or_default().to_uppercase();
                for uid in uid_set(a.first().map_or("", String::as_str), &f.mails) {
                    let (i, m) = f
                        .mails
                        .iter()
                        .enumerate()
                        .find(|(_, m)| m.uid == uid)
                        .unwrap();
                    let mut attrs = vec![format!("UID {uid}")];
                    if items.contains("FLAGS") {
                        attrs.push(format!("FLAGS ({})", m.flags.join(" ")));
                    }
                    if items.contains("RFC822.SIZE") {
                        attrs.push(format!("RFC822.SIZE {}", m.raw.len()));
                    }
                    if items.contains("BODY.PEEK[]") {
                        attrs.push(format!("BODY[] {{{}}}\r\n{}", m.raw.len(), m.raw));
                    }
                    out.push_str(&format!("* {} FETCH ({})\r\n", i + 1, attrs.join(" ")));
                }
                format!("{tag} OK UID FETCH completed")
            }
            "UID STORE" => {
                let name = selected.clone().unwrap();
                let add: Vec<String> = a
                    .get(2)
                    .map(|l| {
                        l.trim_matches(['(', ')'])
                            .split(' ')
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let f = state.folders.get_mut(&name).unwrap();
                let uids = uid_set(a.first().map_or("", String::as_str), &f.mails);
                for (i, m) in f.mails.iter_mut().enumerate() {
                    if uids.contains(&m.uid)
                        && a.get(1).is_some_and(|op| op.eq_ignore_ascii_case("+FLAGS"))
                    {
                        for fl in &add {
                            if !m.flags.contains(fl) {
                                m.flags.push(fl.clone());
                            }
                        }
                        out.push_str(&format!(
                            "* {} FETCH (UID {} FLAGS ({}))\r\n",
                            i + 1,
                            m.uid,
                            m.flags.join(" ")
                        ));
                    }
                }
                format!("{tag} OK UID STORE completed")
            }
            "EXPUNGE" => {
                let name = selected.clone().unwrap();
                let f = state.folders.get_mut(&name).unwrap();
                while let Some(i) = f
                    .mails
                    .iter()
                    .position(|m| m.flags.iter().any(|fl| fl == "\\Deleted"))
                {
                    f.mails.remove(i);
                    out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                }
                format!("{tag} OK EXPUNGE completed")
            }
            "LOGOUT" => {
                out.push_str("* BYE logging out\r\n");
                let _ = w.write_all(format!("{out}{tag} OK LOGOUT completed\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} BAD unknown command"),
        };
        drop(state);
        if w.write_all(format!("{out}{done}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}
