//! The reference `make bench` measures sluice's own stages against: Pingora's proxy with
//! nothing on top — round robin over fixed peers, upstream keepalive, no routing, no
//! headers, no metrics. Same threads and allocator as sluice, so the difference between
//! the two is what sluice adds. Bench-only; never part of the stack.
//!
//!   bare-pingora --listen 127.0.0.1:9996 --peer 127.0.0.1:8081 --peer 127.0.0.1:8082

use async_trait::async_trait;
use clap::Parser;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_load_balancing::{selection::RoundRobin, LoadBalancer};
use pingora_proxy::{ProxyHttp, Session};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    /// Address to accept clients on.
    #[arg(long)]
    listen: String,
    /// An upstream `host:port`; repeat for more.
    #[arg(long = "peer", required = true)]
    peers: Vec<String>,
    /// Pingora worker threads (sluice's stack config uses 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

struct RoundRobinProxy(LoadBalancer<RoundRobin>);

#[async_trait]
impl ProxyHttp for RoundRobinProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        let peer = self
            .0
            .select(b"", 256)
            .ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "no peer"))?;
        Ok(Box::new(HttpPeer::new(peer, false, String::new())))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let peers = LoadBalancer::try_from_iter(cli.peers.iter().map(String::as_str))?;
    let conf = ServerConf {
        threads: cli.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        pid_file: format!("/tmp/bare-pingora-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/bare-pingora-{}.sock", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy =
        pingora_proxy::http_proxy_service(&server.configuration, RoundRobinProxy(peers));
    proxy.add_tcp(&cli.listen);
    server.add_service(proxy);
    server.run_forever()
}
