//! The inbound pipeline both URL forms run: admit → authenticate → parse → transform →
//! write → log. What differs between a webhook agent's Huginn URL and an incoming
//! webhook is the endpoint's [`Form`], not the code.
//!
//! Before the body is read, [`EndpointCore::admit`] checks the secret or verb, the IP
//! allowlist, rate limit and declared size; then [`EndpointCore::handle`] checks the
//! signature and idempotency key, parses, runs the endpoint's logic, hands the events
//! to the Writer and answers only once they are committed. Every outcome is a line in
//! the endpoint's log.
//!
//! The pipeline runs on the HTTP worker that received the request, against the
//! endpoint's core; it does not pass through an actor's mailbox. Two mailbox round
//! trips per request (admit, then handle) were four thread switches, and under load
//! they cost more than the request's share of the group commit. The core's lock is
//! held only for the in-memory checks and log lines, never across parsing or a write.
//! The endpoint's actor ([`super::actor`]) owns its lifecycle: supervision,
//! reconfiguration and the timed flushes.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::NaiveDateTime;

mod answers;
mod shape;

pub use answers::{MAX_IDEMPOTENCY_KEY, idempotency_key, replay, store_failure};

use self::shape::{Checked, Reply, Shaped, Shaper, shape_off_worker};
use super::form::{Access, Configured, Form, Logic, Parse, receipt};
use super::guard::{Guard, InboundSettings, Refusal, too_large};
use super::log::{LogBuffer, Outcome};
use super::request::body_value;
use super::signature::SignatureError;
use super::{Admit, InboundRequest, NoteTooLarge, OwnRefusal, Rejection, WebResponse, params};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents as agents_table;
use crate::store::events::NewEvent;
use crate::store::{Store, StoreError};
use crate::store::{idempotency_keys, rate_windows};

/// What changes per request.
struct State {
    form: Arc<Form>,
    guard: Option<Guard>,
    log: LogBuffer,
    last_request_at: Option<NaiveDateTime>,
    flushed: bool,
}

/// Who an endpoint belongs to and where its log goes; fixed for its life.
pub struct Owner {
    pub user_id: i64,
    /// The endpoint's key in the inbound log and the idempotency keys.
    pub endpoint_key: String,
    /// The agent whose time of last web request is written back (web-request URLs).
    pub records_last_request: Option<crate::ids::AgentId>,
    /// Lines kept in an agent's log (for a failed response template).
    pub log_length: i64,
}

/// The endpoint's data and request path, shared by its actor and the HTTP workers.
pub struct EndpointCore {
    owner: Owner,
    store: Store,
    inbound: Arc<InboundSettings>,
    state: Mutex<State>,
}

/// One request with its body read; `secret` is the URL's secret, for the forms that
/// have one.
pub struct HandleWebRequest {
    pub secret: Option<String>,
    pub request: InboundRequest,
}

