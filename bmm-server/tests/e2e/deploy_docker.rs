//! The Docker target for real: a `FROM scratch` image of the static `bmm`,
//! a hardened container reached by the Python MCP client, blue/green, logs
//! and removal. Needs a running Docker daemon and `BMM_STATIC_BINARY`
//! (`scripts/test` builds it with `scripts/build-static` and exports it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bmm_deploy::docker::{LABEL_MANAGED, LABEL_SERVER};
use bmm_deploy::{
    DeployError, DeployOptions, Deployer, DockerConfig, DockerDeployer, Status, Target,
};
use bmm_runtime::{SecretValue, Secrets};
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
};
use futures_util::StreamExt;

use crate::deploy_support::{TOKEN, assert_converts, converter};

fn static_binary() -> PathBuf {
    let path = std::env::var_os("BMM_STATIC_BINARY").map(PathBuf::from).unwrap_or_else(|| {
        panic!("set BMM_STATIC_BINARY to a static bmm (scripts/build-static prints its path; scripts/test exports it)")
    });
    assert!(
        path.is_file(),
        "BMM_STATIC_BINARY={} is not a file",
        path.display()
    );
    path
}

/// `scripts/build-static` placed the functions its layout run saw, listed in
/// `bmm.order.<hash>` next to the binary, first in the code.
#[test]
fn the_static_binary_has_its_code_laid_out() {
    use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
    let binary = static_binary();
    let dir = binary.parent().unwrap();
    let orders: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bmm.order."))
        })
        .collect();
    assert_eq!(
        orders.len(),
        1,
        "one order file next to the binary: {orders:?}"
    );
    let order = std::fs::read_to_string(&orders[0]).unwrap();
    let ran: std::collections::HashSet<&str> = order.lines().collect();
    assert!(ran.len() > 1_000, "{} functions ran", ran.len());

    let data = std::fs::read(&binary).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let text = file.section_by_name(".text").unwrap();
    let mut functions: Vec<(u64, &str)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter(|s| s.section_index() == Some(text.index()))
        .filter_map(|s| Some((s.address(), s.name().ok()?)))
        .collect();
    functions.sort_unstable();
    functions.dedup_by_key(|(address, _)| *address);
    // The functions that ran come first: nearly all of the lowest addresses
    // hold one (a few are folded into an identical function of another name),
    // while among the rest they are a small share.
    let first = functions.len().min(ran.len()) / 2;
    let share = |part: &[(u64, &str)]| {
        part.iter().filter(|(_, name)| ran.contains(name)).count() as f64 / part.len() as f64
    };
    let (head, tail) = (share(&functions[..first]), share(&functions[ran.len()..]));
    assert!(
        head > 0.9 && tail < 0.2,
        "functions that ran: {:.0}% of the first {first} in .text, {:.0}% of the rest",
        head * 100.0,
        tail * 100.0
    );
}

