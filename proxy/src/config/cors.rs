//! The validated `cors:` section of a route, and which origins it admits.

use std::fmt::Write as _;

/// An allowed origin: any, an exact origin, or any subdomain of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`.
    Any,
    /// `https://app.example.com`, compared case-insensitively.
    Exact(String),
    /// `*.example.com` (any scheme) or `https://*.example.com`: a host ending in
    /// `.example.com`; the suffix is stored with its dot.
    Subdomains {
        /// `https`, when the pattern names one.
        scheme: Option<String>,
        /// `.example.com`.
        suffix: String,
    },
}

impl OriginPattern {
    /// Parses one `origins:` entry; `None` when it is not an origin or pattern.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        if text == "*" {
            return Some(Self::Any);
        }
        let (scheme, host) = match text.split_once("://") {
            Some((scheme, host)) => (Some(scheme.to_string()), host.to_string()),
            None => (None, text.clone()),
        };
        if host.is_empty() || host.contains('/') {
            return None;
        }
        if let Some(suffix) = host.strip_prefix('*') {
            return (suffix.starts_with('.') && suffix.len() > 1).then(|| Self::Subdomains {
                scheme,
                suffix: suffix.to_string(),
            });
        }
        scheme.map(|_| Self::Exact(text))
    }

    /// Whether `origin` (an `Origin` header value) matches.
    pub fn admits(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(want) => want.eq_ignore_ascii_case(origin),
            Self::Subdomains { scheme, suffix } => {
                let Some((got_scheme, host)) = origin.split_once("://") else {
                    return false;
                };
                let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                });
                scheme
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(got_scheme))
                    && host.len() > suffix.len()
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
            }
        }
    }
}

/// A route's CORS policy, with its response header values made once.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsConfig {
    /// Who may call.
    pub origins: Vec<OriginPattern>,
    /// Methods a preflight may ask for (upper case).
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for (lower case).
    pub headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age_s: u64,
    /// `Access-Control-Allow-Methods`.
    pub methods_value: String,
    /// `Access-Control-Allow-Headers` (empty: none).
    pub headers_value: String,
    /// `Access-Control-Expose-Headers` (empty: none).
    pub expose_value: String,
}

impl CorsConfig {
    /// A policy; the joined header values are made here.
    pub fn new(
        origins: Vec<OriginPattern>,
        methods: Vec<String>,
        headers: Vec<String>,
        expose: &[String],
        credentials: bool,
        max_age_s: u64,
    ) -> Self {
        let join = |items: &[String]| {
            items
                .iter()
                .enumerate()
                .fold(String::new(), |mut out, (i, item)| {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{item}");
                    out
                })
        };
        Self {
            methods_value: join(&methods),
            headers_value: join(&headers),
            expose_value: join(expose),
            origins,
            methods,
            headers,
            credentials,
            max_age_s,
        }
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, when it may call: `*` for an
    /// open policy without credentials, else the origin itself.
    pub fn allow_origin<'a>(&self, origin: &'a str) -> Option<&'a str> {
        let any = self.origins.contains(&OriginPattern::Any);
        if any && !self.credentials {
            return Some("*");
        }
        self.origins
            .iter()
            .any(|p| p.admits(origin))
            .then_some(origin)
    }

    /// Whether a preflight's `Access-Control-Request-Method` and `-Headers` are allowed.
    pub fn allows_request(&self, method: &str, headers: &str) -> bool {
        let method_ok = self
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.trim()));
        let headers_ok = headers
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .all(|h| self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
        method_ok && headers_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_subdomain() {
        let exact = OriginPattern::parse("https://App.example.com").expect("exact");
        assert!(exact.admits("https://app.example.com"));
        assert!(!exact.admits("http://app.example.com"));
        let sub = OriginPattern::parse("*.example.com").expect("sub");
        assert!(sub.admits("https://a.example.com"));
        assert!(sub.admits("http://b.a.example.com:8080"));
        assert!(!sub.admits("https://example.com"));
        assert!(!sub.admits("https://evilexample.com"));
        assert!(!sub.admits("https://a.example.com.evil"));
        let https_sub = OriginPattern::parse("https://*.example.com").expect("sub");
        assert!(!https_sub.admits("http://a.example.com"));
        for bad in ["", "example.com", "https://", "*example.com", "https://a/b"] {
            assert_eq!(OriginPattern::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_policy_answers_for_its_origins_methods_and_headers() {
        let cors = CorsConfig::new(
            vec![OriginPattern::parse("*.example.com").expect("p")],
            vec!["GET".into(), "POST".into()],
            vec!["content-type".into(), "x-api-key".into()],
            &[],
            true,
            600,
        );
        assert_eq!(
            cors.allow_origin("https://a.example.com"),
            Some("https://a.example.com")
        );
        assert_eq!(cors.allow_origin("https://other.org"), None);
        assert!(cors.allows_request("post", "Content-Type, X-API-Key"));
        assert!(!cors.allows_request("DELETE", ""));
        assert!(!cors.allows_request("GET", "x-secret"));
        assert_eq!(cors.methods_value, "GET, POST");
        let open = CorsConfig::new(
            vec![OriginPattern::Any],
            vec!["GET".into()],
            vec![],
            &[],
            false,
            0,
        );
        assert_eq!(open.allow_origin("https://any.org"), Some("*"));
    }
}
