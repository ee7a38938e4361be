//! Listening in a chat room (Huginn's `connect_to_receiver`): log in as the sender
//! ([`session::login`]), join `jabber_receiver` as a multi-user chat room (XEP-0045)
//! and report an event for everything said or done in it, in Huginn's shape:
//! `{"event", "time", "nick", "message"}`, where `event` is `on_message`,
//! `on_room_message` (said by the room itself: `nick` is null), `on_subject`,
//! `on_join` or `on_leave` (`message` null), and `time` the stamp of a delayed message
//! (XEP-0203), else null.
//!
//! What the room replays on join (its occupants, its history, its subject) is not
//! reported: Huginn ignores the first five seconds after joining for that; here the
//! join ends where XEP-0045 ends it, with the room's subject, which the room sends last.
//!
//! Bounded: the server may send [`WINDOW_BYTES`] per [`WINDOW`] (which bounds how fast
//! one stanza grows), a message's text is cut to [`MAX_MESSAGE_BYTES`], at most
//! [`MAX_EVENTS_PER_WINDOW`] events are reported per window (the rest are counted and
//! logged), the roster kept to tell joins from presence updates is capped, a delay
//! stamp longer than a time is dropped, a silent server is pinged and then dropped, so
//! is one that sends no whole stanza within [`STANZA_WITHIN`] (one endless stanza
//! trickled within the byte budget), and a connection that ends is retried after a
//! wait that doubles up to [`RECONNECT_CAP`]. Every dial goes through the target guard.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::xmlstream::{FallibleStreamElement, ReadError, Timeouts, XmppStreamElement};

use super::error::XmppError;
use super::session::{self, Account, Env, ReadCap, Session};
use crate::agents::listen::{Heard, Reports, report};
use crate::ops::backoff::Backoff;

/// The window the read and event budgets apply to.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Bytes the server may send per window.
pub const WINDOW_BYTES: usize = 1024 * 1024;
/// Events reported per window; the rest are dropped and counted.
pub const MAX_EVENTS_PER_WINDOW: usize = 120;
/// The longest message text reported, in bytes (cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The longest delay stamp reported (XEP-0082's longest form is about 35 bytes).
pub const MAX_STAMP_BYTES: usize = 64;
/// Occupants remembered (to tell a join from a presence update).
const MAX_ROSTER: usize = 10_000;
/// The first wait before reconnecting, doubled after each failure up to the cap.
const RECONNECT_BASE: Duration = Duration::from_secs(5);
pub const RECONNECT_CAP: Duration = Duration::from_secs(600);
/// A connection that stayed joined this long resets the wait.
const STABLE: Duration = Duration::from_secs(60);
/// Silence before the server is pinged, and then before it is given up on.
const QUIET: Duration = Duration::from_secs(60);
const PING_ANSWER: Duration = Duration::from_secs(30);
/// The longest one read of the stream may take, stanza or silence.
pub const STANZA_WITHIN: Duration = Duration::from_secs(2 * 60 + 30);

/// The room to listen in, and as whom.
#[derive(Debug, Clone)]
pub struct Room {
    pub account: Account,
    pub room: BareJid,
    pub nick: String,
}

/// Listens in `room` until the agent's actor is gone (or the future is dropped).
pub async fn run(room: Room, env: Env, reports: Reports) {
    let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
    loop {
        let started = Instant::now();
        let mut joined = false;
        let why = match connection(&room, &env, &reports, &mut joined).await {
            Ok(()) => return,
            Err(why) => why,
        };
        if joined && started.elapsed() >= STABLE {
            backoff.succeed();
        }
        backoff.fail();
        let wait = backoff.delay();
        let said = format!(
            "Listening in {} stopped: {why}; connecting again in {} s",
            room.room,
            wait.as_secs()
        );
        if !report(&reports, Heard::Error(said)).await {
            return;
        }
        actix_rt::time::sleep(wait).await;
    }
}

