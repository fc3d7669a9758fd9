//! Every error on the request path, mapped once to an HTTP answer: the client
//! sees a short reason, the log sees the detail, nobody sees a secret.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::domain::Answer;
use crate::paysera::CallbackError;
use crate::store::StoreError;

/// The answer classes of the callback endpoint: the domain's, and those only
/// the transport knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackClass {
    Domain(Answer),
    /// Not a form, or a body in a content coding.
    UnsupportedMediaType,
    TooLarge,
    /// A body that could not be read as bytes.
    BadBody,
}

/// The one table of the callback endpoint: the status each class is answered
/// with, and stored with.
pub fn callback_status(class: CallbackClass) -> StatusCode {
    match class {
        CallbackClass::Domain(Answer::Ok(_)) => StatusCode::OK,
        CallbackClass::Domain(Answer::Unauthenticated | Answer::Malformed)
        | CallbackClass::BadBody => StatusCode::BAD_REQUEST,
        CallbackClass::Domain(Answer::UnknownOrder) => StatusCode::CONFLICT,
        CallbackClass::Domain(Answer::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
        CallbackClass::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        CallbackClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

/// Why a callback was not answered `OK`.
#[derive(Debug, thiserror::Error)]
pub enum CallbackHttpError {
    /// Verification failed: the typed reason, as the gateway is told it.
    #[error("rejected: {0}")]
    Rejected(CallbackError),
    /// Verified, but the decision could not accept it (`orderid missing`).
    #[error("rejected: {0}")]
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
}

impl CallbackHttpError {
    pub fn class(&self) -> CallbackClass {
        match self {
            CallbackHttpError::Rejected(e) => CallbackClass::Domain(e.answer()),
            CallbackHttpError::Undecidable(_) => CallbackClass::Domain(Answer::Malformed),
            CallbackHttpError::UnknownOrder => CallbackClass::Domain(Answer::UnknownOrder),
            CallbackHttpError::Unavailable(_) | CallbackHttpError::Misconfigured(_) => {
                CallbackClass::Domain(Answer::Unavailable)
            }
            CallbackHttpError::UnsupportedMediaType(_) => CallbackClass::UnsupportedMediaType,
            CallbackHttpError::TooLarge => CallbackClass::TooLarge,
            CallbackHttpError::BadBody(_) => CallbackClass::BadBody,
        }
    }
}

impl ResponseError for CallbackHttpError {
    fn status_code(&self) -> StatusCode {
        callback_status(self.class())
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

/// Why a Checkout webhook was not answered 200.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutHttpError {
    /// Headers or signature: `PAYHOOK_CHECKOUT_REJECT_STATUS` (403), so that
    /// Paysera keeps retrying while the operator fixes a mistyped secret.
    #[error("rejected: {reason}")]
    Rejected { status: u16, reason: String },
    /// Authentic, but the body is not a webhook payhook can read.
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("unknown order")]
    UnknownOrder,
    #[error("{0}")]
    Unsupported(&'static str),
    /// Too large, or a body that could not be read.
    #[error(transparent)]
    Transport(CallbackHttpError),
    #[error("no Checkout project is configured")]
    NotConfigured,
    #[error("temporarily unavailable")]
    Unavailable(#[source] StoreError),
}

impl ResponseError for CheckoutHttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            CheckoutHttpError::Rejected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN)
            }
            CheckoutHttpError::Malformed(_) => StatusCode::BAD_REQUEST,
            CheckoutHttpError::UnknownOrder => {
                callback_status(CallbackClass::Domain(Answer::UnknownOrder))
            }
            CheckoutHttpError::Unsupported(_) => {
                callback_status(CallbackClass::UnsupportedMediaType)
            }
            CheckoutHttpError::Transport(e) => e.status_code(),
            CheckoutHttpError::NotConfigured => StatusCode::NOT_FOUND,
            CheckoutHttpError::Unavailable(_) => {
                callback_status(CallbackClass::Domain(Answer::Unavailable))
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
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
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}
