//! Todo items and the validation of what clients send.
//!
//! Bodies are parsed by hand from a JSON object rather than by a derived `Deserialize`,
//! so every 400 names the field and says what is expected of it.

use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Longest accepted title, in characters.
const MAX_TITLE: usize = 500;
/// Longest accepted description, in characters.
const MAX_DESCRIPTION: usize = 10_000;

/// A stored todo item.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Todo {
    /// Assigned by the database.
    pub id: i64,
    /// What to do.
    pub title: String,
    /// Optional detail.
    pub description: Option<String>,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    /// Optional ISO date.
    pub due_date: Option<NaiveDate>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The statuses an item can have.
pub const STATUSES: [&str; 3] = ["pending", "in_progress", "done"];

/// Fields a client may set; `None` = not given. For the nullable fields,
/// `Some(None)` means "set to null".
#[derive(Debug, Default, PartialEq)]
pub struct TodoFields {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New status.
    pub status: Option<String>,
    /// New due date.
    pub due_date: Option<Option<NaiveDate>>,
}

impl TodoFields {
    /// Parses a request body. `require_title` for creation.
    pub fn parse(body: &[u8], require_title: bool) -> Result<Self, AppError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AppError::InvalidJson(format!("body is not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(AppError::InvalidJson("body must be a JSON object".into()));
        };
        Self::from_object(object, require_title)
    }

    fn from_object(object: Map<String, Value>, require_title: bool) -> Result<Self, AppError> {
        let mut fields = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "title" => fields.title = Some(title(value)?),
                "description" => fields.description = Some(description(value)?),
                "status" => fields.status = Some(status(&value)?),
                "due_date" => fields.due_date = Some(due_date(&value)?),
                // Read-only fields a client may echo back from a GET.
                "id" | "created_at" | "updated_at" => {}
                other => return Err(bad(other, "is not a field of a todo item")),
            }
        }
        if require_title && fields.title.is_none() {
            return Err(bad("title", "is required"));
        }
        Ok(fields)
    }
}

fn bad(field: &str, what: &str) -> AppError {
    AppError::BadRequest(format!("{field}: {what}"))
}

fn title(value: Value) -> Result<String, AppError> {
    match value {
        Value::String(s) if s.trim().is_empty() => Err(bad("title", "must not be empty")),
        Value::String(s) if s.chars().count() > MAX_TITLE => {
            Err(bad("title", "must be at most 500 characters"))
        }
        Value::String(s) => Ok(s),
        _ => Err(bad("title", "must be a string")),
    }
}

fn description(value: Value) -> Result<Option<String>, AppError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > MAX_DESCRIPTION => {
            Err(bad("description", "must be at most 10000 characters"))
        }
        Value::String(s) => Ok(Some(s)),
        _ => Err(bad("description", "must be a string or null")),
    }
}

/// Checks a status value (also used for the `?status=` filter).
pub fn parse_status(text: &str) -> Result<String, AppError> {
    if STATUSES.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(bad(
            "status",
            &format!("must be one of {}, got \"{text}\"", STATUSES.join(", ")),
        ))
    }
}

fn status(value: &Value) -> Result<String, AppError> {
    match value {
        Value::String(s) => parse_status(s),
        _ => Err(bad("status", "must be a string")),
    }
}

fn due_date(value: &Value) -> Result<Option<NaiveDate>, AppError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                bad(
                    "due_date",
                    &format!("must be an ISO date (YYYY-MM-DD), got \"{s}\""),
                )
            }),
        _ => Err(bad(
            "due_date",
            "must be an ISO date string (YYYY-MM-DD) or null",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, require_title: bool) -> String {
        match TodoFields::parse(body.as_bytes(), require_title) {
            Ok(f) => panic!("expected an error, got {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_full_item_parses() {
        let f = TodoFields::parse(
            br#"{"title":"Finish the report","status":"pending","due_date":"2024-10-30","description":null}"#,
            true,
        )
        .expect("valid");
        assert_eq!(f.title.as_deref(), Some("Finish the report"));
        assert_eq!(f.due_date, Some(NaiveDate::from_ymd_opt(2024, 10, 30)));
        assert_eq!(f.description, Some(None));
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(message("{", true).contains("not valid JSON"));
        assert!(message("[]", true).contains("JSON object"));
        assert_eq!(message("{}", true), "title: is required");
        assert_eq!(
            message(r#"{"title":"  "}"#, true),
            "title: must not be empty"
        );
        assert!(message(r#"{"title":"a","status":"later"}"#, true)
            .starts_with("status: must be one of"));
        assert!(message(r#"{"title":"a","due_date":"30/10/2024"}"#, true).starts_with("due_date:"));
        assert!(message(r#"{"title":"a","due_date":"2024-02-30"}"#, true).starts_with("due_date:"));
        assert!(message(r#"{"title":"a","colour":"red"}"#, true).starts_with("colour:"));
        assert_eq!(message(r#"{"title":7}"#, true), "title: must be a string");
    }

    #[test]
    fn updates_need_no_title() {
        let f = TodoFields::parse(br#"{"status":"done"}"#, false).expect("valid");
        assert_eq!(f.status.as_deref(), Some("done"));
        assert!(f.title.is_none());
    }
}
