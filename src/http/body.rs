//! A deadline on the request body, for both listeners. actix bounds only the
//! request head (`client_request_timeout`); a client that sends the head and one
//! body byte would otherwise hold its connection, and a worker's slot, forever.
//!
//! The payload stream is wrapped: when the body has not fully arrived by the
//! deadline, reading it fails, and whatever the handler answered is replaced by
//! 408 with `Connection: close`. A body nobody read also closes the connection
//! after the answer, so it is never drained at the client's pace.
//!
//! A client that asks `Expect: 100-continue` waits for leave before sending
//! its body. [`expect`] is the listeners' hook for it: a body announced over
//! what the route reads is answered 413 there, and `100 Continue` is never
//! sent for it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::{fn_service, ServiceFactory};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{InternalError, PayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_core::Stream;
use tokio::time::{Instant, Sleep};

use super::error::{AdminError, CallbackHttpError};

/// How a listener words its 408 and its 413 before `100 Continue`.
#[derive(Clone, Copy, Debug)]
pub enum Wording {
    /// `text/plain`, like the callback endpoint's other answers.
    Text,
    /// `{"error": …}`, like the admin API's other answers.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Reading,
    Complete,
    Expired,
}

/// The middleware: `from_fn(move |req, next| body::deadline(timeout, answer, req, next))`.
pub async fn deadline<B: MessageBody + 'static>(
    timeout: Duration,
    answer: Wording,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<HoldPayload>, Error> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
        return next.call(req).await.map(|res| hold(res, None));
    }
    let state = Rc::new(Cell::new(BodyState::Reading));
    let inner = Rc::new(RefCell::new(payload));
    let deadline = Instant::now() + timeout;
    let timed = TimedPayload {
        inner: inner.clone(),
        deadline,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        state: state.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
    // No clone of the request here: routing needs it unshared.
    let result = next.call(req).await;

    // actix closes the connection after the answer when the body is unfinished
    // and still referenced, but drains a dropped chunked body at the client's
    // pace for as long as the client likes: the answer keeps it referenced.
    let unfinished = Some(inner).filter(|_| state.get() != BodyState::Complete);
    if state.get() == BodyState::Expired {
        tracing::debug!(
            timeout_ms = timeout.as_millis() as u64,
            "request body timed out"
        );
        let response = timed_out(timeout, answer);
        return match result {
            Ok(res) => Ok(hold(res.into_response(response), unfinished)),
            Err(_) => Err(InternalError::from_response("request body timed out", response).into()),
        };
    }
    let mut res = result?;
    if unfinished.is_some() {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(hold(res, unfinished))
}

fn hold<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    payload: Option<Rc<RefCell<Payload>>>,
) -> ServiceResponse<HoldPayload> {
    res.map_body(|_, body| HoldPayload {
        body: body.boxed(),
        _payload: payload,
    })
}

/// A response body that keeps the request's unfinished body referenced until
/// the answer is written.
pub struct HoldPayload {
    body: BoxBody,
    _payload: Option<Rc<RefCell<Payload>>>,
}

impl MessageBody for HoldPayload {
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

fn timed_out(timeout: Duration, answer: Wording) -> HttpResponse {
    let reason = format!("request body not received within {}ms", timeout.as_millis());
    let mut response = HttpResponse::RequestTimeout();
    response.force_close();
    match answer {
        Wording::Text => response
            .content_type("text/plain; charset=utf-8")
            .body(reason),
        Wording::Json => response.json(serde_json::json!({ "error": reason })),
    }
}

/// The `Expect: 100-continue` hook (`HttpServiceBuilder::expect`), called
/// with the head of every request that asks for it. A `Content-Length` over
/// `limit(path)` (the most the route reads) is answered 413 with `Connection:
/// close`, so the client is told before it sends a byte of the body; any
/// other request goes on, and actix sends `100 Continue`. A chunked body
/// announces no length: it goes on, and the route's own limit applies.
pub fn expect(
    limit: fn(&str) -> usize,
    answer: Wording,
) -> impl ServiceFactory<
    Request,
    Config = (),
    Response = Request,
    Error = Response<BoxBody>,
    InitError = (),
> + Clone {
    fn_service(move |req: Request| async move {
        let max = limit(req.path());
        let announced = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match announced {
            Some(length) if length > max as u64 => {
                tracing::debug!(length, max, "announced body refused before 100 Continue");
                Err(too_large(max, answer))
            }
            _ => Ok(req),
        }
    })
}

/// 413 as the listener's handlers answer it: the callback endpoint's text on
/// the public listener, the admin API's `{"error": …}` on the admin listener.
fn too_large(max: usize, answer: Wording) -> Response<BoxBody> {
    let mut response = match answer {
        Wording::Text => CallbackHttpError::TooLarge.error_response(),
        Wording::Json => AdminError::TooLarge(max).error_response(),
    };
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response.into()
}

struct TimedPayload {
    inner: Rc<RefCell<Payload>>,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    state: Rc<Cell<BodyState>>,
}

impl TimedPayload {
    fn expire(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.state.set(BodyState::Expired);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request body timed out",
        )))))
    }
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.state.get() != BodyState::Reading {
            return Poll::Ready(None);
        }
        let next = Pin::new(&mut *this.inner.borrow_mut()).poll_next(cx);
        match next {
            Poll::Ready(None) => {
                this.state.set(BodyState::Complete);
                Poll::Ready(None)
            }
            // A client trickling bytes never leaves the stream pending long:
            // the clock is checked on every chunk too.
            Poll::Ready(Some(Ok(_))) if Instant::now() >= this.deadline => this.expire(),
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => this.expire(),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