/// One connection: log in, join, report until it ends. `Ok`: the actor is gone.
async fn connection(
    room: &Room,
    env: &Env,
    reports: &Reports,
    joined: &mut bool,
) -> Result<(), XmppError> {
    let timeouts = Timeouts {
        read_timeout: QUIET,
        response_timeout: PING_ANSWER,
    };
    let cap = ReadCap::PerWindow(WINDOW_BYTES, WINDOW);
    let mut stream = session::login(&room.account, env, cap, timeouts).await?;
    let join = Presence::available()
        .with_to(occupant(room)?)
        .with_payload(Muc::new());
    send(&mut stream, Stanza::Presence(join)).await?;
    let mut heard = Hearing::new(room);
    let mut pings = 0u32;
    loop {
        // A live stream yields a stanza or a soft timeout well within this; one endless
        // stanza trickled within the read budget would otherwise grow forever.
        let Ok(next) = actix_rt::time::timeout(STANZA_WITHIN, stream.next()).await else {
            return Err(XmppError::NoWholeStanza(STANZA_WITHIN.as_secs()));
        };
        let element = match next {
            None => return Err(XmppError::Closed),
            Some(Ok(FallibleStreamElement::Ok(element))) => element,
            // A stanza the parser rejects is skipped, not fatal.
            Some(Ok(FallibleStreamElement::Err(_))) => continue,
            Some(Err(ReadError::SoftTimeout)) => {
                pings = pings.wrapping_add(1);
                let ping = Iq::from_get(format!("muninn-ping-{pings}"), Ping);
                send(&mut stream, Stanza::Iq(ping)).await?;
                continue;
            }
            Some(Err(ReadError::StreamFooterReceived)) => {
                return Err(XmppError::StreamEnded);
            }
            Some(Err(e)) => return Err(XmppError::step("reading from the server")(e)),
        };
        let payloads = match element {
            XmppStreamElement::Stanza(Stanza::Message(m)) => heard.message(&m)?,
            XmppStreamElement::Stanza(Stanza::Presence(p)) => heard.presence(&p)?,
            XmppStreamElement::StreamError(e) => {
                return Err(XmppError::StreamError(e.to_string()));
            }
            _ => Vec::new(),
        };
        if heard.joined && !*joined {
            *joined = true;
            let said = format!("Joined {} as {}", room.room, room.nick);
            if !report(reports, Heard::Log(said)).await {
                return Ok(());
            }
        }
        for payload in payloads {
            if let Some(dropped) = heard.over_budget() {
                let said = format!(
                    "Dropped {dropped} message(s) heard in {}: more than \
                     {MAX_EVENTS_PER_WINDOW} within {} s",
                    room.room,
                    WINDOW.as_secs()
                );
                if !report(reports, Heard::Error(said)).await {
                    return Ok(());
                }
            }
            if heard.take_budget() && !report(reports, Heard::Event(payload)).await {
                return Ok(());
            }
        }
    }
}

/// The room's occupant this agent joins as (`room@server/nick`).
fn occupant(room: &Room) -> Result<Jid, XmppError> {
    let full = room
        .room
        .with_resource_str(&room.nick)
        .map_err(|e| XmppError::BadNick {
            nick: room.nick.clone(),
            room: room.room.to_string(),
            message: e.to_string(),
        })?;
    Ok(Jid::from(full))
}

async fn send(stream: &mut Session, stanza: Stanza) -> Result<(), XmppError> {
    stream
        .send(&XmppStreamElement::Stanza(stanza))
        .await
        .map_err(XmppError::step("sending to the server"))
}

/// What one connection has heard so far: whether the join is over, who is in the
/// room, and the event budget of the current window.
struct Hearing<'a> {
    room: &'a Room,
    joined: bool,
    roster: HashSet<String>,
    window_start: Instant,
    reported: usize,
    dropped: usize,
}

impl<'a> Hearing<'a> {
    fn new(room: &'a Room) -> Self {
        Hearing {
            room,
            joined: false,
            roster: HashSet::new(),
            window_start: Instant::now(),
            reported: 0,
            dropped: 0,
        }
    }

    /// The nick a stanza from the room carries (`Some(None)`: from the room itself);
    /// None: not from the room.
    fn nick_in_room(&self, from: Option<&Jid>) -> Option<Option<String>> {
        let from = from?;
        if from.to_bare() != self.room.room {
            return None;
        }
        Some(from.resource().map(|r| r.as_str().to_string()))
    }

