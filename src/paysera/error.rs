//! Why a callback was not accepted, precisely enough to act on.

use crate::domain::{Answer, FieldError, Proof};

/// The small fixed set rejections are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectClass {
    Signature,
    Decoding,
    Project,
    Malformed,
    /// A form payhook is configured not to accept (legacy callbacks while off):
    /// counted, never an alert, since anyone can send one.
    Disabled,
}

impl RejectClass {
    pub const ALL: [RejectClass; 5] = [
        RejectClass::Signature,
        RejectClass::Decoding,
        RejectClass::Project,
        RejectClass::Malformed,
        RejectClass::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectClass::Signature => "signature",
            RejectClass::Decoding => "decoding",
            RejectClass::Project => "project",
            RejectClass::Malformed => "malformed",
            RejectClass::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("missing data")]
    MissingData,
    #[error("parameter {0} is not a single value")]
    NotAValue(String),
    #[error("bad base64 in {0}")]
    BadBase64(&'static str),
    #[error("no RSA signature (ss2 or ss3); ss1 alone is not accepted")]
    NoRsaSignature,
    #[error("legacy callback has no _ss2 signature; _ss1 alone is not accepted")]
    NoLegacyRsaSignature,
    #[error("legacy callback has no _ss1 or _ss1v2 beside _ss2")]
    NoLegacySs1,
    #[error("legacy (wp_) callbacks are not accepted (PAYHOOK_ACCEPT_LEGACY is off)")]
    LegacyDisabled,
    #[error("parameter {0} is given more than once")]
    RepeatedName(String),
    #[error("legacy field {0} is out of the gateway's order")]
    OutOfOrder(&'static str),
    #[error("legacy field {0} is missing")]
    LegacyFieldMissing(&'static str),
    #[error("no signature to check")]
    NoSignature,
    #[error("{0} signature does not verify")]
    SignatureMismatch(Proof),
    #[error("decryption failed")]
    DecryptionFailed,
    #[error("projectid missing")]
    ProjectMissing,
    #[error("projectid {0} is not configured")]
    ProjectNotConfigured(String),
    /// Only Checkout projects are configured: no classic callback can verify.
    #[error("no classic project is configured (only Checkout webhooks are received)")]
    NoClassicProject,
    #[error("field {0} is not valid UTF-8")]
    NotUtf8(String),
    #[error(transparent)]
    Malformed(#[from] FieldError),
    /// Not the callback's fault: the check needs a password nobody configured.
    #[error("the project password is needed to check {0}")]
    PasswordNeeded(&'static str),
}

impl CallbackError {
    pub fn class(&self) -> RejectClass {
        use CallbackError::*;
        match self {
            MissingData
            | NotAValue(_)
            | Malformed(_)
            | RepeatedName(_)
            | OutOfOrder(_)
            | LegacyFieldMissing(_) => RejectClass::Malformed,
            BadBase64(_) | NotUtf8(_) => RejectClass::Decoding,
            NoRsaSignature | NoLegacyRsaSignature | NoLegacySs1 | NoSignature
            | SignatureMismatch(_) | DecryptionFailed | PasswordNeeded(_) => RejectClass::Signature,
            LegacyDisabled => RejectClass::Disabled,
            ProjectMissing | ProjectNotConfigured(_) | NoClassicProject => RejectClass::Project,
        }
    }

    /// How the gateway is answered for it.
    pub fn answer(&self) -> Answer {
        if self.is_configuration() {
            return Answer::Unavailable;
        }
        match self.class() {
            RejectClass::Signature => Answer::Unauthenticated,
            _ => Answer::Malformed,
        }
    }

    /// A configuration problem on our side rather than a bad callback.
    pub fn is_configuration(&self) -> bool {
        matches!(self, CallbackError::PasswordNeeded(_))
    }
}

/// Shortens and escapes text that came from the request before it goes into a
/// message, so a hostile value cannot flood or forge a log line.
pub(crate) fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
