//! Configuration: the YAML file -> raw serde structs -> a validated, immutable [`Config`].
//!
//! [`load`] reports every problem at once as `file:line: field: message`, so one
//! `sluice --test` run shows all that needs fixing.

mod ca_certs;
mod cors;
mod env;
mod error;
mod lines;
mod model;
mod raw;
mod raw_admin;
mod raw_edge;
mod scope;
mod upstream_proto;
mod validate;
mod validate_routes;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AccessLogConfig, AccessLogFormat, AdminConfig, AuthMode, BreakerConfig, CompressConfig, Config,
    CorsConfig, HealthCheckConfig, HealthCheckKind, HedgeConfig, HedgeDelay, IpRules, KafkaConfig,
    OnRedisError, OriginPattern, RateLimitConfig, RateLimitMode, RedisConfig, RetryBudgetConfig,
    RouteConfig, ServerConfig, Tier, TlsConfig, TlsVersion, UpstreamConfig, UpstreamProtocol,
    UpstreamTls,
};

use lines::LineIndex;
use raw::RawConfig;
use std::path::Path;

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::whole_file(path, None, format!("cannot read file: {e}")))?;
    parse(path, &text)
}

/// Validates `text` as if it had been read from `path`, after `${VAR}` expansion from
/// the process environment.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let expanded = env::expand(text, |name| std::env::var(name).ok()).map_err(|errors| {
        ConfigErrors(
            errors
                .into_iter()
                .map(|(line, message)| ConfigError {
                    file: path.to_path_buf(),
                    line: Some(line),
                    field: String::new(),
                    message,
                })
                .collect(),
        )
    })?;
    parse_expanded(path, &expanded)
}

fn parse_expanded(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let lines = LineIndex::build(text);
    let mut unknown = Vec::new();
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let raw: RawConfig =
        match serde_ignored::deserialize(deserializer, |field| unknown.push(field_path(&field))) {
            Ok(raw) => raw,
            Err(e) => return Err(yaml_error(path, &lines, &e)),
        };
    let mut errors = scope::Errors::new(path, &lines);
    for field in unknown {
        errors.push(&field, "unknown field");
    }
    let mut config = validate::validate(path, raw, errors)?;
    config.text = text.to_string();
    Ok(config)
}

/// serde_yaml errors carry a position and usually a `path: ` prefix; keep both.
fn yaml_error(path: &Path, lines: &LineIndex, e: &serde_yaml::Error) -> ConfigErrors {
    let message = e.to_string();
    // serde_yaml appends " at line L column C"; the line goes into the prefix instead.
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    };
    let line = e.location().map(|l| l.line()).or_else(|| {
        let field = message.split_once(": ").map(|(f, _)| f)?;
        lines.line_of(field)
    });
    ConfigErrors::whole_file(path, line, message)
}

/// `routes[1].upstream` from serde_ignored's path.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        P::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("t.yaml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = r#"
server:
  listen: "127.0.0.1:9999"
upstreams:
  todo:
    peers: ["127.0.0.1:8081", "127.0.0.1:8082"]
routes:
  - { name: todo, path_prefix: /todo, upstream: todo }
  - name: api
    path_prefix: /api/
    strip_prefix: true
    upstream: todo
