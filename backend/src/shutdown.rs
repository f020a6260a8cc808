//! Graceful shutdown for the services' binaries.

/// Resolves on SIGTERM or Ctrl-C: stop accepting, finish what is in flight.
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