    fn message(&mut self, m: &Message) -> Result<Vec<Value>, XmppError> {
        let Some(nick) = self.nick_in_room(m.from.as_ref()) else {
            return Ok(Vec::new());
        };
        if m.type_ == MessageType::Error {
            return Err(XmppError::RoomError(text_of(m)));
        }
        let subject = m.get_best_subject_cloned(Vec::new()).map(|(_, s)| s);
        if !self.joined {
            // The subject is the last thing of a join; what came before it is replay.
            if subject.is_some() {
                self.joined = true;
            }
            return Ok(Vec::new());
        }
        let time = delay_stamp(&m.payloads);
        let mut out = Vec::new();
        if let Some(subject) = subject {
            out.push(event("on_subject", &time, nick.clone(), Some(subject)));
        }
        if let Some((_, body)) = m.get_best_body_cloned(Vec::new()) {
            match (&nick, &m.type_) {
                (None, _) => out.push(event("on_room_message", &time, None, Some(body))),
                (Some(_), MessageType::Groupchat) => {
                    out.push(event("on_message", &time, nick, Some(body)));
                }
                // Private messages through the room: Huginn does not listen to them.
                _ => {}
            }
        }
        Ok(out)
    }

    fn presence(&mut self, p: &Presence) -> Result<Vec<Value>, XmppError> {
        let Some(Some(nick)) = self.nick_in_room(p.from.as_ref()) else {
            return Ok(Vec::new());
        };
        let time = delay_stamp(&p.payloads);
        match p.type_ {
            PresenceType::Error if !self.joined => Err(XmppError::NotLetIn {
                room: self.room.room.to_string(),
                nick: self.room.nick.clone(),
            }),
            PresenceType::Unavailable => {
                let was_in = self.roster.remove(&nick);
                Ok(if self.joined && was_in {
                    vec![event("on_leave", &time, Some(nick), None)]
                } else {
                    Vec::new()
                })
            }
            PresenceType::None => {
                let new = self.roster.len() < MAX_ROSTER && self.roster.insert(nick.clone());
                Ok(if self.joined && new {
                    vec![event("on_join", &time, Some(nick), None)]
                } else {
                    Vec::new()
                })
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Starts a new window when the current one is over; returns how many events the
    /// window that ended dropped, if any.
    fn over_budget(&mut self) -> Option<usize> {
        if self.window_start.elapsed() < WINDOW {
            return None;
        }
        self.window_start = Instant::now();
        self.reported = 0;
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then_some(dropped)
    }

    /// Whether one more event fits in this window (counted as dropped when not).
    fn take_budget(&mut self) -> bool {
        if self.reported < MAX_EVENTS_PER_WINDOW {
            self.reported += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// Huginn's event payload, the text cut to [`MAX_MESSAGE_BYTES`].
fn event(kind: &str, time: &Option<String>, nick: Option<String>, text: Option<String>) -> Value {
    json!({
        "event": kind,
        "time": time,
        "nick": nick,
        "message": text.map(|t| cut(t, MAX_MESSAGE_BYTES)),
    })
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The stamp of a XEP-0203 delay among `payloads`, as sent; none when it is longer
/// than a time can be written ([`MAX_STAMP_BYTES`]): anyone in the room can send the
/// attribute, and it would otherwise reach every event uncut.
fn delay_stamp(payloads: &[Element]) -> Option<String> {
    payloads
        .iter()
        .find(|p| p.is("delay", ns::DELAY))
        .and_then(|d| d.attr("stamp"))
        .filter(|s| s.len() <= MAX_STAMP_BYTES)
        .map(str::to_string)
}

fn text_of(m: &Message) -> String {
    m.get_best_body_cloned(Vec::new())
        .map(|(_, b)| cut(b, 200))
        .unwrap_or_else(|| "no text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        assert_eq!(cut("héllo".to_string(), 2), "h");
        assert_eq!(cut("hello".to_string(), 10), "hello");
    }
}
