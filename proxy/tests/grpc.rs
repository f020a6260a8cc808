//! gRPC through sluice with a real tonic server and client (the standard
//! `grpc.health.v1` service): unary and server-streaming calls over h2c and over TLS to an
//! h2c upstream, an upstream error status passing through in its trailers, sluice's own
//! refusals answered as gRPC statuses, and gRPC health checks taking a peer out.

use sluice_testkit::redis::Redis;
use sluice_testkit::services::Sluice;
use sluice_testkit::tls::TestCa;
use sluice_testkit::{assert_eventually, free_port, http, ADMIN_TOKEN_SHA256};
use std::net::SocketAddr;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;

/// A tonic server with the health service on a free port; its reporter sets statuses.
fn grpc_server(rt: &tokio::runtime::Runtime) -> (SocketAddr, HealthReporter) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve(addr)
            .await;
    });
    (addr, reporter)
}

fn config(upstream: SocketAddr, redis: &str, tls_port: u16, ca: &TestCa) -> String {
    format!(
        r#"server:
  listen: "{{listen}}"
  admin_listen: "{{admin}}"
  threads: 2
  h2c: true
  tls:
    listen: "127.0.0.1:{tls_port}"
    certificates:
      - {{ cert: "{}", key: "{}" }}
admin: {{ token_sha256: "{ADMIN_TOKEN_SHA256}" }}
redis: {{ url: "{redis}", timeout_ms: 250 }}
upstreams:
  grpc:
    peers: ["{upstream}"]
    protocol: h2c
    health_check: {{ kind: grpc, service: "echo", interval_ms: 200, timeout_ms: 500, healthy_after: 1, unhealthy_after: 1 }}
routes:
  - {{ name: keyed, host: keyed.test, path_prefix: /, upstream: grpc, auth: api_key }}
  - {{ name: denied, host: denied.test, path_prefix: /, upstream: grpc, deny: [127.0.0.0/8] }}
  - {{ name: health, host: 127.0.0.1, path_prefix: /grpc.health.v1.Health/, upstream: grpc }}
  - {{ name: health-tls, host: localhost, path_prefix: /grpc.health.v1.Health/, upstream: grpc }}
"#,
        ca.dir().join("server.pem").display(),
        ca.dir().join("server.key").display(),
    )
}

struct Stack {
    rt: tokio::runtime::Runtime,
    reporter: HealthReporter,
    ca: TestCa,
    tls_port: u16,
    s: Sluice,
    _redis: Redis,
}

fn start() -> Stack {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, reporter) = grpc_server(&rt);
    rt.block_on(reporter.set_service_status("echo", tonic_health::ServingStatus::Serving));
    let ca = TestCa::new();
    ca.issue("server", 9, 2, "DNS:localhost,IP:127.0.0.1");
    let redis = Redis::start();
    let tls_port = free_port();
    let s = Sluice::start(&config(addr, &redis.url(), tls_port, &ca));
    assert_eventually!(
        Duration::from_secs(10),
        std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok(),
        "the TLS listener did not open"
    );
    Stack {
        rt,
        reporter,
        ca,
        tls_port,
        s,
        _redis: redis,
    }
}

/// A client over h2c to sluice's plain listener, asking for `origin` (the :authority).
fn h2c_client(s: &Sluice, origin: &str) -> HealthClient<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{}", s.proxy))
        .expect("endpoint")
        .origin(origin.parse().expect("origin"));
    HealthClient::new(endpoint.connect_lazy())
}

fn check(service: &str) -> tonic::Request<HealthCheckRequest> {
    tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    })
}

#[test]
fn unary_and_streaming_calls_pass_through_over_h2c_and_tls() {
    let t = start();
    let ca_pem = std::fs::read(t.ca.ca_pem()).expect("ca");
    t.rt.block_on(async {
        // Over h2c, unary.
        let mut client = h2c_client(&t.s, &format!("http://127.0.0.1:{}", t.s.proxy.port()));
        let answer = client.check(check("echo")).await.expect("Check over h2c");
        assert_eq!(answer.into_inner().status, ServingStatus::Serving as i32);

        // An upstream error status arrives intact (its trailers passed through).
        let status = client
            .check(check("nope"))
            .await
            .expect_err("unknown service");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");

        // Over TLS, unary and a server stream that sees a change the server makes.
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(format!("https://localhost:{}", t.tls_port))
            .expect("endpoint")
            .tls_config(tls)
            .expect("tls config")
            .connect()
            .await
            .expect("connect over TLS");
        let mut client = HealthClient::new(channel);
        let answer = client.check(check("echo")).await.expect("Check over TLS");
        assert_eq!(answer.into_inner().status, ServingStatus::Serving as i32);
        t.reporter
            .set_service_status("watched", tonic_health::ServingStatus::Serving)
            .await;
        let mut stream = client
            .watch(check("watched"))
            .await
            .expect("Watch")
            .into_inner();
        let first = stream.message().await.expect("stream").expect("a message");
        assert_eq!(first.status, ServingStatus::Serving as i32);
        t.reporter
            .set_service_status("watched", tonic_health::ServingStatus::NotServing)
            .await;
        let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a second message within 5 s")
            .expect("stream")
            .expect("a message");
        assert_eq!(second.status, ServingStatus::NotServing as i32);
    });
}

