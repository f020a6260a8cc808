//! `GET /admin/config`: the active config with secrets redacted, its generation, and the
//! outcome of the last reload.

use super::state::AdminState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// Keys whose values are never shown.
const SECRET_KEYS: [&str; 5] = ["token", "secret", "password", "key", "sha256"];

pub(super) async fn show(State(state): State<AdminState>) -> Json<Value> {
    let snapshot = state.snapshot.load();
    let mut config: Value = serde_yaml::from_str(&snapshot.config.text).unwrap_or(Value::Null);
    redact(&mut config);
    Json(json!({
        "generation": snapshot.generation,
        "source": snapshot.config.source.display().to_string(),
        "config": config,
        "last_reload": state.reloader.last(),
    }))
}

/// Blanks secret-looking fields and the password part of URLs, recursively.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| lower.contains(s)) && !v.is_object() {
                    *v = Value::String("<redacted>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some(clean) = redact_url_password(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

fn redact_url_password(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let (userinfo, host) = rest.split_once('@')?;
    let (user, _password) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:<redacted>@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let mut v = json!({
            "admin": { "token_sha256": "abc" },
            "redis": { "url": "redis://user:hunter2@127.0.0.1:6379" },
            "routes": [{ "name": "x" }]
        });
        redact(&mut v);
        assert_eq!(v["admin"]["token_sha256"], "<redacted>");
        assert_eq!(v["redis"]["url"], "redis://user:<redacted>@127.0.0.1:6379");
        assert_eq!(v["routes"][0]["name"], "x");
    }
}
