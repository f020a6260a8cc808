//! Wire formats shared by the payments service and the processor simulator (the Rinha de
//! Backend 2025 API): amounts, `requestedAt` timestamps and `from`/`to` ranges.
//!
//! Amounts travel as JSON decimals but are kept as whole cents, so sums are exact and the
//! payments service's summary and the processors' summaries print the very same numbers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// The largest amount accepted, in cents (ten billion): far beyond any real payment, far
/// below where `f64` stops representing cents exactly.
const MAX_CENTS: i64 = 1_000_000_000_000;

/// Cents from a JSON number, rounded to 2 decimals (half away from zero); `None` unless it
/// is a positive number within range.
pub fn cents_from_json(value: &Value) -> Option<i64> {
    let amount = value.as_f64()?;
    if !amount.is_finite() || amount <= 0.0 {
        return None;
    }
    let cents = (amount * 100.0).round();
    if cents < 1.0 || cents > MAX_CENTS as f64 {
        return None;
    }
    Some(cents as i64)
}

/// A sum of cents as the JSON decimal the API answers with (e.g. `19.9`).
pub fn cents_to_json(cents: i64) -> Value {
    // Integer cents / 100 is the double nearest the decimal; serde_json prints it shortest.
    serde_json::Number::from_f64(cents as f64 / 100.0)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// `requestedAt` as sent to processors: RFC 3339, UTC, millisecond precision.
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp (any offset) into UTC.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A `POST /payments` body, as the payments service and the processors receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentBody {
    /// The client's id for the payment (a UUID, lower case).
    pub correlation_id: String,
    /// The amount in cents.
    pub cents: i64,
    /// When the payment was requested (processors only; `None` when not asked for).
    pub requested_at: Option<DateTime<Utc>>,
}

/// Why a payment body was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a valid payment.
    #[error("{0}")]
    Field(&'static str),
}

/// Parses a payment body; `requestedAt` is read (and required) when `with_requested_at`.
pub fn parse_payment(body: &[u8], with_requested_at: bool) -> Result<PaymentBody, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(BodyError::Field("body must be a JSON object"));
    };
    let correlation_id = map
        .get("correlationId")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or(BodyError::Field("correlationId: must be a UUID string"))?
        .to_string();
    let cents = map
        .get("amount")
        .and_then(cents_from_json)
        .ok_or(BodyError::Field(
            "amount: must be a positive decimal number",
        ))?;
    let requested_at = if with_requested_at {
        let at = map
            .get("requestedAt")
            .and_then(Value::as_str)
            .and_then(parse_instant)
            .ok_or(BodyError::Field(
                "requestedAt: must be an RFC 3339 timestamp",
            ))?;
        Some(at)
    } else {
        None
    };
    Ok(PaymentBody {
        correlation_id,
        cents,
        requested_at,
    })
}

/// The `?from&to` of a summary: both optional, both inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    /// Earliest `requestedAt` counted.
    pub from: Option<DateTime<Utc>>,
    /// Latest `requestedAt` counted.
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    /// Reads `from` and `to` from a query string's pairs; the error names the parameter.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, String> {
        let bound = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
            match query.get(name).map(|s| s.trim()) {
                None | Some("") => Ok(None),
                Some(text) => parse_instant(text).map(Some).ok_or_else(|| {
                    format!(
                        "{name}: must be an RFC 3339 timestamp such as \
                         2025-07-15T12:34:56.000Z, got \"{text}\""
                    )
                }),
            }
        };
        Ok(Self {
            from: bound("from")?,
            to: bound("to")?,
        })
    }

    /// Whether `at` falls inside the range.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at <= to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_round_to_cents_and_print_back_exactly() {
        assert_eq!(cents_from_json(&json!(19.90)), Some(1990));
        assert_eq!(cents_from_json(&json!(0.005)), Some(1));
        assert_eq!(cents_from_json(&json!(10)), Some(1000));
        assert_eq!(cents_from_json(&json!(0)), None);
        assert_eq!(cents_from_json(&json!(-1.5)), None);
        assert_eq!(cents_from_json(&json!("19.90")), None);
        assert_eq!(cents_to_json(1990).to_string(), "19.9");
        assert_eq!(cents_to_json(1990 * 3).to_string(), "59.7");
        assert_eq!(cents_to_json(0).to_string(), "0.0");
    }

    #[test]
    fn ranges_are_inclusive_and_name_the_bad_parameter() {
        let q: HashMap<String, String> = [
            ("from".to_string(), "2025-07-15T12:00:00.000Z".to_string()),
            ("to".to_string(), "2025-07-15T12:00:01.000Z".to_string()),
        ]
        .into();
        let r = Range::from_query(&q).expect("valid");
        let at = |s: &str| parse_instant(s).expect("instant");
        assert!(r.contains(at("2025-07-15T12:00:00.000Z")));
        assert!(r.contains(at("2025-07-15T12:00:01.000Z")));
        assert!(!r.contains(at("2025-07-15T12:00:01.001Z")));
        let bad: HashMap<String, String> = [("to".to_string(), "yesterday".to_string())].into();
        let e = Range::from_query(&bad).expect_err("invalid");
        assert!(e.starts_with("to:"), "{e}");
        assert_eq!(
            format_instant(at("2025-07-15T12:00:00.5+02:00")),
            "2025-07-15T10:00:00.500Z"
        );
    }
}
