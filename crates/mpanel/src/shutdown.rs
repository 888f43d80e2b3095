//! The signals that stop a process gracefully.

use std::future::Future;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled: a signal that
/// arrives between start-up and the first poll (the server already says it
/// listens) stops the process gracefully instead of killing it.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(i), Ok(t)) => (i, t),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::error!(%err, "cannot listen for SIGINT or SIGTERM");
                    return std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
        tracing::info!("SIGINT received");
    }
}
