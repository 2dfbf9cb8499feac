//! One declaration of a status or type enum's stored and wire names: the list of every
//! value, the name of each and parsing a name back, written once here instead of once per
//! enum (they drifted apart when each carried its own copy).

/// `wire_names!(Enum { Variant => "name", … })` implements `Enum::ALL` (every value, in
/// the order given), `as_str` and `parse` (`None` for a name no value has).
macro_rules! wire_names {
    ($name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        impl $name {
            /// Every value.
            pub const ALL: [Self; [$($wire),+].len()] = [$(Self::$variant),+];

            /// The stored and wire name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }

            /// Parses a stored (or requested) name.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }
    };
}
