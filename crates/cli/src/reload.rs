//! Keeping something in step with files on disk: the auth file, the TLS
//! certificate and key. One loop for both, so they behave alike.

use std::time::Duration;

/// How often watched files are looked at for changes.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Reads the watched files (`read`, on a blocking thread) on SIGHUP and
/// every [`FILE_POLL`]; when their contents differ from the last seen,
/// hands them to `apply`. `apply` puts them in force or says why not; a refusal
/// is logged and the thing in force stays. Bytes are remembered either way,
/// so a bad file is reported once, and a pair written one file after the
/// other (a key, then its certificate) is taken when the second lands,
/// because the bytes change again. `first`: the contents already in force.
pub fn spawn<T, R, A>(what: &'static str, first: T, read: R, apply: A) -> tokio::task::JoinHandle<()>
where
    T: PartialEq + Send + 'static,
    R: Fn() -> anyhow::Result<T> + Clone + Send + 'static,
    A: Fn(&T) -> anyhow::Result<()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut last = first;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let signalled = async {
                match hangup.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = signalled => tracing::info!("SIGHUP: reading the {what} again"),
                () = tokio::time::sleep(FILE_POLL) => {}
            }
            let bytes = match tokio::task::spawn_blocking(read.clone()).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the {what}; what is in force stays");
                    continue;
                }
                Err(_) => continue,
            };
            if bytes == last {
                continue;
            }
            match apply(&bytes) {
                Ok(()) => tracing::info!(target: "raftq::audit", "{what} reloaded"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "{what} refused; what is in force stays"),
            }
            last = bytes;
        }
    })
}
