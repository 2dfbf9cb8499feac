//! The one way a list is paged (API.md: `limit` and `cursor` in, `items` and
//! `next_cursor` out, `null` on the last page): [`PageLimit`] checks the size asked for,
//! [`Page::from_overfetch`] turns `limit + 1` rows into a page and its cursor, and
//! [`cursor_id`] reads the cursors that are a row's integer key (audit ids, delivery ids,
//! preference versions). The user search's cursor is opaque (base64 of its two keys) and
//! decoded where it is made.

use serde::Serialize;

use crate::AppError;

/// One page of a list, newest (or first) first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The first `limit` of `items`, fetched as `limit + 1` so that one more tells whether
    /// another page exists; the cursor is `cursor` of the last item kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: u64, cursor: impl Fn(&T) -> String) -> Self {
        let more = items.len() as u64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more { items.last().map(cursor) } else { None };
        Self { items, next_cursor }
    }
}

/// A list's page size: `default` when none is asked for, at most `max`.
#[derive(Clone, Copy, Debug)]
pub struct PageLimit {
    pub default: u64,
    pub max: u64,
}

impl PageLimit {
    /// The size asked for, or the default.
    ///
    /// # Errors
    /// [`AppError::InvalidRequest`] outside 1 to `max`.
    pub fn check(self, asked: Option<u64>) -> Result<u64, AppError> {
        let limit = asked.unwrap_or(self.default);
        if (1..=self.max).contains(&limit) {
            Ok(limit)
        } else {
            Err(AppError::InvalidRequest(format!(
                "limit must be between 1 and {}",
                self.max
            )))
        }
    }
}

/// A cursor that is a row's integer key, as issued by [`Page::from_overfetch`].
///
/// # Errors
/// [`AppError::InvalidRequest`] for anything else.
pub fn cursor_id(cursor: &str) -> Result<i64, AppError> {
    cursor
        .parse::<i64>()
        .map_err(|_| AppError::InvalidRequest("cursor is not a cursor of this list".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_exist() {
        let p = Page::from_overfetch(vec![5, 4, 3], 2, i32::to_string);
        assert_eq!(p.items, vec![5, 4]);
        assert_eq!(p.next_cursor.as_deref(), Some("4"));
        let p = Page::from_overfetch(vec![5, 4], 2, i32::to_string);
        assert_eq!(p.next_cursor, None);
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        let l = PageLimit {
            default: 20,
            max: 100,
        };
        assert_eq!(l.check(None).ok(), Some(20));
        assert_eq!(l.check(Some(100)).ok(), Some(100));
        assert!(matches!(l.check(Some(0)), Err(AppError::InvalidRequest(_))));
        assert!(matches!(
            l.check(Some(101)),
            Err(AppError::InvalidRequest(_))
        ));
        assert!(matches!(cursor_id("x1"), Err(AppError::InvalidRequest(_))));
        assert_eq!(cursor_id("41").ok(), Some(41));
    }
}