/// A refusal and its reason in the log.
type Refused = (&'static str, Rejection);

/// What a request made: its answer, and the events written (`None`: replayed).
struct Done {
    response: WebResponse,
    event_ids: Option<Vec<i64>>,
}

impl EndpointCore {
    pub fn new(
        owner: Owner,
        configured: Configured,
        store: Store,
        inbound: Arc<InboundSettings>,
    ) -> EndpointCore {
        let log = LogBuffer::new(
            owner.endpoint_key.clone(),
            store.clone(),
            inbound.log_retention,
        );
        EndpointCore {
            owner,
            state: Mutex::new(State {
                form: Arc::new(configured.form),
                guard: configured.guard,
                log,
                last_request_at: None,
                flushed: true,
            }),
            store,
            inbound,
        }
    }

    /// The state, even after a panic while it was held: every field stays valid
    /// between statements, and the endpoint must keep answering.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inbound(&self) -> &InboundSettings {
        &self.inbound
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes a new form (a new rate-limit bucket with it).
    pub fn configure(&self, configured: Configured) {
        let mut state = self.state();
        state.form = Arc::new(configured.form);
        state.guard = configured.guard;
    }

    /// Whether the endpoint answers with a redirect (and so needs the request's URL).
    pub fn redirects(&self) -> bool {
        matches!(&self.state().form.logic, Ok(Logic::Agent(w)) if w.redirects())
    }

    /// Step 1, admit: before the body is read. Answers the body limit to read with, or
    /// the answer to send.
    pub fn admit(&self, msg: Admit) -> Result<usize, WebResponse> {
        let mut state = self.state();
        let form = state.form.clone();
        if !form.open.is_open() {
            return Err(WebResponse::refuse(
                OwnRefusal::NotFound,
                "unknown or inactive webhook token",
            ));
        }
        let logic = match &form.logic {
            Ok(l) => Some(l),
            Err(invalid) if invalid.at_admit.is_none() => return Ok(self.inbound.max_body_bytes),
            Err(_) => None,
        };
        if msg.method == "OPTIONS" {
            // CORS preflight.
            return Err(decorate(form.preflight.clone(), &form));
        }
        let refused = match form.access {
            Access::SecretAndVerbs => match (&msg.secret, logic) {
                (Some(secret), Some(Logic::Agent(w))) => w
                    .authorize(secret, &msg.method)
                    .err()
                    .map(|r| ("unauthorized", r)),
                _ => None,
            },
            Access::PostOnly => (msg.method != "POST").then(|| {
                let r = WebResponse::refuse(
                    OwnRefusal::MethodNotAllowed,
                    format!("use POST to send to this webhook (got {})", msg.method),
                )
                .with_header("Allow", "POST, OPTIONS");
                ("method_not_allowed", r)
            }),
        };
        if let Some((reason, r)) = refused {
            note(
                &mut state,
                &msg.method,
                msg.ip,
                msg.received,
                reason,
                &r,
                None,
            );
            return Err(decorate(r, &form));
        }
        if let Err(invalid) = &form.logic
            && let Some(r) = &invalid.at_admit
        {
            return Err(r.clone());
        }
        let Some(guard) = &mut state.guard else {
            return Ok(self.inbound.max_body_bytes);
        };
        match guard.admit(msg.ip, msg.content_length) {
            Ok(limit) => Ok(limit),
            Err((refusal, r)) => {
                let reason = refusal.reason();
                note(
                    &mut state,
                    &msg.method,
                    msg.ip,
                    msg.received,
                    reason,
                    &r,
                    None,
                );
                Err(decorate(r, &form))
            }
        }
    }

    /// The body grew past the limit while it was read; log it.
    pub fn note_too_large(&self, msg: NoteTooLarge) {
        let mut state = self.state();
        let limit = state
            .guard
            .as_ref()
            .map_or(self.inbound.max_body_bytes, |g| g.max_body_bytes);
        let reason = Refusal::TooLarge.reason();
        let r = too_large(limit);
        note(
            &mut state,
            &msg.method,
            msg.ip,
            msg.received,
            reason,
            &r,
            None,
        );
    }

    /// Steps 2 to 6 for a request with its body read; resolves once its events are
    /// committed (or it was refused).
    pub async fn handle(&self, msg: HandleWebRequest) -> WebResponse {
        let (method, ip, received) = (
            msg.request.method.clone(),
            msg.request.client_ip,
            msg.request.received,
        );
        let (form, shared_limit) = {
            let mut state = self.state();
            if self.owner.records_last_request.is_some() {
                state.last_request_at = Some(crate::store::now());
                state.flushed = false;
            }
            (state.form.clone(), shared_limit(&state, &self.store))
        };
        let res = self.run(&form, msg, shared_limit).await;
        let mut state = self.state();
        let r = match res {
            Ok(done) => {
                let reason = done.event_ids.is_none().then_some("duplicate");
                let r = done.response;
                let ids = done.event_ids.unwrap_or_default();
                record(&mut state, &method, ip, received, reason, &r, ids);
                r
            }
            Err((reason, r)) => {
                note(&mut state, &method, ip, received, reason, &r, None);
                r
            }
        };
        drop(state);
        decorate(r, &form)
    }

    async fn run(
        &self,
        form: &Form,
        msg: HandleWebRequest,
        shared_limit: Option<u32>,
    ) -> Result<Done, Refused> {
        if let Some(per_minute) = shared_limit {
            self.count_shared(per_minute).await?;
        }
        let checked = self.check(form, msg)?;
        let mut shaped = shape_off_worker(checked).await?;
        if let Some(c) = shaped.captcha.take() {
            super::recaptcha::verify(&self.inbound.recaptcha_verify_url, c)
                .await
                .map_err(|r| ("recaptcha_failed", r))?;
        }
        self.write(form, shaped)
            .map_err(|e| ("store_failed", store_failure(&e)))?
            .await
            .map_err(|e| ("store_failed", store_failure(&e)))
    }

    /// Step 1 again on PostgreSQL, where several nodes may serve this endpoint: its
    /// limit holds across them through the shared per-minute count (see
    /// `store::rate_windows`). Only after this node's own bucket let the request in, so
    /// a node's own flood costs no query; with the body read, but before anything is
    /// parsed or written. The count is one statement on a pool connection, not a job
    /// of the group commit, so it does not wait behind the writes.
    async fn count_shared(&self, per_minute: u32) -> Result<(), Refused> {
        let endpoint = self.owner.endpoint_key.clone();
        let counted = self
            .store
            .read(move |c| rate_windows::count(c, &endpoint, crate::store::now()))
            .await
            .map_err(|e| ("store_failed", store_failure(&e)))?;
        if counted.requests <= i64::from(per_minute) {
            return Ok(());
        }
        let wait = counted.window_ends_in;
        Err((
            Refusal::RateLimited.reason(),
            WebResponse::refuse(
                OwnRefusal::RateLimited,
                format!(
                    "rate limit of {per_minute} requests per minute (across every node) exceeded; retry in {wait}s"
                ),
            )
            .with_header("Retry-After", wait.to_string()),
        ))
    }

    /// Steps 2 and 3, authenticate and parse: the secret and verb, signature,
    /// idempotency key, the body as data and the reCAPTCHA field; synchronous and
    /// cheap.
    fn check(&self, form: &Form, msg: HandleWebRequest) -> Result<Checked, Refused> {
        let logic = form
            .logic
            .as_ref()
            .map_err(|invalid| ("invalid_options", invalid.at_handle.clone()))?;
        let HandleWebRequest { secret, request } = msg;
        if let (Access::SecretAndVerbs, Logic::Agent(w)) = (form.access, logic) {
            w.authorize(secret.as_deref().unwrap_or_default(), &request.method)
                .map_err(|r| ("unauthorized", r))?;
        }
        if let Some(check) = logic.signature() {
            let now = chrono::Utc::now().timestamp();
            check
                .verify(|n| request.header(n), &request.body, now)
                .map_err(|e| {
                    let (reason, refusal, message) = match e {
                        SignatureError::Stale(m) => {
                            ("stale_timestamp", OwnRefusal::StaleTimestamp, m)
                        }
                        SignatureError::Invalid(m) => {
                            ("bad_signature", OwnRefusal::InvalidSignature, m)
                        }
                    };
                    (reason, WebResponse::refuse(refusal, message))
                })?;
        }
        let key = idempotency_key(&request, logic.standard()).map_err(|r| ("bad_request", r))?;
        let mut data = match form.parse {
            Parse::Params => params(&request).map_err(|r| ("bad_request", r))?,
            Parse::Body => body_value(&request).map_err(|r| {
                let reason = if r.status == 415 {
                    "unsupported_media_type"
                } else {
                    "bad_request"
                };
                (reason, r)
            })?,
        };
        let (shaper, captcha) = match logic {
            Logic::Agent(w) => {
                let captcha = match &w.recaptcha {
                    None => None,
                    Some(rc) => Some(
                        super::recaptcha::take(rc, &mut data, request.client_ip)
                            .map_err(|r| ("recaptcha_failed", r))?,
                    ),
                };
                // Read now, on this request: a credential saved a moment ago is seen.
                let credentials = if w.has_response_template() {
                    crate::store::credential_cache::source_for(&self.store, self.owner.user_id)
                } else {
                    crate::template::context::no_credentials()
                };
                (Shaper::Agent(w.clone(), credentials), captcha)
            }
            Logic::Template {
                webhook_id,
                transform,
                ..
            } => (Shaper::Template(*webhook_id, transform.clone()), None),
        };
        Ok(Checked {
            shaper,
            data,
            request,
            key,
            captcha,
        })
    }

    /// Step 5, write: the events, the agent's log line for a failed response template
    /// and the idempotency key, in one repeatable write job.
    fn write(
        &self,
        form: &Form,
        shaped: Shaped,
    ) -> Result<impl Future<Output = Result<Done, StoreError>> + use<>, StoreError> {
        let Shaped {
            response,
            render_error,
            payloads,
            key,
            ..
        } = shaped;
        let events = &form.events;
        let new: Vec<NewEvent> = payloads
            .into_iter()
            .map(|payload| NewEvent {
                user_id: self.owner.user_id,
                agent_id: events.source,
                event_type: events.event_type.clone(),
                payload: NewEvent::payload_text(&payload),
                keep_for_seconds: events.keep_for_seconds,
            })
            .collect();
        let (target, source) = (events.target, events.source);
        let log_length = self.owner.log_length;
        let window = self.inbound.idempotency_window_seconds;
        let endpoint = self.owner.endpoint_key.clone();
        self.store.writer().try_write_repeatable(move |conn, out| {
            // First, so the key is this request's before it writes anything (the first
            // request with a key wins across nodes too: see `claim`).
            if let Some(k) = &key
                && let Some(row) = idempotency_keys::claim(conn, &endpoint, k, window)?
            {
                return Ok(Done {
                    response: replay(row),
                    event_ids: None,
                });
            }
            let rows = out.insert_targeted(conn, &new, 0, target)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id.0).collect();
            if let (Some(message), Some(agent_id)) = (&render_error, source) {
                let line = NewLog {
                    level: LEVEL_ERROR,
                    message: message.clone(),
                    inbound_event_id: None,
                };
                agent_logs::append(conn, agent_id, &[line], log_length)?;
            }
            let response = match &response {
                Reply::Ready(r) => r.clone(),
                Reply::Receipt(webhook_id) => receipt(*webhook_id, &ids),
            };
            if let Some(k) = &key {
                if response.location.is_none() {
                    idempotency_keys::answer(
                        conn,
                        &endpoint,
                        k,
                        response.status,
                        &response.body,
                        &response.content_type,
                    )?;
                } else {
                    idempotency_keys::release(conn, &endpoint, k)?;
                }
            }
            Ok(Done {
                response,
                event_ids: Some(ids),
            })
        })
    }

    /// Sends the waiting log lines to the Writer at once, for a reader of the log.
    pub fn flush_log_for_read(&self) {
        self.state().log.flush_all();
    }

    /// Sends the waiting log lines to the Writer (unless a batch is still queued there).
    pub fn flush_log(&self) {
        self.state().log.flush();
    }

    /// Writes back the time of the last web request, if it changed since last time.
    pub fn flush_last_request(&self) {
        let Some(id) = self.owner.records_last_request else {
            return;
        };
        let at = {
            let mut state = self.state();
            if state.flushed {
                return;
            }
            state.flushed = true;
            state.last_request_at
        };
        let Some(at) = at else { return };
        let write = self
            .store
            .writer()
            .write(move |c, _| agents_table::note_web_request(c, id, at));
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(agent_id = id.0, error = %e, "could not record the last web request time");
            }
        });
    }
}

