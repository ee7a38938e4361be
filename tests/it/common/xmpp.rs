//! `FakeXmpp`: a scripted XMPP server on 127.0.0.1:0 — not a real one (none can run
//! here without installing one). It plays, in order, the part of a client-to-server
//! stream RFC 6120 describes and muninn's jabber agent walks through: the stream
//! header and features, STARTTLS (with a certificate for `localhost` made at start by
//! rcgen, whose PEM the test gives the hub as a trusted authority), SASL PLAIN against
//! one account, the stream restart, resource binding, then every `<message/>` stanza
//! until the client ends the stream. What each connection did is recorded as steps,
//! and each message stanza as received, for the test to assert.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The most a connection may send before the fake gives up on it.
const MAX_BYTES: usize = 1 << 20;

/// One `<message/>` stanza as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub to: String,
    pub kind: String,
    pub id: String,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct State {
    /// Per connection, what happened: "stream", "starttls", "tls", "auth PLAIN foo ok",
    /// "bind", "message", "end".
    pub steps: Vec<Vec<String>>,
    pub messages: Vec<Received>,
    /// The raw text of each message stanza.
    pub raw: Vec<String>,
}

#[derive(Debug, Clone)]
struct Script {
    user: String,
    password: String,
    domain: String,
    starttls: bool,
    /// A chat room (`room@conference.localhost`) the client may join: see `serve_room`.
    room: Option<String>,
    /// What the room sends after the join instead of [`ROOM_LIVE`] (raw stanzas).
    live: Option<String>,
}

pub struct FakeXmpp {
    pub port: u16,
    /// The server certificate (self-signed for `localhost`), PEM: what the hub must trust.
    pub cert_pem: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeXmpp {
    /// A server for `user@localhost` with `password`, offering STARTTLS.
    pub fn start(user: &str, password: &str) -> FakeXmpp {
        Self::start_with(user, password, true)
    }

    /// A server that offers no STARTTLS (only SASL, in the clear).
    pub fn without_starttls(user: &str, password: &str) -> FakeXmpp {
        Self::start_with(user, password, false)
    }

    /// A server that also hosts the chat room `room`: a client that joins it is sent
    /// what `serve_room` scripts (replay, then live stanzas).
    pub fn with_room(user: &str, password: &str, room: &str) -> FakeXmpp {
        Self::start_full(user, password, true, Some(room.to_string()))
    }

    /// A server hosting `room` whose live part, after the join, is `live`: raw text
    /// sent as it is (hostile stanzas, floods, broken XML).
    pub fn with_room_stanzas(user: &str, password: &str, room: &str, live: String) -> FakeXmpp {
        Self::start_script(user, password, true, Some(room.to_string()), Some(live))
    }

    fn start_with(user: &str, password: &str, starttls: bool) -> FakeXmpp {
        Self::start_full(user, password, starttls, None)
    }

    fn start_full(user: &str, password: &str, starttls: bool, room: Option<String>) -> FakeXmpp {
        Self::start_script(user, password, starttls, room, None)
    }

    fn start_script(
        user: &str,
        password: &str,
        starttls: bool,
        room: Option<String>,
        live: Option<String>,
    ) -> FakeXmpp {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert_pem = key.cert.pem();
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(key.cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
            )
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let script = Script {
            user: user.to_string(),
            password: password.to_string(),
            domain: "localhost".to_string(),
            starttls,
            room,
            live,
        };
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, script, tls) = (st.clone(), script.clone(), tls.clone());
                std::thread::spawn(move || {
                    let n = {
                        let mut s = st.lock().unwrap();
                        s.steps.push(Vec::new());
                        s.steps.len() - 1
                    };
                    let _ = serve(conn, &script, &tls, &st, n);
                });
            }
        });
        FakeXmpp {
            port,
            cert_pem,
            state,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn raw(&self) -> Vec<String> {
        self.state.lock().unwrap().raw.clone()
    }

    pub fn steps(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().steps.clone()
    }
}

/// A connection's bytes as they arrive, read until what a step waits for is there.
struct Wire<S> {
    io: S,
    buf: Vec<u8>,
    total: usize,
}

