//! The process target for real: `bmm supervise` and `bmm run` children,
//! restarts, blue/green, stop, reconcile, and the CLI around them.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use bmm_deploy::{
    DeployError, Deployer, PortRange, ProcessConfig, ProcessDeployer, Status, check_health,
};
use bmm_runtime::{SecretValue, Secrets};
use futures_util::StreamExt;

use crate::deploy_support::{KillOnDrop, TOKEN, assert_converts, bmm, converter, eventually};

fn deployer(state: &std::path::Path, range: &str) -> ProcessDeployer {
    let mut config = ProcessConfig::new(bmm(), state);
    config.port_range = range.parse::<PortRange>().unwrap();
    config.restart_initial = Duration::from_millis(100);
    ProcessDeployer::new(config).unwrap()
}

fn kill(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runner_comes_back_and_stop_frees_the_port() {
    let state = tempfile::tempdir().unwrap();
    let _cleanup = KillOnDrop(state.path().to_path_buf());
    let deployer = deployer(state.path(), "19200-19209");
    let deployment = deployer.deploy(converter("1.0.0", false)).await.unwrap();
    assert_eq!(deployment.status, Status::Running);
    assert_eq!(deployment.target, bmm_deploy::Target::Process);
    let url = deployment.url.to_string();
    assert_converts(&url);

    let (supervisor, child) = deployer.pids("unit-converter").unwrap();
    let child = child.unwrap();
    kill(child);
    let back = eventually(Duration::from_secs(20), async || {
        matches!(deployer.pids("unit-converter"), Ok((_, Some(new))) if new != child)
            && deployer.status("unit-converter").await.unwrap().status == Status::Running
    })
    .await;
    assert!(
        back,
        "the runner did not come back: {:?}",
        deployer.status("unit-converter").await
    );
    assert_converts(&url);
    let log: Vec<String> = deployer
        .logs("unit-converter", false)
        .await
        .unwrap()
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert!(log.iter().any(|l| l.contains("restart 1")), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("bmm: listening on"))
            .count(),
        2,
        "{log:?}"
    );

    let port = deployment.url.port().unwrap();
    deployer.stop("unit-converter").await.unwrap();
    assert_eq!(
        deployer.status("unit-converter").await.unwrap().status,
        Status::Stopped
    );
    assert!(!alive(supervisor));
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free after stop");

    deployer.remove("unit-converter").await.unwrap();
    assert!(matches!(
        deployer.status("unit-converter").await,
        Err(DeployError::UnknownServer { .. })
    ));
    assert!(!state.path().join("servers/unit-converter").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_redeploy_keeps_the_old_version_serving() {
    let state = tempfile::tempdir().unwrap();
    let _cleanup = KillOnDrop(state.path().to_path_buf());
    let deployer = deployer(state.path(), "19210-19219");
    let old = deployer.deploy(converter("1.0.0", false)).await.unwrap();

    // A release that cannot start: its required secret has no value.
    let error = deployer.deploy(converter("2.0.0", true)).await.unwrap_err();
    let DeployError::HealthCheckFailed {
        server,
        version,
        reason,
    } = &error
    else {
        panic!("unexpected {error}");
    };
    assert_eq!(
        (server.as_str(), version.as_str()),
        ("unit-converter", "2.0.0")
    );
    assert!(
        reason.contains("required secret TOKEN has no value"),
        "{reason}"
    );
    assert_eq!(
        deployer.status("unit-converter").await.unwrap().version,
        "1.0.0"
    );
    assert_converts(old.url.as_str());
    assert_eq!(
        std::fs::read_dir(state.path().join("servers/unit-converter"))
            .unwrap()
            .count(),
        2,
        "current + one instance"
    );

    let secrets: Secrets = [("TOKEN", SecretValue::new(TOKEN))].into_iter().collect();
    let new = deployer
        .deploy(converter("2.0.0", true).with_secrets(secrets))
        .await
        .unwrap();
    assert_eq!(
        (new.version.as_str(), new.status.clone()),
        ("2.0.0", Status::Running)
    );
    assert_ne!(
        new.url, old.url,
        "blue/green: the new version listens on another port"
    );
    assert_converts(new.url.as_str());
    check_health(&old.url, Duration::from_millis(300), || None)
        .await
        .expect_err("the old version is stopped");
    TcpListener::bind(("127.0.0.1", old.url.port().unwrap())).expect("the old port is free");

    // The secret's value reaches no file of the state folder.
    for entry in walk(state.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "{} holds the secret",
            entry.display()
        );
    }
    deployer.remove("unit-converter").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_stale_state() {
    let state = tempfile::tempdir().unwrap();
    let _cleanup = KillOnDrop(state.path().to_path_buf());
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let full = deployer(state.path(), &format!("{port}-{port}"));
    let error = full.deploy(converter("1.0.0", false)).await.unwrap_err();
    assert!(
        matches!(error, DeployError::PortRangeExhausted { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!("{port}-{port}")),
        "{error}"
    );

    let deployer = deployer(state.path(), "19230-19239");
    for result in [
        deployer.status("nope").await.map(|_| ()),
        deployer.stop("nope").await,
        deployer.remove("nope").await,
        deployer.logs("nope", false).await.map(|_| ()),
        deployer.status("../../etc").await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(DeployError::UnknownServer { .. })),
            "{result:?}"
        );
    }

    // A supervisor that died (a reboot, a kill) leaves a record reconcile cleans.
    let deployment = deployer.deploy(converter("1.0.0", false)).await.unwrap();
    let (supervisor, child) = deployer.pids("unit-converter").unwrap();
    kill(supervisor);
    kill(child.unwrap());
    let failed = eventually(Duration::from_secs(5), async || {
        matches!(
            deployer.status("unit-converter").await.unwrap().status,
            Status::Failed { .. }
        )
    })
    .await;
    assert!(failed);
    let report = deployer.reconcile().await.unwrap();
    assert_eq!(report.cleaned, [deployment.id]);
    assert!(report.adopted.is_empty());
    assert!(matches!(
        deployer.status("unit-converter").await,
        Err(DeployError::UnknownServer { .. })
    ));

    // A live one is adopted by a new deployer over the same state.
    deployer.deploy(converter("1.0.0", false)).await.unwrap();
    let again = self::deployer(state.path(), "19230-19239");
    let report = again.reconcile().await.unwrap();
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    assert_eq!(
        again.status("unit-converter").await.unwrap().status,
        Status::Running
    );

    // A wiped state folder leaves nothing running behind it.
    let (supervisor, child) = again.pids("unit-converter").unwrap();
    std::fs::remove_dir_all(state.path().join("servers")).unwrap();
    let gone = eventually(Duration::from_secs(5), async || {
        !alive(supervisor) && !alive(child.unwrap())
    })
    .await;
    assert!(gone, "the supervisor outlived its record");
}

#[test]
fn the_cli_deploys_lists_tails_and_removes() {
    let state = tempfile::tempdir().unwrap();
    let _cleanup = KillOnDrop(state.path().to_path_buf());
    let spec = crate::harness::workspace().join("examples/specs/unit-converter.json");
    let run = |args: &[&str]| {
        let output = Command::new(bmm())
            .args(args)
            .env("BMM_STATE_DIR", state.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "deploy",
        spec.to_str().unwrap(),
        "--target",
        "process",
        "--port-range",
        "19220-19229",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("deployed unit-converter v1.0.0 to process at http://127.0.0.1:1922"),
        "{out}"
    );
    assert!(
        err.contains("starting unit-converter v1.0.0 on port 1922"),
        "{err}"
    );
    assert!(err.contains("healthy"), "{err}");
    let url = out
        .split(" at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_converts(&url);

    let (ok, out, _) = run(&["ps", "--target", "process"]);
    assert!(ok);
    let row = out
        .lines()
        .find(|l| l.starts_with("unit-converter"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("1.0.0") && row.contains("process") && row.contains("running"),
        "{row}"
    );

    let (ok, out, _) = run(&["logs", "unit-converter", "--target", "process"]);
    assert!(ok);
    assert!(out.contains("bmm: listening on 127.0.0.1:1922"), "{out}");

    let (ok, out, err) = run(&["rm", "unit-converter", "--target", "process"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed unit-converter"), "{out}");
    let (_, out, _) = run(&["ps", "--target", "process"]);
    assert!(!out.contains("unit-converter"), "{out}");

    let (ok, _, err) = run(&["logs", "unit-converter", "--target", "process"]);
    assert!(!ok);
    assert!(
        err.contains("no server \"unit-converter\" is deployed"),
        "{err}"
    );
    let (ok, _, err) = run(&["deploy", spec.to_str().unwrap(), "--target", "coolify"]);
    assert!(!ok);
    assert!(err.contains("COOLIFY_URL"), "{err}");
    let (ok, _, err) = run(&[
        "deploy",
        spec.to_str().unwrap(),
        "--target",
        "docker",
        "--docker-host",
        "unix:///nonexistent/docker.sock",
        "--static-binary",
        "/nonexistent/bmm",
    ]);
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/docker.sock") && err.contains("start dockerd"),
        "{err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_cli_serves_in_process_in_the_foreground() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let spec = crate::harness::workspace().join("examples/specs/unit-converter.json");
    let mut child = Command::new(bmm())
        .args([
            "deploy",
            spec.to_str().unwrap(),
            "--target",
            "inprocess",
            "--port-range",
            "19240-19249",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let url = line
        .as_deref()
        .ok()
        .and_then(|l| l.strip_prefix("bmm: serving unit-converter v1.0.0 in this process at "))
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_owned);
    let outcome = std::panic::catch_unwind(|| {
        let url = url.unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        assert!(
            url.starts_with("http://127.0.0.1:1924") && url.ends_with("/mcp/unit-converter"),
            "{url}"
        );
        assert_converts(&url);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
