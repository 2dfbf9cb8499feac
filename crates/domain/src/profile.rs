//! The writable part of a user's profile: validated newtypes and the partial update that
//! collects every field error at once.

use crate::ValidationErrors;

/// A first or last name: trimmed, 1–100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Validates a name.
    ///
    /// # Errors
    /// When it is empty after trimming, too long or holds control characters.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.chars().count() > 100 {
            return Err("must be at most 100 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `https://` URL with a host, at most 2048 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsUrl(String);

impl HttpsUrl {
    /// Validates a URL.
    ///
    /// # Errors
    /// When it is not an https URL with a host, is too long or holds whitespace or control
    /// characters.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.len() > 2048 {
            return Err("must be at most 2048 characters");
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must be an https URL");
        }
        let rest = s
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("https://"))
            .map(|_| &s[8..])
            .ok_or("must be an https URL")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default();
        if host.is_empty() {
            return Err("must be an https URL with a host");
        }
        Ok(Self(s.to_owned()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An onboarding step name: 1–64 characters of `a-z 0-9 _ -`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnboardingStep(String);

impl OnboardingStep {
    /// Validates a step name.
    ///
    /// # Errors
    /// When it is empty, too long or holds another character.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err("must be 1 to 64 characters of a-z, 0-9, _ and -");
        }
        Ok(Self(s.to_owned()))
    }

    /// The step name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A partial profile update as received: absent fields are `None`, a `null` is
/// `Some(None)` (clears the field).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawProfileUpdate {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub profile_image_url: Option<Option<String>>,
    pub onboarding_step: Option<Option<String>>,
    pub onboarding_completed: Option<bool>,
}

/// A validated partial profile update (same shape as [`RawProfileUpdate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub profile_image_url: Option<Option<HttpsUrl>>,
    pub onboarding_step: Option<Option<OnboardingStep>>,
    pub onboarding_completed: Option<bool>,
}

impl RawProfileUpdate {
    /// Validates every field, reporting all invalid ones together.
    ///
    /// # Errors
    /// The field errors, each under its field name.
    pub fn validate(self) -> Result<ProfileUpdate, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let first_name = field(
            &mut errors,
            "first_name",
            self.first_name,
            PersonName::parse,
        );
        let last_name = field(&mut errors, "last_name", self.last_name, PersonName::parse);
        let profile_image_url = field(
            &mut errors,
            "profile_image_url",
            self.profile_image_url,
            HttpsUrl::parse,
        );
        let onboarding_step = field(
            &mut errors,
            "onboarding_step",
            self.onboarding_step,
            OnboardingStep::parse,
        );
        errors.into_result()?;
        Ok(ProfileUpdate {
            first_name,
            last_name,
            profile_image_url,
            onboarding_step,
            onboarding_completed: self.onboarding_completed,
        })
    }
}

fn field<T>(
    errors: &mut ValidationErrors,
    name: &str,
    value: Option<Option<String>>,
    parse: impl Fn(&str) -> Result<T, &'static str>,
) -> Option<Option<T>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => match parse(&s) {
            Ok(v) => Some(Some(v)),
            Err(msg) => {
                errors.push(name, msg);
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            PersonName::parse("  Ada ").map(|n| n.as_str().to_owned()),
            Ok("Ada".to_owned())
        );
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert!(PersonName::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn urls() {
        assert!(HttpsUrl::parse("https://img.example.com/a.png").is_ok());
        assert!(HttpsUrl::parse("HTTPS://img.example.com").is_ok());
        for bad in [
            "http://x.com",
            "https://",
            "https:///path",
            "javascript:alert(1)",
            "https://a b.com",
            "ftp://x",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://x.com/{}", "a".repeat(2048));
        assert!(HttpsUrl::parse(&long).is_err());
    }

    #[test]
    fn steps() {
        assert!(OnboardingStep::parse("connect_google-2").is_ok());
        for bad in ["", "Welcome", "a b", &"a".repeat(65)] {
            assert!(OnboardingStep::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let raw = RawProfileUpdate {
            first_name: Some(Some(" ".into())),
            last_name: Some(None),
            profile_image_url: Some(Some("http://x.com".into())),
            onboarding_step: Some(Some("Bad Step".into())),
            onboarding_completed: Some(true),
        };
        let errs = raw.validate().expect_err("invalid");
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["first_name", "profile_image_url", "onboarding_step"]
        );
    }
}