impl<S: Read + Write> Wire<S> {
    /// Reads until `find` locates the end of what is awaited in the buffer; returns
    /// that text and keeps the rest. None when the peer closed or went silent.
    fn until(&mut self, find: impl Fn(&str) -> Option<usize>) -> Option<String> {
        loop {
            let text = String::from_utf8_lossy(&self.buf).to_string();
            if let Some(end) = find(&text) {
                let taken = text[..end].to_string();
                self.buf.drain(..taken.len());
                return Some(taken);
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).ok()?;
            self.total += n;
            if n == 0 || self.total > MAX_BYTES {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, text: &str) -> Option<()> {
        self.io.write_all(text.as_bytes()).ok()?;
        self.io.flush().ok()
    }

    /// The client's stream header (`<stream:stream ...>`), any XML declaration before it.
    fn header(&mut self) -> Option<String> {
        self.until(|t| {
            let at = t.find("<stream:stream")?;
            t[at..].find('>').map(|e| at + e + 1)
        })
    }

    /// The next complete element named `name` (`<name .../>` or `<name ...>...</name>`),
    /// or the end of the stream (returned as `</stream:stream>`).
    fn element(&mut self, name: &str) -> Option<String> {
        let open = format!("<{name}");
        let close = format!("</{name}>");
        self.until(|t| {
            if let Some(at) = t.find(&open) {
                let tag_end = at + t[at..].find('>')?;
                if t[..tag_end].ends_with('/') {
                    return Some(tag_end + 1);
                }
                return t[at..].find(&close).map(|e| at + e + close.len());
            }
            t.find("</stream:stream>")
                .map(|e| e + "</stream:stream>".len())
        })
        .map(|s| match s.find(&open) {
            Some(at) => s[at..].to_string(),
            None => "</stream:stream>".to_string(),
        })
    }
}

fn attr(element: &str, name: &str) -> String {
    let tag = &element[..element.find('>').unwrap_or(element.len())];
    for q in ['\'', '"'] {
        let key = format!(" {name}={q}");
        if let Some(at) = tag.find(&key) {
            let rest = &tag[at + key.len()..];
            return rest[..rest.find(q).unwrap_or(rest.len())].to_string();
        }
    }
    String::new()
}

fn stream_header(domain: &str, id: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='{domain}' \
         version='1.0'>"
    )
}

fn step(st: &Mutex<State>, n: usize, what: impl Into<String>) {
    st.lock().unwrap().steps[n].push(what.into());
}

fn serve(
    tcp: TcpStream,
    script: &Script,
    tls: &Arc<rustls::ServerConfig>,
    st: &Mutex<State>,
    n: usize,
) -> Option<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut plain = Wire {
        io: tcp,
        buf: Vec::new(),
        total: 0,
    };
    plain.header()?;
    step(st, n, "stream");
    plain.send(&stream_header(&script.domain, "s1"))?;
    if !script.starttls {
        plain.send(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        )?;
        if plain.element("auth")?.starts_with("<auth") {
            step(st, n, "auth in the clear");
        }
        return None;
    }
    plain.send(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
         </starttls></stream:features>",
    )?;
    plain.element("starttls")?;
    step(st, n, "starttls");
    plain.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
    let conn = rustls::ServerConnection::new(tls.clone()).ok()?;
    let mut wire = Wire {
        io: rustls::StreamOwned::new(conn, plain.io),
        buf: Vec::new(),
        total: 0,
    };
    wire.header()?;
    step(st, n, "tls");
    wire.send(&stream_header(&script.domain, "s2"))?;
    wire.send(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    )?;
    let auth = wire.element("auth")?;
    let data = auth[auth.find('>')? + 1..]
        .trim_end_matches("</auth>")
        .to_string();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    let parts: Vec<String> = decoded
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).to_string())
        .collect();
    let ok = attr(&auth, "mechanism") == "PLAIN"
        && parts.len() == 3
        && parts[1] == script.user
        && parts[2] == script.password;
    step(
        st,
        n,
        format!(
            "auth {} {} {}",
            attr(&auth, "mechanism"),
            parts.get(1).cloned().unwrap_or_default(),
            if ok { "ok" } else { "refused" }
        ),
    );
    if !ok {
        wire.send(
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>\
             </stream:stream>",
        )?;
        return None;
    }
    wire.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")?;
    wire.header()?;
    wire.send(&stream_header(&script.domain, "s3"))?;
    wire.send(
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
    )?;
    let iq = wire.element("iq")?;
    if !iq.contains("urn:ietf:params:xml:ns:xmpp-bind") {
        return None;
    }
    step(st, n, "bind");
    wire.send(&format!(
        "<iq type='result' id='{}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>{}@{}/muninn-test</jid></bind></iq>",
        attr(&iq, "id"),
        script.user,
        script.domain
    ))?;
    if let Some(room) = &script.room {
        // Raw live text goes to the first connection only: a reconnect gets the join.
        let live = script.live.as_deref().map(|l| if n == 0 { l } else { "" });
        return serve_room(wire, room, live, st, n);
    }
    // The messages, bounded by what a connection may send.
    loop {
        let el = wire.element("message")?;
        if el == "</stream:stream>" {
            step(st, n, "end");
            wire.send("</stream:stream>")?;
            return Some(());
        }
        step(st, n, "message");
        let mut s = st.lock().unwrap();
        s.messages.push(Received {
            to: attr(&el, "to"),
            kind: attr(&el, "type"),
            id: attr(&el, "id"),
            body: body_of(&el),
        });
        s.raw.push(el);
    }
}

