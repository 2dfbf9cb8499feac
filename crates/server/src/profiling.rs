//! CPU profiles on demand (`GET /admin/debug/profile`): pprof-rs samples every thread with
//! `SIGPROF` for the requested time, then renders a flamegraph SVG. Sampling is
//! process-wide, so only one profile runs at a time. The whole run happens on a blocking
//! thread: the request's runtime never waits on it.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// Why no profile was taken.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Another profile is running.
    #[error("another profile is running")]
    Busy,
    /// The profiler failed.
    #[error("profiling failed: {0}")]
    Failed(String),
}

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Clears [`RUNNING`] when the profile ends, however it ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Samples the process for `duration` at `frequency` Hz; returns the flamegraph SVG.
///
/// # Errors
/// [`ProfileError::Busy`] while another profile runs; `Failed` when the profiler fails.
pub async fn flamegraph(duration: Duration, frequency: i32) -> Result<Vec<u8>, ProfileError> {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(ProfileError::Busy);
    }
    let running = Running;
    tokio::task::spawn_blocking(move || {
        // Held by the blocking thread: a caller that goes away does not free the slot
        // while sampling still runs.
        let _running = running;
        sample(duration, frequency)
    })
    .await
    .map_err(|e| ProfileError::Failed(e.to_string()))?
}

fn failed(e: impl std::fmt::Display) -> ProfileError {
    ProfileError::Failed(e.to_string())
}

#[cfg(unix)]
fn sample(duration: Duration, frequency: i32) -> Result<Vec<u8>, ProfileError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency)
        // Unwinding through these while a signal interrupted them can deadlock.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(failed)?;
    std::thread::sleep(duration);
    let report = guard.report().build().map_err(failed)?;
    if report.data.is_empty() {
        // An idle process gets no SIGPROF at all; the flamegraph renderer refuses an empty
        // profile, so say so in an SVG rather than fail.
        return Ok(idle_svg(duration));
    }
    let mut svg = Vec::new();
    report.flamegraph(&mut svg).map_err(failed)?;
    Ok(svg)
}

#[cfg(unix)]
fn idle_svg(duration: Duration) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" standalone="no"?><svg version="1.1" width="600" height="40" xmlns="http://www.w3.org/2000/svg"><text x="10" y="25">No CPU samples in {} s: the process was idle.</text></svg>"#,
        duration.as_secs()
    )
    .into_bytes()
}

#[cfg(not(unix))]
fn sample(_duration: Duration, _frequency: i32) -> Result<Vec<u8>, ProfileError> {
    Err(ProfileError::Failed(
        "CPU profiles are only available on Unix".to_owned(),
    ))
}
