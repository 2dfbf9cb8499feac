//! The one place the status enums of `domain` meet their columns. A status is stored as
//! its name (`as_str`); a name no variant has is read as a storage error, never guessed.

use domain::{event::DeliveryStatus, integration::IntegrationStatus, job::RunStatus};

use crate::StoreError;

/// A status enum with a text column.
pub(crate) trait StatusColumn: Copy + Sized {
    /// What it is the status of, for the error on an unknown name.
    const OF: &'static str;
    /// The column value.
    fn column(self) -> &'static str;
    /// The variant of a column value.
    fn from_column(s: &str) -> Option<Self>;
}

macro_rules! status_column {
    ($t:ty, $of:literal) => {
        impl StatusColumn for $t {
            const OF: &'static str = $of;
            fn column(self) -> &'static str {
                self.as_str()
            }
            fn from_column(s: &str) -> Option<Self> {
                Self::parse(s)
            }
        }
    };
}

status_column!(IntegrationStatus, "integration");
status_column!(RunStatus, "job run");
status_column!(DeliveryStatus, "event delivery");

/// The column value of `s`.
pub(crate) fn col<T: StatusColumn>(s: T) -> &'static str {
    s.column()
}

/// The status a column holds.
pub(crate) fn read<T: StatusColumn>(s: &str) -> Result<T, StoreError> {
    T::from_column(s).ok_or_else(|| {
        StoreError::Database(sea_orm::DbErr::Type(format!(
            "unknown {} status {s:?}",
            T::OF
        )))
    })
}
