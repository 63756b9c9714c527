//! Text that came from another process (comm, command-line arguments),
//! kept as the exact bytes the kernel gave. Plain data: no escaping here
//! (renderers escape before a terminal sees it).
//!
//! JSON form (contract): a string when the bytes are valid UTF-8 (every
//! ordinary name); otherwise an array of the exact byte values, e.g.
//! `[98,97,100,255,254]` for `bad\xff\xfe`. One rule for every such field,
//! lossless both ways, and a consumer that compares with a string never
//! matches a name that was not that string. (A U+FFFD replacement would
//! make two different names equal; an escaped string would be ambiguous
//! with a name that really contains a backslash.)

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exact bytes from another process.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawText(pub Vec<u8>);

impl RawText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text with invalid UTF-8 replaced by U+FFFD. Not escaped: a
    /// renderer must escape it before a terminal sees it.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for RawText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

impl From<&str> for RawText {
    fn from(s: &str) -> Self {
        RawText(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for RawText {
    fn from(b: &[u8]) -> Self {
        RawText(b.to_vec())
    }
}

impl PartialEq<&str> for RawText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl Serialize for RawText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => self.0.serialize(s),
        }
    }
}

/// The same two forms: a string, or an array of byte values.
impl<'de> Deserialize<'de> for RawText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of byte values")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawText, E> {
                Ok(RawText::from(s))
            }

            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<RawText, E> {
                Ok(RawText::from(b))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawText, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(RawText(bytes))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawText {
    fn schema_name() -> Cow<'static, str> {
        "RawText".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Text from another process, exact: a string when it is valid UTF-8, otherwise an array of its byte values (e.g. [98,97,100,255,254] for bad\\xff\\xfe).",
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_a_string_when_utf8_else_the_exact_bytes() {
        let ok = RawText::from("nginx: worker");
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#""nginx: worker""#);
        let esc = RawText::from("\u{1b}]0;x\u{7}");
        assert_eq!(
            serde_json::to_string(&esc).unwrap(),
            r#""\u001b]0;x\u0007""#
        );
        let bad = RawText(b"bad\xff\xfe".to_vec());
        assert_eq!(serde_json::to_string(&bad).unwrap(), "[98,97,100,255,254]");
        assert_eq!(bad.to_string_lossy(), "bad\u{fffd}\u{fffd}");
        assert_eq!(format!("{bad:?}"), r#"b"bad\xff\xfe""#);
    }
}
