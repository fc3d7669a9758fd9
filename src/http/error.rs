//! Every error on the request path, mapped once to an HTTP answer: the client
//! sees a short reason, the log sees the detail, nobody sees a secret.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::domain::Answer;
use crate::paysera::CallbackError;
use crate::pipeline::registration::RegistrationError;
use crate::pipeline::{rejection_text, status_of, AnswerClass};
use crate::store::StoreError;

/// Why a callback or a webhook was not answered `OK`.
#[derive(Debug, thiserror::Error)]
pub enum CallbackHttpError {
    /// Verification failed (or a webhook's body cannot be read), with the
    /// status it was stored with.
    #[error("{}", rejection_text(reason))]
    Rejected { status: u16, reason: String },
    /// A gateway's notification that failed its recipe, answered with the
    /// body the recipe gives (the reason is in the journal and the log).
    #[error("{body}")]
    Refused { status: u16, body: String },
    /// Verified, but the decision could not accept it (`orderid missing`).
    #[error("{}", rejection_text(.0))]
    Undecidable(String),
    #[error("unknown order")]
    UnknownOrder,
    /// Not a form, or a content coding: the reason says which.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("request body too large")]
    TooLarge,
    #[error("request body could not be read: {0}")]
    BadBody(String),
    #[error("temporarily unavailable")]
    Unavailable(#[source] StoreError),
    #[error("not configured")]
    Misconfigured(#[source] CallbackError),
    /// A webhook without a Checkout project, or an unknown gateway's name.
    #[error("{0}")]
    NotConfigured(&'static str),
}

impl ResponseError for CallbackHttpError {
    fn status_code(&self) -> StatusCode {
        let status = match self {
            CallbackHttpError::Rejected { status, .. }
            | CallbackHttpError::Refused { status, .. } => *status,
            CallbackHttpError::Undecidable(_) => status_of(AnswerClass::Domain(Answer::Malformed)),
            CallbackHttpError::UnknownOrder => status_of(AnswerClass::Domain(Answer::UnknownOrder)),
            CallbackHttpError::Unavailable(_) | CallbackHttpError::Misconfigured(_) => {
                status_of(AnswerClass::Domain(Answer::Unavailable))
            }
            CallbackHttpError::UnsupportedMediaType(_) => {
                status_of(AnswerClass::UnsupportedMediaType)
            }
            CallbackHttpError::TooLarge => status_of(AnswerClass::TooLarge),
            CallbackHttpError::BadBody(_) => status_of(AnswerClass::BadBody),
            CallbackHttpError::NotConfigured(_) => 404,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

/// How the admin API says why it refused: `{"error": "..."}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The reason, in words (never a secret).
    pub error: String,
}

/// The refusals any admin API operation may answer, for its contract
/// (`http::openapi`); each operation adds its own (404, 409, 413, 422).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Read by the OpenAPI derive only: never built.
pub enum Refusals {
    /// A query or path parameter that does not parse.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No bearer token, or a wrong one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The request took longer than the admin listener's deadline.
    #[response(status = 408)]
    TimedOut(ErrorBody),
    /// Too many wrong tokens from this address (`Retry-After` says when).
    #[response(status = 429)]
    TooManyAttempts(ErrorBody),
    /// The database did not answer in time, or failed.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Errors of the admin API, answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// This address sent too many wrong tokens: not looked at until then.
    #[error("too many wrong tokens from this address; try again later")]
    TooManyAttempts { retry_after: std::time::Duration },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A body announced over what the route reads (`body::expect`).
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    #[error("temporarily unavailable")]
    Unavailable(#[source] StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Unavailable(e)
    }
}

impl From<RegistrationError> for AdminError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Invalid(reason) => AdminError::Invalid(reason),
            RegistrationError::Conflict(reason) => AdminError::Conflict(reason),
            RegistrationError::Store(e) => AdminError::Unavailable(e),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AdminError::Unavailable(e) = self {
            tracing::error!(error = %e, "admin request failed on the database");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AdminError::Unauthorized => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            AdminError::TooManyAttempts { retry_after } => {
                response.insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    super::auth::retry_after_seconds(*retry_after),
                ));
            }
            _ => {}
        }
        let mut answer = response.json(ErrorBody {
            error: self.to_string(),
        });
        mark_api_answer(answer.headers_mut());
        answer
    }
}

/// What every answer of the admin API carries: never cached (it holds order
/// and buyer data), never sniffed into something else than JSON. Set by the
/// API's middleware and on `AdminError`'s answers, some of which are sent
/// before the App runs.
pub(super) fn mark_api_answer(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{self, HeaderValue};
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
