//! Request bodies on every route, whoever reads them: the body must arrive within
//! `[server] body_read_timeout_seconds` of the request head, and a connection is never
//! read further than its handler read.
//!
//! actix-web bounds only the head (`client_request_timeout`); a body that trickles
//! holds a worker's connection for as long as the client likes. And when a handler
//! stops reading (a 413 at the limit, a 401 before the body), actix drains the rest of
//! a chunked body to keep the connection alive, however long it is. Here each body is
//! wrapped in a stream that fails with `TimedOut` at the deadline (readers turn that
//! into 408), and the original payload is held until the response is written: an
//! unread payload that is still alive then makes actix answer `Connection: close` and
//! shut the connection (after its short linger) instead of draining it.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

type Shared = Rc<RefCell<Payload>>;

/// The request's original payload, kept alive until the response has been written.
pub struct Held {
    _payload: Shared,
}

/// Puts the deadline on `req`'s body, if it has one; the returned hold goes to
/// [`hold_until_sent`] with the response.
pub fn guard(req: &mut ServiceRequest, timeout: Duration) -> Option<Held> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return None;
    }
    let shared = Rc::new(RefCell::new(payload));
    let timed = Timed {
        inner: shared.clone(),
        deadline: Box::pin(actix_rt::time::sleep(timeout)),
        timeout,
        expired: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
    Some(Held { _payload: shared })
}

/// Makes the response carry `held` until its last byte is written.
pub fn hold_until_sent<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    held: Option<Held>,
) -> ServiceResponse<BoxBody> {
    match held {
        None => res.map_into_boxed_body(),
        Some(held) => res.map_body(|_, body| {
            BoxBody::new(Holding {
                body: body.boxed(),
                _held: held,
            })
        }),
    }
}

/// True when a body read failed because the body did not arrive in time.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut)
}

struct Timed {
    inner: Shared,
    deadline: Pin<Box<actix_rt::time::Sleep>>,
    timeout: Duration,
    expired: bool,
}

impl Stream for Timed {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        let polled = match this.inner.try_borrow_mut() {
            Ok(mut payload) => Pin::new(&mut *payload).poll_next(cx),
            // Only this stream borrows the payload; the hold just keeps it alive.
            Err(_) => Poll::Ready(None),
        };
        if polled.is_pending() && this.deadline.as_mut().poll(cx).is_ready() {
            this.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request body did not arrive within {} s of the request head (server.body_read_timeout_seconds)",
                    this.timeout.as_secs()
                ),
            )))));
        }
        polled
    }
}

struct Holding {
    body: BoxBody,
    _held: Held,
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
