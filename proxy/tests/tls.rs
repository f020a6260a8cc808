//! The HTTPS listener with real clients (`curl`, `openssl s_client`): TLS 1.2/1.3 only,
//! ALPN h2, certificates by SNI with a default, renewal by SIGHUP without a failed
//! request, `sluice --test` on broken pairs, h2c on the plain listener, the HTTPS
//! redirect and HSTS.

use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::services::Sluice;
use sluice_testkit::tls::{IssuedCert, TestCa};
use sluice_testkit::{assert_eventually, bin_path, free_port, http};
use std::process::Command;
use std::time::Duration;

/// A stack: one upstream, sluice with a TLS listener on `tls_port`, certificates
/// `default` (localhost, 127.0.0.1) and `api` (api.test).
struct Tls {
    ca: TestCa,
    default: IssuedCert,
    api: IssuedCert,
    tls_port: u16,
    s: Sluice,
    _up: FakeUpstream,
}

fn config(up: &FakeUpstream, tls_port: u16, default: &IssuedCert, api: &IssuedCert) -> String {
    format!(
        r#"server:
  listen: "{{listen}}"
  admin_listen: "{{admin}}"
  threads: 2
  h2c: true
  tls:
    listen: "127.0.0.1:{tls_port}"
    redirect_http: true
    certificates:
      - {{ cert: "{}", key: "{}", hosts: [localhost, 127.0.0.1] }}
      - {{ cert: "{}", key: "{}", hosts: [api.test] }}
upstreams:
  g: {{ peers: ["{}"] }}
routes:
  - {{ name: secure, path_prefix: /secure, upstream: g, redirect_https: true, hsts_max_age_s: 600 }}
  - {{ name: main, path_prefix: /, upstream: g }}
"#,
        default.cert.display(),
        default.key.display(),
        api.cert.display(),
        api.key.display(),
        up.addr
    )
}

fn start() -> Tls {
    let ca = TestCa::new();
    let default = ca.issue("default", 0x11, 2, "DNS:localhost,IP:127.0.0.1");
    let api = ca.issue("api", 0x22, 2, "DNS:api.test");
    let up = FakeUpstream::start("up");
    let tls_port = free_port();
    let s = Sluice::start(&config(&up, tls_port, &default, &api));
    assert_eventually!(
        Duration::from_secs(10),
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok(),
        "the TLS listener did not open"
    );
    Tls {
        ca,
        default,
        api,
        tls_port,
        s,
        _up: up,
    }
}

/// Runs curl; returns (exit success, stdout, stderr).
fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("running curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `"<status> <http version>"` of a GET of `url` with curl's `args`; the transfer must
/// succeed.
fn status_and_version(args: &[&str], url: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["-o", "/dev/null", "-w", "%{http_code} %{http_version}", url]);
    let (ok, out, err) = curl(&all);
    assert!(ok, "curl {args:?} {url} failed: {err}");
    out
}

