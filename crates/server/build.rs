//! Build script: records the git commit for the `user_service_build_info` metric. Reads
//! `USER_SERVICE_GIT_COMMIT` when the builder sets it (container builds without `.git`),
//! else asks a local `git`; "unknown" when neither answers. Never touches the network.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=USER_SERVICE_GIT_COMMIT");
    let commit = std::env::var("USER_SERVICE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuild when HEAD moves (a commit, a checkout); paths resolve inside worktrees too.
    for path in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rustc-env=USER_SERVICE_GIT_COMMIT={commit}");
}
