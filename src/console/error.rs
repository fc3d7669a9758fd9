//! Errors of the console's pages, answered once as a small HTML page (or a
//! redirect to the sign-in form).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::pipeline::registration::RegistrationError;
use crate::pipeline::ConfirmError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: to the sign-in form, then back to this page.
    #[error("sign in first")]
    SignIn(Option<String>),
    /// A state-changing form without this session's CSRF token.
    #[error("this form is not from this session (missing or wrong CSRF token); reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("temporarily unavailable")]
    Unavailable(#[from] StoreError),
    #[error("the page could not be drawn")]
    Render(#[from] askama::Error),
}

impl From<RegistrationError> for ConsoleError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Invalid(reason) => ConsoleError::BadRequest(reason),
            RegistrationError::Conflict(reason) => ConsoleError::Conflict(reason),
            RegistrationError::Store(e) => ConsoleError::Unavailable(e),
        }
    }
}

impl From<ConfirmError> for ConsoleError {
    fn from(e: ConfirmError) -> Self {
        match e {
            ConfirmError::NotFound(id) => ConsoleError::NotFound(format!("callback {id}")),
            ConfirmError::Store(e) => ConsoleError::Unavailable(e),
            e => ConsoleError::Conflict(e.to_string()),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn(_) => StatusCode::SEE_OTHER,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn(next) => {
                let location = match next {
                    Some(next) => format!("/ui/login?next={}", super::views::encode(next)),
                    None => "/ui/login".to_string(),
                };
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish();
            }
            ConsoleError::Unavailable(e) => {
                tracing::error!(error = %e, "console request failed on the database")
            }
            ConsoleError::Render(e) => tracing::error!(error = %e, "console page not rendered"),
            _ => {}
        }
        let page = super::views::ErrorPage {
            status: self.status_code().as_u16(),
            message: self.to_string(),
        };
        super::views::html(self.status_code(), &page)
            .unwrap_or_else(|_| HttpResponse::build(self.status_code()).body(self.to_string()))
    }
}