/// Containers and images of `server`; with `layers`, the intermediate
/// images of its builds too.
async fn leftovers(deployer: &DockerDeployer, server: &str, layers: bool) -> (usize, usize) {
    let labels: HashMap<&str, Vec<String>> = [(
        "label",
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_SERVER}={server}"),
        ],
    )]
    .into();
    let containers = deployer
        .docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&labels)
                .build(),
        ))
        .await
        .unwrap();
    let images = deployer
        .docker()
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .all(layers)
                .filters(&labels)
                .build(),
        ))
        .await
        .unwrap();
    (containers.len(), images.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_deploys_hardened_serves_survives_a_bad_release_and_cleans_up() {
    let mut config = DockerConfig::new(static_binary());
    config.port_range = "19300-19319".parse().unwrap();
    config.memory_bytes = 128 << 20;
    config.pids_limit = 64;
    config.nano_cpus = 500_000_000;
    let deployer = DockerDeployer::connect(config).await.unwrap();
    // Start clean even if an earlier run of this test was interrupted.
    let _ = deployer.remove("unit-converter").await;

    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let options = DeployOptions {
        org: Some("acme".into()),
        progress: Some(std::sync::Arc::new(move |e| {
            sink.lock().unwrap().push(e.message)
        })),
        ..DeployOptions::default()
    };
    let v1 = deployer
        .deploy(converter("1.0.0", false).with_options(options))
        .await
        .unwrap();
    assert_eq!(
        (v1.target, v1.status.clone()),
        (Target::Docker, Status::Running)
    );
    let seen = events.lock().unwrap().clone();
    assert!(
        seen[0].starts_with("building image bmm/unit-converter:1.0.0-"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|m| m.starts_with("healthy")), "{seen:?}");
    assert_converts(v1.url.as_str());

    // Hardening, as the daemon reports it.
    let inspect = deployer
        .docker()
        .inspect_container(&v1.id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let host = inspect.host_config.unwrap();
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(
        host.security_opt
            .unwrap()
            .iter()
            .any(|o| o.starts_with("no-new-privileges"))
    );
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    let bindings = host.port_bindings.unwrap();
    let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
    let config = inspect.config.unwrap();
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
    let labels = config.labels.unwrap();
    assert_eq!(labels["dev.bmm.managed"], "true");
    assert_eq!(labels["dev.bmm.server"], "unit-converter");
    assert_eq!(labels["dev.bmm.org"], "acme");
    assert_eq!(labels["dev.bmm.version"], "1.0.0");

    let log: Vec<String> = deployer
        .logs("unit-converter", false)
        .await
        .unwrap()
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("bmm: listening on 0.0.0.0:8080")),
        "{log:?}"
    );

    // A release whose health never comes up: the old one keeps serving.
    let error = deployer.deploy(converter("2.0.0", true)).await.unwrap_err();
    let DeployError::HealthCheckFailed {
        version, reason, ..
    } = &error
    else {
        panic!("unexpected {error}");
    };
    assert_eq!(version, "2.0.0");
    assert!(
        reason.contains("required secret TOKEN has no value"),
        "{reason}"
    );
    assert_converts(v1.url.as_str());
    assert_eq!(
        deployer.status("unit-converter").await.unwrap().version,
        "1.0.0"
    );
    assert_eq!(
        leftovers(&deployer, "unit-converter", false).await,
        (1, 1),
        "the failed release is gone"
    );

    // A good release replaces it; the secret is in the container's env only.
    let secrets: Secrets = [("TOKEN", SecretValue::new(TOKEN))].into_iter().collect();
    let v2 = deployer
        .deploy(converter("2.0.0", true).with_secrets(secrets))
        .await
        .unwrap();
    assert_eq!(v2.version, "2.0.0");
    assert_ne!(v2.id, v1.id);
    assert_converts(v2.url.as_str());
    assert_eq!(
        leftovers(&deployer, "unit-converter", false).await,
        (1, 1),
        "the old release is gone"
    );
    let inspect = deployer
        .docker()
        .inspect_container(&v2.id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let config = inspect.config.unwrap();
    assert!(
        config
            .env
            .unwrap()
            .contains(&format!("BMM_SECRET_TOKEN={TOKEN}"))
    );
    assert!(!format!("{:?}", config.labels).contains(TOKEN));
    let image = deployer
        .docker()
        .inspect_image(&config.image.unwrap())
        .await
        .unwrap();
    assert!(
        !format!("{image:?}").contains(TOKEN),
        "the secret is in the image"
    );

    let listed = deployer.list().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|d| d.server == "unit-converter" && d.version == "2.0.0")
    );
    assert_eq!(
        deployer
            .reconcile()
            .await
            .unwrap()
            .adopted
            .iter()
            .filter(|s| *s == "unit-converter")
            .count(),
        1
    );

    deployer.stop("unit-converter").await.unwrap();
    assert_eq!(
        deployer.status("unit-converter").await.unwrap().status,
        Status::Stopped
    );
    deployer.remove("unit-converter").await.unwrap();
    assert_eq!(leftovers(&deployer, "unit-converter", true).await, (0, 0));
    assert!(matches!(
        deployer.status("unit-converter").await,
        Err(DeployError::UnknownServer { .. })
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn an_absent_daemon_is_a_clear_error() {
    let mut config = DockerConfig::new("/nonexistent/bmm");
    config.socket = Some("unix:///nonexistent/docker.sock".into());
    let error = DockerDeployer::connect(config).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, DeployError::DaemonUnavailable { .. }),
        "{text}"
    );
    assert!(text.contains("start dockerd"), "{text}");
}
