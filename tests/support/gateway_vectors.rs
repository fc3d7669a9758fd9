//! The hash-signed gateways' vectors (`tests/vectors-gateways/`, a copy of
//! the shared set built from each gateway's published example).

use std::path::PathBuf;

use serde_json::Value;

/// Every vector, by file name.
pub fn gateway_vectors() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors-gateways");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "gateway vectors missing in {}",
        dir.display()
    );
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// A vector's amount in minor units, from its `amount_major` (`99`, `300.00`).
pub fn expected_minor(vector: &Value) -> i64 {
    let major = vector["expect"]["amount_major"].as_str().unwrap();
    match major.split_once('.') {
        Some((whole, cents)) => whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap(),
        None => major.parse::<i64>().unwrap() * 100,
    }
}
