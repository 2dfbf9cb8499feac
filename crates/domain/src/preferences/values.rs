//! The validated scalar values of the preferences document: string enums, time zones,
//! language tags, `HH:MM` times, bounded integers and names. Each one deserializes only
//! from a valid value, with an error message a client can show next to the field.

use std::{borrow::Cow, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, schema::Type},
};

/// Declares a string enum with its wire names, a `must be one of …` error and its schema.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in the order the contract lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }

            /// `must be one of a, b, c`.
            fn expected() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(Self::expected)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'_, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::Schema> {
                ::utoipa::openapi::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl ::utoipa::ToSchema for $name {}
    };
}

pub(crate) use string_enum;

string_enum!(
    /// `ui.theme`.
    Theme { Light = "light", Dark = "dark", System = "system" }
);
string_enum!(
    /// `ui.date_format`: how dates are shown. The contract names only the default; these
    /// are the common orders (ISO, day-first, month-first, dotted day-first).
    DateFormat { Iso = "YYYY-MM-DD", DayFirst = "DD/MM/YYYY", MonthFirst = "MM/DD/YYYY", Dotted = "DD.MM.YYYY" }
);
string_enum!(
    /// `ui.time_format`.
    TimeFormat { H12 = "12h", H24 = "24h" }
);
string_enum!(
    /// `ui.density`.
    Density { Comfortable = "comfortable", Compact = "compact" }
);
string_enum!(
    /// `notifications.digest_frequency`.
    DigestFrequency { Never = "never", Daily = "daily", Weekly = "weekly" }
);
string_enum!(
    /// `ai.response_style`.
    ResponseStyle { Concise = "concise", Balanced = "balanced", Detailed = "detailed" }
);
string_enum!(
    /// `privacy.profile_visibility`.
    ProfileVisibility { Private = "private", Team = "team", Public = "public" }
);

/// Declares a string newtype validated by `$check` (returning the canonical form or the
/// error message), with its schema.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:path, $describe:literal $(, pattern = $pattern:literal)?) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A built-in literal, taken as valid (the built-in defaults test re-checks it).
            #[allow(dead_code)] // not every type has a built-in default
            pub(super) fn trusted(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $check(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<str>::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                #[allow(unused_mut)]
                let mut b = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($describe));
                $(b = b.pattern(Some($pattern));)?
                b.into()
            }
        }

        impl ToSchema for $name {}
    };
}

checked_string!(
    /// An IANA time zone name (`Europe/Berlin`, `UTC`), checked against the tz database
    /// embedded in the binary (jiff's bundled copy, so every host agrees), stored in the
    /// database's own spelling.
    Timezone, check_timezone, "An IANA time zone name, e.g. Europe/Berlin"
);
checked_string!(
    /// A BCP 47 (RFC 5646) language tag, well-formed and made of registered subtags,
    /// stored in canonical form (`pt-BR`).
    LanguageTag, check_language, "A BCP 47 language tag, e.g. en or pt-BR"
);
checked_string!(
    /// A wall-clock time `HH:MM`, 00:00 to 23:59.
    HhMm, check_hh_mm, "A time of day HH:MM (00:00-23:59)",
    pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
);
checked_string!(
    /// An OAuth provider name (`google`, `microsoft`). Checked for shape only: the provider
    /// catalog, once it exists, is consulted through [`ProviderName::is_known_by`].
    ProviderName, check_provider, "An OAuth provider name from the provider catalog",
    pattern = "^[a-z0-9_-]{1,32}$"
);
checked_string!(
    /// The name of an AI model: 1-100 printable characters without spaces.
    ModelName, check_model, "An AI model name",
    pattern = "^[!-~]{1,100}$"
);

impl ProviderName {
    /// The seam for the provider catalog: true when `catalog` knows this name.
    #[must_use]
    pub fn is_known_by(&self, catalog: &[&str]) -> bool {
        catalog.contains(&self.0.as_str())
    }
}

fn check_timezone(s: &str) -> Result<String, String> {
    const MSG: &str = "must be an IANA time zone such as Europe/Berlin";
    // The database lookup is case-insensitive: keep its spelling, not the caller's.
    match jiff::tz::db().get(s) {
        Ok(tz) => Ok(tz.iana_name().unwrap_or(s).to_owned()),
        Err(_) => Err(MSG.to_owned()),
    }
}

fn check_language(s: &str) -> Result<String, String> {
    const MSG: &str = "must be a BCP 47 language tag such as en or pt-BR";
    let tag = language_tags::LanguageTag::parse(s).map_err(|_| MSG.to_owned())?;
    // `parse` checks the grammar; `validate` checks the subtags against the IANA registry.
    tag.validate().map_err(|_| MSG.to_owned())?;
    Ok(tag.canonicalize().map_or(tag, |c| c).into_string())
}

fn check_hh_mm(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = b.len() == 5
        && b[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
        && (b[0] - b'0') * 10 + (b[1] - b'0') < 24
        && b[3] < b'6';
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be a time HH:MM between 00:00 and 23:59".to_owned())
    }
}

fn check_provider(s: &str) -> Result<String, String> {
    let ok = (1..=32).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be a provider name of 1-32 characters a-z, 0-9, _ or -".to_owned())
    }
}

fn check_model(s: &str) -> Result<String, String> {
    if (1..=100).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic()) {
        Ok(s.to_owned())
    } else {
        Err("must be 1-100 printable characters without spaces".to_owned())
    }
}

/// Declares an integer newtype limited to `$min..=$max`, with its schema.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $min:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The smallest allowed value.
            pub const MIN: u32 = $min;
            /// The largest allowed value.
            pub const MAX: u32 = $max;

            /// The value, when within range.
            ///
            /// # Errors
            /// `must be between MIN and MAX` otherwise.
            pub fn new(v: i64) -> Result<Self, String> {
                if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&v) {
                    // In range, so it fits.
                    Ok(Self(u32::try_from(v).map_err(|e| e.to_string())?))
                } else {
                    Err(format!("must be between {} and {}", Self::MIN, Self::MAX))
                }
            }

            /// The number.
            #[must_use]
            pub const fn get(self) -> u32 {
                self.0
            }

            /// A built-in literal, taken as valid (the built-in defaults test re-checks it).
            pub(super) const fn trusted(v: u32) -> Self {
                Self(v)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = i64::deserialize(d)?;
                Self::new(v).map_err(de::Error::custom)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some($min))
                    .maximum(Some($max))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

bounded!(
    /// `integrations.sync_frequency_minutes`: 5 to 1440.
    SyncFrequencyMinutes, 5, 1440
);
bounded!(
    /// `privacy.data_retention_days`: 30 to 3650.
    DataRetentionDays, 30, 3650
);
