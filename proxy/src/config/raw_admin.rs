//! The raw (YAML) shape of the `admin:` section: the admin token and the dashboard.

use serde::Deserialize;

/// `admin:` section.
#[derive(Debug, Deserialize)]
pub struct RawAdmin {
    /// Hex SHA-256 of the admin bearer token; the admin API is disabled when empty.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// How long a dashboard sign-in lasts, in seconds.
    #[serde(default = "default_session_ttl_s")]
    pub session_ttl_s: u64,
    /// The analytics service's base URL (`http://host:port`), which the dashboard's usage
    /// page reads through `/admin/usage/*`; absent, that page says it is not configured.
    #[serde(default)]
    pub analytics_url: Option<String>,
}

fn default_session_ttl_s() -> u64 {
    3600
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            token_sha256: None,
            session_ttl_s: default_session_ttl_s(),
            analytics_url: None,
        }
    }
}
