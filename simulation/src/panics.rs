//! Panics inside a simulated node are bugs, but tokio catches a panicking
//! task and the node just limps on. A process-wide hook records every panic
//! raised on a thread that is running a seed, so the checker can fail it.

use std::cell::RefCell;
use std::panic;
use std::sync::Once;

/// Set this environment variable to get a backtrace with every recorded
/// panic (they are quiet otherwise).
pub const BACKTRACE_VAR: &str = "RAFTQ_SIM_BACKTRACE";
/// Most panic messages kept per seed (a panicking loop must not eat memory).
const PANICS_KEPT_MAX: usize = 16;

thread_local! {
    /// `Some` while this thread runs a seed: the panics seen so far.
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Starts recording this thread's panics (quietly: they are reported with
/// the seed, not printed as they happen).
pub fn start_capture() {
    INSTALL.call_once(|| {
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED.with(|slot| {
                let mut slot = slot.borrow_mut();
                let Some(panics) = slot.as_mut() else { return false };
                if panics.len() < PANICS_KEPT_MAX {
                    let location =
                        info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                    let mut text = format!("{}{location}", payload_text(info.payload()));
                    if std::env::var_os(BACKTRACE_VAR).is_some() {
                        text.push_str(&format!("\n{}", std::backtrace::Backtrace::force_capture()));
                    }
                    panics.push(text);
                }
                true
            });
            if !captured {
                default_hook(info);
            }
        }));
    });
    CAPTURED.with(|slot| *slot.borrow_mut() = Some(Vec::new()));
}

/// Stops recording and returns what was recorded.
pub fn finish_capture() -> Vec<String> {
    CAPTURED.with(|slot| slot.borrow_mut().take()).unwrap_or_default()
}

/// A panic payload as text.
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(non-text panic payload)".to_owned()
    }
}