"#;

    #[test]
    fn upstream_protocols_are_checked_against_tls_health_checks_and_hedging() {
        let text = r#"
server:
  listen: "127.0.0.1:9999"
upstreams:
  a: { peers: ["127.0.0.1:1"], protocol: h2 }
  b: { peers: ["127.0.0.1:2"], protocol: h2c, tls: { sni: x } }
  c: { peers: ["127.0.0.1:3"], health_check: { kind: grpc } }
  d: { peers: ["127.0.0.1:4"], protocol: spdy }
routes:
  - { name: r, path_prefix: /, upstream: b, hedge: { delay: 5 } }
"#;
        assert_eq!(
            errors(text),
            vec![
                "t.yaml:5: upstreams.a.tls: protocol h2 is HTTP/2 over TLS: add tls: { sni: ... } (or use h2c for cleartext)",
                "t.yaml:6: upstreams.b.tls: h2c is cleartext HTTP/2; for HTTP/2 over TLS use protocol: h2",
                "t.yaml:7: upstreams.c.health_check.kind: grpc health checks need an HTTP/2 group (protocol: h2 or h2c)",
                "t.yaml:8: upstreams.d.protocol: must be http1, h2 (HTTP/2 over TLS) or h2c (cleartext HTTP/2), got \"spdy\"",
                "t.yaml:10: routes[0].hedge: hedged copies are sent over cleartext HTTP/1.1: hedge only routes to an http1 group without tls",
            ]
        );
    }

    #[test]
    fn the_dashboard_settings_are_checked() {
        let text = format!("{GOOD}admin:\n  session_ttl_s: 5\n  analytics_url: ftp://x\n");
        assert_eq!(
            errors(&text),
            vec![
                "t.yaml:14: admin.session_ttl_s: must be between 60 and 604800 (a week)",
                "t.yaml:15: admin.analytics_url: must be an http:// or https:// URL, e.g. http://127.0.0.1:8100",
            ]
        );
        let text = format!("{GOOD}admin:\n  analytics_url: http://127.0.0.1:8100/\n");
        let config = parse(Path::new("t.yaml"), &text).expect("valid");
        assert_eq!(
            config.admin.analytics_url.as_deref(),
            Some("http://127.0.0.1:8100")
        );
        assert_eq!(
            config.admin.session_ttl,
            std::time::Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_good_file_loads() {
        let config = parse(Path::new("t.yaml"), GOOD).expect("valid");
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.upstreams["todo"].peers.len(), 2);
        assert!(config.routes[1].strip_prefix);
    }

    #[test]
    fn every_unknown_field_is_reported_with_its_line() {
        let text = GOOD
            .replace("  listen:", "  lisen: x\n  listen:")
            .replace("    strip_prefix", "    colour: red\n    strip_prefix");
        assert_eq!(
            errors(&text),
            vec![
                "t.yaml:3: server.lisen: unknown field",
                "t.yaml:12: routes[1].colour: unknown field",
            ]
        );
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let text = GOOD
            .replace("upstream: todo }", "upstream: nope }")
            .replace("\"127.0.0.1:8082\"", "\"not-an-address\"")
            .replace("name: api", "name: todo");
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("t.yaml:6: upstreams.todo.peers[1]: "),
            "{errs:?}"
        );
        assert_eq!(
            errs[1],
            "t.yaml:8: routes[0].upstream: no upstream named \"nope\" (known: todo)"
        );
        assert_eq!(
            errs[2],
            "t.yaml:9: routes[1].name: duplicate route name \"todo\""
        );
    }

    #[test]
    fn a_bad_cidr_or_header_name_is_named_with_its_line() {
        let text = GOOD.replace(
            "upstream: todo }",
            "upstream: todo, allow: [127.0.0.1/32, 10.0.0.0/40] }",
        ) + "  - { name: x, path_prefix: /x, upstream: todo, deny: [\"::1\", nope] }\n";
        let text = text.replace(
            "  listen: \"127.0.0.1:9999\"",
            "  listen: \"127.0.0.1:9999\"\n  key_id_header: \"bad header\"",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("t.yaml:4: server.key_id_header: "),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("t.yaml:9: routes[0].allow[1]: \"10.0.0.0/40\""),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("t.yaml:14: routes[2].deny[1]: \"nope\""),
            "{errs:?}"
        );
    }

    #[test]
    fn cors_policies_are_checked() {
        let text = GOOD.replace(
            "upstream: todo }",
            "upstream: todo, cors: { origins: [\"*\", \"nope\"], methods: [\"GET\", \"\"], credentials: true } }",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("routes[0].cors.origins[1]: \"nope\""),
            "{errs:?}"
        );
        assert!(errs[1].contains("routes[0].cors.credentials: "), "{errs:?}");
        assert!(errs[2].contains("routes[0].cors.methods[1]: "), "{errs:?}");
    }

    #[test]
    fn type_errors_name_the_line() {
        let text = GOOD.replace("\"127.0.0.1:9999\"", "\"127.0.0.1:9999\"\n  threads: many");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("t.yaml:4: "), "{errs:?}");
        assert!(errs[0].contains("threads"), "{errs:?}");
    }

    #[test]
    fn empty_peers_and_bad_prefix_are_rejected() {
        let text = GOOD
            .replace("[\"127.0.0.1:8081\", \"127.0.0.1:8082\"]", "[]")
            .replace("path_prefix: /todo", "path_prefix: todo");
        let errs = errors(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("upstreams.todo.peers: must list at least one peer"));
        assert!(errs[1].contains("routes[0].path_prefix: must start with '/'"));
    }

    #[test]
    fn kafka_spill_settings_are_checked() {
        let ok =
            format!("{GOOD}kafka: {{ brokers: \"b:9092\", spill_dir: /tmp/x, spill_max_mb: 8 }}\n");
        let config = parse(Path::new("t.yaml"), &ok).expect("valid");
        let kafka = config.kafka.expect("kafka");
        assert_eq!(kafka.spill_dir, Some(std::path::PathBuf::from("/tmp/x")));
        assert_eq!(kafka.spill_max_bytes, 8 << 20);
        let bad = ok.replace("spill_max_mb: 8", "spill_max_mb: 0");
        let errs = errors(&bad);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("kafka.spill_max_mb: must be from 1"),
            "{errs:?}"
        );
    }

    #[test]
    fn kafka_value_compression_is_none_zstd_or_an_error() {
        let base = format!("{GOOD}kafka: {{ brokers: \"b:9092\" }}\n");
        let config = parse(Path::new("t.yaml"), &base).expect("valid");
        assert_eq!(
            config.kafka.expect("kafka").value_compression,
            sluice_event::ValueCompression::None
        );
        let zstd = base.replace("\"b:9092\"", "\"b:9092\", value_compression: zstd");
        let config = parse(Path::new("t.yaml"), &zstd).expect("valid");
        assert_eq!(
            config.kafka.expect("kafka").value_compression,
            sluice_event::ValueCompression::Zstd
        );
        let errs = errors(&zstd.replace("zstd", "brotli"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("kafka.value_compression: must be none or zstd, got \"brotli\""),
            "{errs:?}"
        );
    }

    #[test]
    fn yaml_syntax_errors_name_the_line() {
        let errs = errors("server:\n  listen: [\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("t.yaml:"), "{errs:?}");
    }
}