/// The text of a stanza's `<body>`, unescaped, read by an XML parser.
fn body_of(stanza: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(stanza);
    let mut in_body = false;
    let mut out = String::new();
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => in_body = e.local_name().as_ref() == "body",
            Ok(quick_xml::events::Event::End(_)) => in_body = false,
            Ok(quick_xml::events::Event::Text(t)) if in_body => out.push_str(&t),
            Ok(quick_xml::events::Event::GeneralRef(r)) if in_body => match r.resolve_char_ref() {
                Ok(Some(ch)) => out.push(ch),
                _ => out.push_str(quick_xml::escape::resolve_predefined_entity(&r).unwrap_or("?")),
            },
            Ok(quick_xml::events::Event::Eof) | Err(_) => return out,
            _ => {}
        }
    }
}

/// What a room sends a client that joins it, after the join: the live part of the
/// script. Each is (nick or "" for the room itself, what) as the agent reports it.
pub const ROOM_LIVE: &[(&str, &str)] = &[
    ("alice", "Hello from huginn."),
    ("bob", "<join>"),
    ("bob", "a < b & c"),
    ("", "The room is now logged"),
    ("bob", "<leave>"),
];

/// A room on the fake: waits for the client's join presence (recorded as the step
/// "join TO"), then sends what XEP-0045 says a room sends on join — another occupant's
/// presence, the client's own presence (status 110), one message of history (delayed)
/// and the subject, which ends the join — and then the live stanzas of [`ROOM_LIVE`]
/// and a delayed live message from carol (or, when given, the raw `live` text). Then
/// it waits, bounded, for the client to go: "closed" when it hangs up, "end" when it
/// ends the stream.
fn serve_room(
    mut wire: Wire<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>,
    room: &str,
    live: Option<&str>,
    st: &Mutex<State>,
    n: usize,
) -> Option<()> {
    let join = wire.element("presence")?;
    if join == "</stream:stream>" {
        step(st, n, "end");
        return wire.send("</stream:stream>");
    }
    let to = attr(&join, "to");
    step(st, n, format!("join {to}"));
    let nick = to.rsplit_once('/').map(|(_, n)| n.to_string())?;
    let mut out = format!(
        "<presence from='{room}/alice'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='member' role='participant'/></x></presence>\
         <presence from='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='member' role='participant'/><status code='110'/></x></presence>\
         <message type='groupchat' from='{room}/alice'><body>old news</body>\
         <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z' from='{room}'/></message>\
         <message type='groupchat' from='{room}'><subject>Earthquakes</subject></message>"
    );
    for (who, what) in ROOM_LIVE.iter().filter(|_| live.is_none()) {
        let from = if who.is_empty() {
            room.to_string()
        } else {
            format!("{room}/{who}")
        };
        out.push_str(&match *what {
            "<join>" => format!(
                "<presence from='{from}'><x xmlns='http://jabber.org/protocol/muc#user'>\
                 <item affiliation='none' role='participant'/></x></presence>"
            ),
            "<leave>" => format!(
                "<presence type='unavailable' from='{from}'>\
                 <x xmlns='http://jabber.org/protocol/muc#user'>\
                 <item affiliation='none' role='none'/></x></presence>"
            ),
            text => format!(
                "<message type='groupchat' from='{from}'><body>{}</body></message>",
                text.replace('&', "&amp;").replace('<', "&lt;")
            ),
        });
    }
    match live {
        Some(live) => out.push_str(live),
        None => out.push_str(&format!(
            "<message type='groupchat' from='{room}/carol'><body>late</body>\
             <delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/></message>"
        )),
    }
    wire.send(&out)?;
    step(st, n, "sent");
    // Wait for the client to go: at most 5 minutes, in 1 s reads.
    wire.io
        .sock
        .set_read_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    let mut chunk = [0u8; 4096];
    for _ in 0..300 {
        match wire.io.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => {
                wire.buf.extend_from_slice(&chunk[..k]);
                if String::from_utf8_lossy(&wire.buf).contains("</stream:stream>") {
                    step(st, n, "end");
                    return Some(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    step(st, n, "closed");
    Some(())
}