/// The endpoint's limit per minute when it must hold across nodes (PostgreSQL, a
/// limit set); `None` when the in-memory bucket alone decides.
fn shared_limit(state: &State, store: &Store) -> Option<u32> {
    let per_minute = state.guard.as_ref()?.per_minute();
    (store.is_pg() && per_minute > 0).then_some(per_minute)
}

/// Adds the form's headers to an answer.
fn decorate(mut r: WebResponse, form: &Form) -> WebResponse {
    if !form.headers.is_empty() {
        r.headers.extend(form.headers.iter().cloned());
    }
    r
}

/// Step 6, log: adds a refused request's outcome to the endpoint's log.
fn note(
    state: &mut State,
    method: &str,
    ip: Option<IpAddr>,
    started: Instant,
    reason: &str,
    r: &WebResponse,
    ids: Option<Vec<i64>>,
) {
    record(
        state,
        method,
        ip,
        started,
        Some(reason),
        r,
        ids.unwrap_or_default(),
    );
}

/// Adds one request's outcome to the endpoint's log; an answer of 400 or more is a
/// rejection, with its body as the detail.
fn record(
    state: &mut State,
    method: &str,
    ip: Option<IpAddr>,
    started: Instant,
    reason: Option<&str>,
    r: &WebResponse,
    event_ids: Vec<i64>,
) {
    let failed = r.status >= 400;
    state.log.record(Outcome {
        ip,
        method,
        status: r.status,
        reason: reason.or(failed.then_some("rejected")),
        detail: failed.then_some(r.body.as_str()),
        started,
        event_ids,
    });
}
