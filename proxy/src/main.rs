//! `sluice` — the gateway binary: CLI, logging, and the Pingora server with its services.

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::Parser;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::ListenerConfig;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use pingora_proxy::HttpProxy;
use sluice::access_log::AccessLogService;
use sluice::admin::{AdminService, AdminState};
use sluice::config;
use sluice::drain::DrainService;
use sluice::gateway::Gateway;
use sluice::header_deadline::{self, HeaderDeadline};
use sluice::health_checks::HealthCheckService;
use sluice::kafka::KafkaService;
use sluice::keys::sync::RedisSyncService;
use sluice::reload::{EarlyHangups, ReloadSignalService, Reloader};
use sluice::services::Services;
use sluice::snapshot::Snapshot;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of glibc's malloc: a proxy allocates and frees small buffers and
/// header maps per request from several threads, where glibc's arenas showed up as ~9%
/// of sluice's CPU under load (perf); see bench/NOTES.md for the A/B. Without the
/// `mimalloc` feature the system allocator serves, which heap profilers (heaptrack) see.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sluice: a programmable API gateway on Pingora.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The YAML configuration file.
    #[arg(short, long, default_value = "conf/sluice.yaml")]
    config: PathBuf,
    /// Validate the configuration, print every error as file:line: field: message, and exit.
    #[arg(short, long)]
    test: bool,
    /// Run in the background (Pingora daemon mode; needs --pid-file to be found again).
    #[arg(short, long)]
    daemon: bool,
    /// Take over the listeners of a running sluice (graceful upgrade; see README).
    #[arg(short, long)]
    upgrade: bool,
    /// Where the daemon writes its PID.
    #[arg(long)]
    pid_file: Option<String>,
    /// Unix socket used to hand listeners to an upgrading process.
    #[arg(long)]
    upgrade_sock: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.test {
        return match config::load(&cli.config) {
            Ok(config) => {
                for warning in &config.warnings {
                    eprintln!("warning: {warning}");
                }
                println!("{}: ok", cli.config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// No transparent huge pages for this process, unless `MIMALLOC_ALLOW_THP=1` asks for
/// them. mimalloc requests them for its arenas (`madvise`), and a proxy's heap is many
/// small, short-lived buffers: with them sluice held ~12 MiB more idle and 12–15 MiB more
/// under 1,000 and 10,000 keep-alive clients, for no CPU difference this machine could
/// measure (bench/NOTES.md, memory at scale). The same as mimalloc's own
/// `MIMALLOC_ALLOW_THP=0`; it applies to the mappings made from here on, which are all
/// but the allocator's first.
fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some_and(|v| v == "1") {
        return;
    }
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "could not disable transparent huge pages; memory use will be higher");
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // `init` also installs the `log` bridge, which is how Pingora's own logs show up.
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    let config = config::load(&cli.config).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let listen = config.server.listen;
    let admin_listen = config.server.admin_listen;
    let header_timeout = config.server.client_header_timeout;
    let tls = config.server.tls.clone();
    let h2c = config.server.h2c;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let port = listen.port();

    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        daemon: cli.daemon,
        pid_file: cli
            .pid_file
            .unwrap_or_else(|| format!("/tmp/sluice-{port}.pid")),
        upgrade_sock: cli
            .upgrade_sock
            .unwrap_or_else(|| format!("/tmp/sluice-{port}.upgrade.sock")),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        ..Opt::default()
    };
    let services = Services::new(&config).context("starting the shared services")?;
    let kafka = config.kafka.clone();
    let snapshot = Snapshot::build(config, None, 1).context("building the upstream groups")?;
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));

    let early_hangups = EarlyHangups::claim().context("installing the SIGHUP handler")?;
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut gateway = HttpProxy::new(
        Gateway::new(snapshot.clone(), &services).context("building the request pipeline")?,
        server.configuration.clone(),
    );
    gateway.handle_init_modules();
    if h2c {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        gateway.server_options = Some(options);
    }
    let mut proxy = Service::new(
        "sluice proxy".to_string(),
        HeaderDeadline::new(gateway, header_timeout),
    );
    proxy.add_listener(
        ListenerConfig::tcp(listen.to_string()).l4_buffer(header_deadline::client_buffers()),
    );
    if let Some(tls) = &tls {
        let settings = sluice::tls::listener::settings(snapshot.clone(), tls.min_version)
            .map_err(|e| anyhow::anyhow!("setting up the TLS listener: {e}"))?;
        proxy.add_listener(
            ListenerConfig::tcp(tls.listen.to_string())
                .tls(settings)
                .l4_buffer(header_deadline::client_buffers()),
        );
    }
    server.add_service(proxy);
    server.add_service(background_service(
        "health checks",
        HealthCheckService::new(snapshot.clone()),
    ));
    if let Some(kafka) = kafka {
        server.add_service(background_service(
            "kafka producer",
            KafkaService::new(services.events.clone(), kafka),
        ));
    }
    if services.access_log.format().is_some() {
        server.add_service(background_service(
            "access log",
            AccessLogService::new(services.access_log.clone()),
        ));
    }
    let reloader = Reloader::new(cli.config.clone(), snapshot.clone());
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadSignalService::new(reloader.clone(), services.access_log.clone(), early_hangups),
    ));
    server.add_service(background_service("drain", DrainService));
    if let Some(redis) = &services.redis {
        server.add_service(background_service(
            "redis",
            RedisSyncService::new(redis.clone(), services.key_cache.clone()),
        ));
    }
    server.add_service(background_service(
        "admin",
        AdminService::new(admin_listen, AdminState::new(snapshot, reloader, services)),
    ));
    let https = tls.as_ref().map(|t| t.listen.to_string());
    tracing::info!(%listen, %admin_listen, https = https.as_deref().unwrap_or("off"), "sluice starting");
    server.run_forever();
}
