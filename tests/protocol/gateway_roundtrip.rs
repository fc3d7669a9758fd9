//! Property tests of the gateway recipes: a request signed by any recipe
//! (every digest, output and part kind) verifies with its secret, and with
//! nothing else; any change to a covered field or to the signature is
//! refused; a field the recipe does not cover changes nothing it proves.

use payhook::gateways::{Digest, Output, PairForm, Part, Request, Signature, SortedFields};
use proptest::prelude::*;

/// Field names: a few plain ones and a few with the sorted part's prefix.
const NAMES: [&str; 6] = ["a", "b", "order", "p_x", "p_y", "p_z"];

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        (0..3usize).prop_map(|i| Part::Field(NAMES[i].to_string())),
        Just(Part::Secret),
        "[ -~]{0,6}".prop_map(Part::Literal),
        (any::<bool>(), prop::option::of(3..6usize)).prop_map(|(name_value, exclude)| {
            Part::Sorted(SortedFields {
                prefix: "p_".into(),
                exclude: exclude.map(|i| NAMES[i].to_string()).into_iter().collect(),
                form: if name_value {
                    PairForm::NameValue
                } else {
                    PairForm::Value
                },
            })
        }),
    ]
}

fn recipe() -> impl Strategy<Value = Signature> {
    (
        prop::collection::vec(part(), 1..6),
        prop::sample::select(vec!["", ":", ";", "&", "|"]),
        prop::sample::select(Digest::ALL.to_vec()),
        prop::sample::select(Output::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(mut parts, sep, digest, output, case_insensitive)| {
            // Every recipe signs with the secret (start-up refuses one that does not).
            parts.push(Part::Secret);
            Signature {
                field: "sig".into(),
                parts,
                separator: sep.into(),
                digest,
                output,
                case_insensitive,
            }
        })
}

/// Every field name once, with arbitrary bytes as values.
fn fields() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), NAMES.len())
        .prop_map(|values| NAMES.iter().map(|n| n.to_string()).zip(values).collect())
}

fn with_signature(fields: &[(String, Vec<u8>)], signature: &str) -> Request {
    let mut all = fields.to_vec();
    all.push(("sig".into(), signature.as_bytes().to_vec()));
    Request::new(all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_a_recipe_signs_it_verifies_and_nothing_else(
        recipe in recipe(),
        fields in fields(),
        secret in prop::collection::vec(any::<u8>(), 1..16),
        other in prop::collection::vec(any::<u8>(), 1..16),
        pick in any::<prop::sample::Index>(),
    ) {
        let unsigned = Request::new(fields.clone());
        let signature = recipe.sign(&unsigned, &secret).unwrap();
        let request = with_signature(&fields, &signature);
        prop_assert_eq!(recipe.verify(&request, &[&secret]), Ok(()));
        if other != secret {
            prop_assert!(recipe.verify(&request, &[&other]).is_err());
        }
        // The other case of a hex signature: only where the recipe says so.
        let flipped: String = signature.chars().map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        if flipped != signature {
            let verdict = recipe.verify(&with_signature(&fields, &flipped), &[&secret]);
            prop_assert_eq!(verdict.is_ok(), recipe.case_insensitive && recipe.output != Output::Base64);
        }
        // Any change to one field: refused exactly when the recipe covers it.
        let i = pick.index(fields.len());
        let mut changed = fields.clone();
        changed[i].1.push(b'!');
        let verdict = recipe.verify(&with_signature(&changed, &signature), &[&secret]);
        prop_assert_eq!(verdict.is_err(), recipe.covers(&fields[i].0), "field {}", fields[i].0);
    }
}
