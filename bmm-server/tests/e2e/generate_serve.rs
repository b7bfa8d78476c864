//! The README's first command: `bmm generate --prompt … --serve` drafts with
//! the mock (no key here), writes the bundle and serves it in-process; a
//! real MCP client then calls a tool.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::deploy_support::{assert_converts, bmm};
use crate::harness::workspace;

#[test]
fn generate_and_serve_with_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let mut child = Command::new(bmm())
        .args(["generate", "--prompt", "convert units", "--out"])
        .arg(&out)
        .args(["--serve", "--port", "0"])
        .current_dir(workspace())
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = scopeguard(child.id());
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("bmm: serving "))
        .expect("bmm generate --serve printed where it serves");
    let url = line
        .split(" at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    assert!(url.ends_with("/mcp/unit-converter"), "{line}");
    assert!(out.join("server.json").is_file());
    assert_converts(&url);
    // SIGTERM (what `kill`, Docker and process managers send) stops it cleanly.
    drop(guard);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM should stop it with 0: {status:?}"
    );
}

/// Sends SIGTERM on drop, so a failing assertion leaves nothing running.
fn scopeguard(pid: u32) -> impl Drop {
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.to_string()).status();
        }
    }
    Kill(pid)
}
