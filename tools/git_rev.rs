// Included by the build scripts of `mock-server` and `conformance`: sets `GIT_REV` to the
// commit the binary is built from (12 hex digits), so `--version` names it. Outside a git
// checkout (a source tarball) it is `$MESSAGING_GIT_REV`, else "unknown".

fn git_rev(manifest: &std::path::Path) -> String {
    println!("cargo:rerun-if-env-changed=MESSAGING_GIT_REV");
    if let Ok(rev) = std::env::var("MESSAGING_GIT_REV") {
        return rev;
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(manifest)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A new commit moves HEAD or the branch it points at.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = std::path::Path::new(&dir).join(&branch);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

fn emit_git_rev(manifest: &std::path::Path) {
    println!("cargo:rustc-env=GIT_REV={}", git_rev(manifest));
}
