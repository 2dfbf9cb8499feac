//! Text that comes from outside: the one rule every string passes before anything stores,
//! compares or logs it, and the bounds of each kind of input (docs/security.md, "Input
//! limits").
//!
//! The rule: no control characters (Unicode category Cc: U+0000–U+001F, U+007F–U+009F).
//! PostgreSQL refuses NUL in `text` outright (a 500 if it gets that far), SQLite
//! truncates at it in some functions, and the others corrupt logs and terminals. Letters,
//! marks and format characters of every script pass (Łukasz, 李小龍, محمد, the zero-width
//! joiner inside 👩‍💻).

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ArrayBuilder, ObjectBuilder, RefOr, Schema, schema::Type},
};

/// Longest query-string value, in characters (any parameter).
pub const MAX_QUERY_VALUE_CHARS: usize = 1024;
/// Longest path segment, in characters (`{user_ref}`, `{provider}`, `{name}`, `{id}`).
pub const MAX_PATH_SEGMENT_CHARS: usize = 256;
/// Longest string anywhere in a JSON body, in characters, unless its field says less.
pub const MAX_BODY_STRING_CHARS: usize = 8192;
/// Longest array anywhere in a JSON body, unless its field says less.
pub const MAX_BODY_ARRAY_ITEMS: usize = 1000;
/// Longest object key in a JSON body, in characters.
pub const MAX_BODY_KEY_CHARS: usize = 128;
/// Most scopes in one request (`scopes` of authorize and of `POST /internal/tokens/get`).
pub const MAX_SCOPES: usize = 50;
/// Longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 256;

/// The message for a string holding a control character.
pub const CONTROL_MESSAGE: &str = "must not contain control characters";

/// True when `s` holds a character the edge refuses.
#[must_use]
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks the one rule and a length bound (in characters).
///
/// # Errors
/// The message to show next to the field.
pub fn check_text(s: &str, max_chars: usize) -> Result<(), String> {
    if has_control(s) {
        return Err(CONTROL_MESSAGE.to_owned());
    }
    // Counting stops as soon as the bound is passed: a huge value costs no more than that.
    if s.chars().nth(max_chars).is_some() {
        return Err(format!("must be at most {max_chars} characters"));
    }
    Ok(())
}

/// A string of at most `MAX` characters without control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Validates `s`.
    ///
    /// # Errors
    /// The message to show next to the field.
    pub fn parse(s: &str) -> Result<Self, String> {
        check_text(s, MAX).map(|()| Self(s.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

// Only the length: a value may be a secret (an authorization code).
impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The schema pattern of the rule: no character of category Cc.
pub const NO_CONTROL_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

impl<const MAX: usize> PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX))
            .pattern(Some(NO_CONTROL_PATTERN))
            .description(Some(format!(
                "Text of at most {MAX} characters, without control characters"
            )))
            .into()
    }
}

impl<const MAX: usize> ToSchema for Text<MAX> {
    // One component per bound: `Text<128>` and `Text<4096>` are different schemas.
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MAX}"))
    }
}

/// An OAuth scope (RFC 6749 §3.3 `scope-token`): 1–256 printable ASCII characters other
/// than space, `"` and `\`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// Validates a scope.
    ///
    /// # Errors
    /// When it is empty, too long or holds another character.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let ok = !s.is_empty()
            && s.len() <= MAX_SCOPE_LEN
            && s.bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1-256 printable characters without spaces or quotes")
        }
    }

    /// The scope.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// At most [`MAX_SCOPES`] scopes. A bad one is named by its index (`scopes[3]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// The scopes as strings, for the use cases.
    #[must_use]
    pub fn into_strings(self) -> Vec<String> {
        self.0.into_iter().map(|s| s.0).collect()
    }

    /// Checks a list already in strings, naming `field` or `field[i]`.
    ///
    /// # Errors
    /// Every invalid entry, and the count when over [`MAX_SCOPES`].
    pub fn check(field: &str, scopes: &[String]) -> Result<(), crate::ValidationErrors> {
        let mut errors = crate::ValidationErrors::default();
        if scopes.len() > MAX_SCOPES {
            errors.push(field, format!("must hold at most {MAX_SCOPES} scopes"));
        }
        for (i, s) in scopes.iter().enumerate() {
            if let Err(m) = Scope::parse(s) {
                errors.push(format!("{field}[{i}]"), m);
            }
        }
        errors.into_result()
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Scope>::deserialize(d)?;
        if v.len() > MAX_SCOPES {
            return Err(de::Error::custom(format!(
                "must hold at most {MAX_SCOPES} scopes"
            )));
        }
        Ok(Self(v))
    }
}

impl PartialSchema for Scopes {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_SCOPE_LEN))
                    .pattern(Some("^[!#-\\[\\]-~]+$")),
            )
            .max_items(Some(MAX_SCOPES))
            .description(Some("OAuth scopes (RFC 6749 scope-token each)"))
            .into()
    }
}

impl ToSchema for Scopes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_passes_and_controls_do_not() {
        for ok in [
            "Łukasz",
            "李小龍",
            "محمد",
            "👩‍💻🦀",
            "Zoë O'Brien-Åsa",
            "नमस्ते",
        ] {
            assert_eq!(check_text(ok, 100), Ok(()), "{ok}");
        }
        for bad in ["a\0b", "a\nb", "\t", "a\u{7f}", "a\u{85}b", "\u{9f}"] {
            assert_eq!(
                check_text(bad, 100),
                Err(CONTROL_MESSAGE.to_owned()),
                "{bad:?}"
            );
        }
        assert!(check_text(&"李".repeat(10), 10).is_ok());
        assert!(check_text(&"李".repeat(11), 10).is_err());
    }

    #[test]
    fn text_deserializes_only_when_valid() {
        let t: Text<5> = serde_json::from_str(r#""ab""#).expect("valid");
        assert_eq!(t.as_str(), "ab");
        assert!(serde_json::from_str::<Text<5>>(r#""a\u0000""#).is_err());
        assert!(serde_json::from_str::<Text<5>>(r#""abcdef""#).is_err());
        assert!(!format!("{t:?}").contains("ab"));
    }

    #[test]
    fn scopes() {
        let ok: Scopes =
            serde_json::from_str(r#"["openid","https://x.com/a.readonly"]"#).expect("valid");
        assert_eq!(ok.into_strings().len(), 2);
        for bad in [r#"[""]"#, r#"["a b"]"#, r#"["a\u0000"]"#, r#"["a\"b"]"#] {
            assert!(serde_json::from_str::<Scopes>(bad).is_err(), "{bad}");
        }
        let many = serde_json::to_string(&vec!["s"; MAX_SCOPES + 1]).expect("json");
        assert!(serde_json::from_str::<Scopes>(&many).is_err());
        let errs = Scopes::check("scopes", &["ok".into(), "b\u{0}".into()]).expect_err("bad");
        assert_eq!(errs.0[0].field, "scopes[1]");
    }
}