#[test]
fn sluices_own_refusals_reach_grpc_clients_as_grpc_statuses() {
    let t = start();
    t.rt.block_on(async {
        let mut keyed = h2c_client(&t.s, "http://keyed.test");
        let status = keyed.check(check("echo")).await.expect_err("no key");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains("API key"), "{status:?}");

        let mut denied = h2c_client(&t.s, "http://denied.test");
        let status = denied.check(check("echo")).await.expect_err("denied");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

        let mut nowhere = h2c_client(&t.s, "http://nowhere.test");
        let status = nowhere.check(check("echo")).await.expect_err("no route");
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    });
    // The event and metrics keep what happened, not the 200 a gRPC status rides on.
    let metrics = http::get(t.s.admin, "/metrics").expect("metrics").body;
    assert!(
        metrics.contains("sluice_requests_total{route=\"keyed\",status=\"401\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_peer_that_stops_serving_fails_its_grpc_health_check_and_is_taken_out() {
    let t = start();
    let healthy = |s: &Sluice| {
        http::get(s.admin, "/metrics")
            .map(|r| r.body)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.starts_with("sluice_upstream_healthy{")
                    && l.contains("upstream=\"grpc\"")
                    && l.ends_with(" 1")
            })
    };
    assert_eventually!(
        Duration::from_secs(5),
        healthy(&t.s),
        "a SERVING peer is healthy:\n{}",
        t.s.process.output()
    );
    t.rt.block_on(
        t.reporter
            .set_service_status("echo", tonic_health::ServingStatus::NotServing),
    );
    assert_eventually!(
        Duration::from_secs(5),
        !healthy(&t.s),
        "a NOT_SERVING peer stayed in"
    );
    t.rt.block_on(async {
        let mut client = h2c_client(&t.s, &format!("http://127.0.0.1:{}", t.s.proxy.port()));
        let status = client
            .check(check("echo"))
            .await
            .expect_err("no healthy peer");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    });
    t.rt.block_on(
        t.reporter
            .set_service_status("echo", tonic_health::ServingStatus::Serving),
    );
    assert_eventually!(Duration::from_secs(5), healthy(&t.s), "it never came back");
}

#[test]
fn an_h2_upstream_over_tls_is_verified_against_its_ca_and_name() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ca = TestCa::new();
    let upstream_cert = ca.issue("upstream", 10, 2, "DNS:grpc.internal");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (reporter, service) = tonic_health::server::health_reporter();
    let identity = tonic::transport::Identity::from_pem(
        std::fs::read(&upstream_cert.cert).expect("cert"),
        std::fs::read(&upstream_cert.key).expect("key"),
    );
    rt.spawn(async move {
        let _ = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("server tls")
            .add_service(service)
            .serve(addr)
            .await;
    });
    rt.block_on(reporter.set_service_status("echo", tonic_health::ServingStatus::Serving));
    let group = |sni: &str| {
        format!(
            "server: {{ listen: \"{{listen}}\", admin_listen: \"{{admin}}\", threads: 2, h2c: true }}\n\
             upstreams:\n  grpc:\n    peers: [\"{addr}\"]\n    protocol: h2\n    tls: {{ sni: {sni}, ca: \"{}\" }}\n    \
             health_check: {{ kind: grpc, interval_ms: 200, timeout_ms: 1000, healthy_after: 1, unhealthy_after: 1 }}\n\
             routes:\n  - {{ name: health, path_prefix: /grpc.health.v1.Health/, upstream: grpc }}\n",
            ca.ca_pem().display()
        )
    };
    let good = Sluice::start(&group("grpc.internal"));
    rt.block_on(async {
        let mut client = h2c_client(&good, &format!("http://127.0.0.1:{}", good.proxy.port()));
        let mut answer = None;
        for _ in 0..50 {
            match client.check(check("echo")).await {
                Ok(a) => {
                    answer = Some(a.into_inner().status);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert_eq!(
            answer,
            Some(ServingStatus::Serving as i32),
            "{}",
            good.process.output()
        );
    });
    // The same peer under a name its certificate does not carry is never trusted.
    let wrong = Sluice::start(&group("other.internal"));
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut client = h2c_client(&wrong, &format!("http://127.0.0.1:{}", wrong.proxy.port()));
        let status = client.check(check("echo")).await.expect_err("wrong name");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    });
}
