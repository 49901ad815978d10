//! Canonical JSON (OLPC), the byte string every TUF signature covers.
//!
//! TUF signs `canonical(signed)`. We canonicalize the `signed` object *as received*
//! (a `serde_json::Value`, unknown fields included), never a re-serialization of our
//! typed structs: a field we do not model must still be covered by the signature check.

use olpc_cjson::CanonicalFormatter;
use serde::Serialize;

/// A value that cannot be put in canonical form (OLPC canonical JSON has no floats).
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalize JSON: {0} (OLPC canonical JSON allows no floating-point numbers)")]
pub struct CanonicalError(String);

/// The OLPC canonical JSON encoding of `value`.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .map_err(|e| CanonicalError(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_vectors() {
        // Keys sorted by bytes, no whitespace, only `"` and `\` escaped in strings.
        let cases = [
            (
                json!({"b": 1, "a": [true, null, "x"]}),
                r#"{"a":[true,null,"x"],"b":1}"#,
            ),
            (json!({"q": "a\"b\\c"}), r#"{"q":"a\"b\\c"}"#),
            (json!({"n": "line\nbreak"}), "{\"n\":\"line\nbreak\"}"),
            (json!({"é": "ü", "Z": -3}), "{\"Z\":-3,\"é\":\"ü\"}"),
            (json!({}), "{}"),
        ];
        for (value, expected) in cases {
            let got = to_canonical(&value).expect("canonical");
            assert_eq!(String::from_utf8(got).expect("utf8"), expected);
        }
    }

    #[test]
    fn floats_are_rejected() {
        assert!(to_canonical(&json!({"f": 1.5})).is_err());
    }
}