/// What `openssl s_client` reports for a handshake: (its text, the served serial).
fn handshake(port: u16, extra: &[&str]) -> (String, Option<String>) {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pem_start = text.find("-----BEGIN CERTIFICATE-----");
    let pem_end = text.find("-----END CERTIFICATE-----");
    let serial = match (pem_start, pem_end) {
        (Some(a), Some(b)) => {
            let pem = &text[a..b + "-----END CERTIFICATE-----".len()];
            let mut child = Command::new("openssl")
                .args(["x509", "-noout", "-serial"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("openssl x509");
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(pem.as_bytes())
                .expect("write pem");
            let out = child.wait_with_output().expect("openssl x509");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .strip_prefix("serial=")
                .map(str::to_string)
        }
        _ => None,
    };
    (text, serial)
}

#[test]
fn https_speaks_tls_1_3_and_1_2_with_h2_by_alpn_and_refuses_tls_1_1() {
    let t = start();
    let ca = t.ca.ca_pem();
    let ca = ca.to_str().expect("path");
    let url = format!("https://localhost:{}/hello", t.tls_port);
    assert_eq!(
        status_and_version(&["--cacert", ca, "--http2"], &url),
        "200 2",
        "h2 chosen by ALPN"
    );
    assert_eq!(
        status_and_version(&["--cacert", ca, "--http1.1"], &url),
        "200 1.1",
        "http/1.1 still offered"
    );

    let (text, _) = handshake(t.tls_port, &["-servername", "localhost", "-brief"]);
    assert!(text.contains("Protocol version: TLSv1.3"), "{text}");
    let (text, _) = handshake(
        t.tls_port,
        &["-servername", "localhost", "-tls1_2", "-brief"],
    );
    assert!(text.contains("Protocol version: TLSv1.2"), "{text}");
    // The client is told to allow TLS 1.1 at any security level: the refusal is ours.
    let (text, _) = handshake(
        t.tls_port,
        &[
            "-servername",
            "localhost",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-brief",
        ],
    );
    assert!(
        !text.contains("Protocol version: TLSv1.1"),
        "TLS 1.1 accepted:\n{text}"
    );
    assert!(
        !text.contains("CONNECTION ESTABLISHED"),
        "TLS 1.1 accepted:\n{text}"
    );
}

#[test]
fn certificates_are_chosen_by_sni_and_the_first_is_the_default() {
    let t = start();
    let serial = |args: &[&str]| handshake(t.tls_port, args).1.unwrap_or_default();
    assert_eq!(
        serial(&["-servername", "api.test"]),
        t.api.serial,
        "SNI api.test"
    );
    assert_eq!(
        serial(&["-servername", "API.Test"]),
        t.api.serial,
        "SNI is case-insensitive"
    );
    assert_eq!(serial(&["-servername", "localhost"]), t.default.serial);
    assert_eq!(
        serial(&["-servername", "unknown.test"]),
        t.default.serial,
        "unknown name: the default"
    );
    assert_eq!(
        serial(&["-noservername"]),
        t.default.serial,
        "no SNI: the default"
    );
    // And a client that checks names is served a certificate it accepts.
    let ca = t.ca.ca_pem();
    let resolve = format!("api.test:{}:127.0.0.1", t.tls_port);
    let url = format!("https://api.test:{}/x", t.tls_port);
    let (ok, out, err) = curl(&[
        "--cacert",
        ca.to_str().expect("path"),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "200");
}

#[test]
fn a_sighup_with_a_renewed_certificate_fails_no_request_and_new_handshakes_get_it() {
    let t = start();
    let ca = t.ca.ca_pem().to_str().expect("path").to_string();
    // One client keeps one connection busy: 1,500 requests in a row on it.
    let url = format!("https://localhost:{}/x?[1-1500]", t.tls_port);
    let busy = std::thread::spawn(move || {
        curl(&[
            "--cacert",
            &ca,
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{num_connects}\n",
            &url,
        ])
    });
    std::thread::sleep(Duration::from_millis(300));
    let renewed = t.ca.issue("default", 0x33, 2, "DNS:localhost,IP:127.0.0.1");
    t.s.process.signal("HUP");
    assert_eventually!(
        Duration::from_secs(10),
        handshake(t.tls_port, &["-servername", "localhost"])
            .1
            .as_deref()
            == Some(renewed.serial.as_str()),
        "new handshakes never saw the renewed certificate"
    );
    let (ok, out, err) = busy.join().expect("client");
    assert!(ok, "the busy client failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1500, "{err}");
    assert!(
        lines.iter().all(|l| l.starts_with("200 ")),
        "a request failed: {out}"
    );
    let connects: u32 = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(1)?.parse::<u32>().ok())
        .sum();
    assert_eq!(
        connects, 1,
        "the established connection was kept through the reload"
    );
}

#[test]
fn plain_requests_to_a_secure_route_are_redirected_and_tls_responses_carry_hsts() {
    let t = start();
    let r = http::request(
        t.s.proxy,
        "GET",
        "/secure/a?b=1",
        &[("Host", "localhost:9999")],
        None,
    )
    .expect("GET");
    assert_eq!(r.status, 308, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("https://localhost:{}/secure/a?b=1", t.tls_port).as_str())
    );
    assert!(
        r.header("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    let other = http::get(t.s.proxy, "/open").expect("GET");
    assert_eq!(
        other.status, 200,
        "routes without redirect_https are served"
    );

    let ca = t.ca.ca_pem();
    let url = format!("https://localhost:{}/secure/a", t.tls_port);
    let (ok, out, err) = curl(&[
        "--cacert",
        ca.to_str().expect("path"),
        "-D",
        "-",
        "-o",
        "/dev/null",
        &url,
    ]);
    assert!(ok, "{err}");
    let head = out.to_ascii_lowercase();
    assert!(
        head.starts_with("http/2 200") || head.starts_with("http/1.1 200"),
        "{out}"
    );
    assert!(
        head.contains("strict-transport-security: max-age=600"),
        "{out}"
    );
}

#[test]
fn the_plain_listener_speaks_h2c_with_prior_knowledge() {
    let t = start();
    let url = format!("http://{}/x", t.s.proxy);
    assert_eq!(
        status_and_version(&["--http2-prior-knowledge"], &url),
        "200 2"
    );
    assert_eq!(
        status_and_version(&[], &url),
        "200 1.1",
        "HTTP/1.1 on the same listener"
    );
}

/// `sluice --test` on a config whose one certificate entry is `entry`.
fn check_entry(dir: &std::path::Path, entry: &str) -> (bool, String, std::path::PathBuf) {
    let file = dir.join(format!("check-{}.yaml", free_port()));
    std::fs::write(
        &file,
        format!(
            "server:\n  listen: \"127.0.0.1:1\"\n  tls:\n    listen: \"127.0.0.1:2\"\n    certificates:\n      - {entry}\n"
        ),
    )
    .expect("write config");
    let out = Command::new(bin_path("sluice"))
        .arg("--config")
        .arg(&file)
        .arg("--test")
        .output()
        .expect("sluice --test");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        file,
    )
}

/// `sluice --test` refuses `entry`, naming `certificates[0].field` at line 6 and `needle`.
fn assert_refused(dir: &std::path::Path, entry: &str, field: &str, needle: &str) {
    let (ok, err, file) = check_entry(dir, entry);
    assert!(!ok, "{entry} passed");
    let at = format!("{}:6: server.tls.certificates[0].{field}: ", file.display());
    assert!(err.contains(&at) && err.contains(needle), "{entry}:\n{err}");
}

#[test]
fn sluice_test_names_the_file_line_and_field_of_a_broken_certificate() {
    let ca = TestCa::new();
    let good = ca.issue("good", 1, 2, "DNS:localhost");
    let other = ca.issue("other", 2, 2, "DNS:other.test");
    let expired = ca.issue("expired", 3, 0, "DNS:old.test");
    std::thread::sleep(Duration::from_millis(1100));
    let (c, k) = (good.cert.display(), good.key.display());
    let dir = ca.dir();
    assert_refused(
        dir,
        &format!("{{ cert: \"{c}\", key: \"{}\" }}", other.key.display()),
        "key",
        "is not the key of the certificate",
    );
    assert_refused(
        dir,
        &format!("{{ cert: \"{c}\", key: \"{k}\", hosts: [localhost, api.test] }}"),
        "hosts[1]",
        "does not cover \"api.test\"",
    );
    assert_refused(
        dir,
        &format!("{{ cert: \"/nonexistent.pem\", key: \"{k}\" }}"),
        "cert",
        "cannot read /nonexistent.pem",
    );
    assert_refused(
        dir,
        &format!("{{ cert: \"{k}\", key: \"{k}\" }}"),
        "cert",
        "PEM certificate",
    );

    let (ok, err, file) = check_entry(
        dir,
        &format!(
            "{{ cert: \"{}\", key: \"{}\" }}",
            expired.cert.display(),
            expired.key.display()
        ),
    );
    assert!(
        ok,
        "an expired certificate is a warning, not an error: {err}"
    );
    assert!(
        err.contains(&format!(
            "warning: {}:6: server.tls.certificates[0].cert: ",
            file.display()
        )) && err.contains("expired on"),
        "{err}"
    );
    let (ok, _, _) = check_entry(dir, &format!("{{ cert: \"{c}\", key: \"{k}\" }}"));
    assert!(ok, "a good pair passes");
}
