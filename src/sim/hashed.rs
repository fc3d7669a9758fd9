//! A hash-signed gateway's side: a notification as the gateway sends it, its
//! fields form-encoded with the signature its recipe computes over them.

use crate::gateways::{Recipe, Request, SignatureError};

/// Form encoding as the gateways write it: letters, digits and `-._~` kept.
const FORM_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `fields` as a form body, with the recipe's (first) signature made with
/// `secret` appended; a recipe without one (`weboplata`) sends the fields
/// as they are.
pub fn signed_form(
    recipe: &Recipe,
    fields: &[(&str, &str)],
    secret: &str,
) -> Result<String, SignatureError> {
    let mut all: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(signature) = recipe.signatures.first() {
        let request = Request::new(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
        all.push((
            signature.field.clone(),
            signature.sign(&request, secret.as_bytes())?,
        ));
    }
    Ok(all
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, FORM_VALUE),
                percent_encoding::utf8_percent_encode(v, FORM_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&"))
}
