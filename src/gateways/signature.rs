//! A hash-recipe signature: the string a gateway signs, built from ordered
//! parts (a field's value, the shop's secret, a literal, the fields with a
//! prefix in name order) joined by a separator, digested (md5, sha1, sha256,
//! sha384, sha512) and written as hex or base64. `../docs/gateways.md` §2
//! gives each gateway's recipe. Pure: the caller hands in the fields as
//! received (bytes, before any charset decoding: the gateway signs those).

use std::collections::BTreeSet;

use base64::Engine;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use super::Request;

/// One part of the signed string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A request field's value, as received; a missing field fails.
    Field(String),
    /// The shop's secret.
    Secret,
    /// Fixed text.
    Literal(String),
    /// Every field whose name starts with the prefix (none excluded), in
    /// byte order of the names, each `value` or `name=value`, joined by the
    /// separator. Contributes nothing, not even a separator, when no field
    /// matches.
    Sorted(SortedFields),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedFields {
    pub prefix: String,
    pub exclude: Vec<String>,
    pub form: PairForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairForm {
    Value,
    NameValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub const ALL: [Digest; 5] = [
        Digest::Md5,
        Digest::Sha1,
        Digest::Sha256,
        Digest::Sha384,
        Digest::Sha512,
    ];

    pub fn parse(name: &str) -> Option<Digest> {
        Digest::ALL.into_iter().find(|d| d.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
        }
    }

    fn digest(self, input: &[u8]) -> Vec<u8> {
        match self {
            Digest::Md5 => Md5::digest(input).to_vec(),
            Digest::Sha1 => Sha1::digest(input).to_vec(),
            Digest::Sha256 => Sha256::digest(input).to_vec(),
            Digest::Sha384 => Sha384::digest(input).to_vec(),
            Digest::Sha512 => Sha512::digest(input).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    HexLower,
    HexUpper,
    Base64,
}

impl Output {
    pub const ALL: [Output; 3] = [Output::HexLower, Output::HexUpper, Output::Base64];

    pub fn parse(name: &str) -> Option<Output> {
        Output::ALL.into_iter().find(|o| o.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Output::HexLower => "hex",
            Output::HexUpper => "hex_upper",
            Output::Base64 => "base64",
        }
    }

    fn encode(self, digest: &[u8]) -> String {
        match self {
            Output::HexLower => hex::encode(digest),
            Output::HexUpper => hex::encode_upper(digest),
            Output::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
        }
    }
}

/// A signature recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The field that carries the signature.
    pub field: String,
    pub parts: Vec<Part>,
    pub separator: String,
    pub digest: Digest,
    pub output: Output,
    /// Compare ignoring ASCII case (a gateway whose hex case varies; never
    /// for base64, where case is part of the value).
    pub case_insensitive: bool,
}

/// Why a signature did not verify. Never says what the right one would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature field {0}")]
    Missing(String),
    #[error("field {0}, part of the signed string, is missing")]
    PartMissing(String),
    #[error("field {0} appears more than once")]
    Repeated(String),
    #[error("signature {0} does not match")]
    Mismatch(String),
}

impl Signature {
    /// The string signed for `request` with `secret`. Holds the secret: never
    /// stored or logged.
    pub fn signed_string(
        &self,
        request: &Request,
        secret: &[u8],
    ) -> Result<Vec<u8>, SignatureError> {
        let mut out = Vec::new();
        let mut first = true;
        let mut push = |out: &mut Vec<u8>, piece: &[u8]| {
            if !first {
                out.extend_from_slice(self.separator.as_bytes());
            }
            first = false;
            out.extend_from_slice(piece);
        };
        for part in &self.parts {
            match part {
                Part::Field(name) => {
                    let value = request
                        .single(name)
                        .map_err(|_| SignatureError::Repeated(name.clone()))?
                        .ok_or_else(|| SignatureError::PartMissing(name.clone()))?;
                    push(&mut out, value);
                }
                Part::Secret => push(&mut out, secret),
                Part::Literal(text) => push(&mut out, text.as_bytes()),
                Part::Sorted(sorted) => {
                    for (name, value) in self.sorted_fields(sorted, request)? {
                        match sorted.form {
                            PairForm::Value => push(&mut out, value),
                            PairForm::NameValue => {
                                let mut pair = name.as_bytes().to_vec();
                                pair.push(b'=');
                                pair.extend_from_slice(value);
                                push(&mut out, &pair);
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn sorted_fields<'r>(
        &self,
        sorted: &SortedFields,
        request: &'r Request,
    ) -> Result<Vec<(&'r str, &'r [u8])>, SignatureError> {
        let mut chosen: Vec<(&str, &[u8])> = request
            .iter()
            .filter(|(name, _)| {
                name.starts_with(&sorted.prefix)
                    && *name != self.field
                    && !sorted.exclude.iter().any(|e| e == name)
            })
            .collect();
        chosen.sort_by(|a, b| a.0.cmp(b.0));
        if let Some(pair) = chosen.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SignatureError::Repeated(pair[0].0.to_string()));
        }
        Ok(chosen)
    }

    /// The signature `request` would carry, signed with `secret`.
    pub fn sign(&self, request: &Request, secret: &[u8]) -> Result<String, SignatureError> {
        let signed = self.signed_string(request, secret)?;
        Ok(self.output.encode(&self.digest.digest(&signed)))
    }

    /// Checks the request's signature against each secret in turn (the
    /// current one, then a previous one during a rotation), in constant time
    /// for each.
    pub fn verify(&self, request: &Request, secrets: &[&[u8]]) -> Result<(), SignatureError> {
        let received = request
            .single(&self.field)
            .map_err(|_| SignatureError::Repeated(self.field.clone()))?
            .ok_or_else(|| SignatureError::Missing(self.field.clone()))?;
        let mut matched = subtle::Choice::from(0);
        for secret in secrets {
            let expected = self.sign(request, secret)?;
            matched |= self.same(received, expected.as_bytes());
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch(self.field.clone()))
        }
    }

    fn same(&self, received: &[u8], expected: &[u8]) -> subtle::Choice {
        // Only hex has a case to ignore: in base64 case is part of the value.
        if self.case_insensitive && self.output != Output::Base64 {
            received
                .to_ascii_lowercase()
                .ct_eq(&expected.to_ascii_lowercase())
        } else {
            received.ct_eq(expected)
        }
    }

    /// Whether the field `name` is part of what this recipe signs.
    pub fn covers(&self, name: &str) -> bool {
        self.parts.iter().any(|part| match part {
            Part::Field(f) => f == name,
            Part::Sorted(s) => {
                name.starts_with(&s.prefix)
                    && name != self.field
                    && !s.exclude.iter().any(|e| e == name)
            }
            Part::Secret | Part::Literal(_) => false,
        })
    }

    /// The fields of `request` the signature covers, by name (what is stored
    /// whole as the signed part).
    pub fn covered<'r>(&self, request: &'r Request) -> BTreeSet<&'r str> {
        request
            .iter()
            .map(|(name, _)| name)
            .filter(|name| self.covers(name) || *name == self.field)
            .collect()
    }

    /// Whether the recipe signs with the secret at all (a recipe without it
    /// proves nothing: anyone can compute the digest).
    pub fn uses_secret(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Request {
        Request::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn fields(names: &[&str]) -> Vec<Part> {
        names.iter().map(|n| Part::Field(n.to_string())).collect()
    }

    #[test]
    fn freekassa_s_published_example_verifies() {
        let mut parts = fields(&["MERCHANT_ID", "AMOUNT"]);
        parts.push(Part::Secret);
        parts.push(Part::Field("MERCHANT_ORDER_ID".into()));
        let recipe = Signature {
            field: "SIGN".into(),
            parts,
            separator: ":".into(),
            digest: Digest::Md5,
            output: Output::HexLower,
            case_insensitive: false,
        };
        let req = request(&[
            ("MERCHANT_ID", "14963"),
            ("AMOUNT", "99"),
            ("MERCHANT_ORDER_ID", "ID_234"),
            ("SIGN", "c0905625cf96d7730487a4dda69c6a09"),
        ]);
        assert_eq!(recipe.verify(&req, &[b"secret_word_2"]), Ok(()));
        assert!(recipe.verify(&req, &[b"other"]).is_err());
        // The previous secret of a rotation still verifies.
        assert_eq!(recipe.verify(&req, &[b"new", b"secret_word_2"]), Ok(()));
        assert!(recipe.covers("AMOUNT") && !recipe.covers("intid"));
    }

    #[test]
    fn sorted_fields_contribute_nothing_when_none_match() {
        let recipe = Signature {
            field: "SignatureValue".into(),
            parts: vec![
                Part::Field("OutSum".into()),
                Part::Secret,
                Part::Sorted(SortedFields {
                    prefix: "Shp_".into(),
                    exclude: vec![],
                    form: PairForm::NameValue,
                }),
            ],
            separator: ":".into(),
            digest: Digest::Md5,
            output: Output::HexUpper,
            case_insensitive: true,
        };
        let plain = request(&[("OutSum", "10.00")]);
        assert_eq!(recipe.signed_string(&plain, b"pw").unwrap(), b"10.00:pw");
        let extra = request(&[("Shp_b", "2"), ("OutSum", "10.00"), ("Shp_a", "1")]);
        assert_eq!(
            recipe.signed_string(&extra, b"pw").unwrap(),
            b"10.00:pw:Shp_a=1:Shp_b=2"
        );
    }

    #[test]
    fn a_repeated_signed_field_is_refused_not_guessed() {
        let recipe = Signature {
            field: "s".into(),
            parts: vec![Part::Field("a".into()), Part::Secret],
            separator: ":".into(),
            digest: Digest::Sha256,
            output: Output::Base64,
            case_insensitive: false,
        };
        let req = request(&[("a", "1"), ("a", "2"), ("s", "x")]);
        assert_eq!(
            recipe.verify(&req, &[b"k"]),
            Err(SignatureError::Repeated("a".into()))
        );
    }
}
