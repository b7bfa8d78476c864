//! Deploy latency and idle memory per deploy target: the time from handing a
//! bundle to a `Deployer` to the first successful MCP `tools/list` on the
//! deployed server, and the resident memory of one idle deployed server.
//!
//! Run with `cargo bench -p bmm-server --bench deploy`. The Docker figures
//! need a running daemon and `BMM_STATIC_BINARY` (from `scripts/build-static`);
//! without them the Docker section says why and is skipped. Every server
//! listens on 127.0.0.1; every loop is bounded.

// A benchmark may stop on the first thing that goes wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bmm_core::{CheckOptions, check};
use bmm_deploy::{
    Bundle, Deployer, DockerConfig, DockerDeployer, InProcessDeployer, ProcessConfig,
    ProcessDeployer, check_health,
};
use bmm_runtime::HostConfig;
use bollard::query_parameters::InspectContainerOptions;
use serde_json::{Value, json};

const IN_PROCESS_DEPLOYS: usize = 200;
const IN_PROCESS_RSS_SERVERS: usize = 200;
const PROCESS_DEPLOYS: usize = 10;
const DOCKER_DEPLOYS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    in_process().await;
    process().await;
    docker().await;
}

fn converter(slug: &str, version: usize) -> Bundle {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/specs/unit-converter.json"
    );
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    document["slug"] = json!(slug);
    document["version"] = json!(format!("1.0.{version}"));
    Bundle::from_spec(check(&document, &CheckOptions::default()).unwrap())
}

/// Deploys, then waits for the first successful `tools/list`.
async fn deploy_to_tools_list(deployer: &dyn Deployer, bundle: Bundle) -> Duration {
    let start = Instant::now();
    let deployment = deployer.deploy(bundle).await.unwrap();
    let tools = check_health(&deployment.url, Duration::from_secs(30), || None)
        .await
        .unwrap();
    assert_eq!(tools, 3);
    start.elapsed()
}

async fn in_process() {
    let deployer = InProcessDeployer::serve(HostConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut times = Vec::new();
    for i in 0..IN_PROCESS_DEPLOYS {
        // Alternate a first deploy and a blue/green replacement.
        times.push(deploy_to_tools_list(&deployer, converter("bench", i)).await);
    }
    report("in-process", &times);

    let before = rss_kib(std::process::id());
    for i in 0..IN_PROCESS_RSS_SERVERS {
        deployer
            .deploy(converter(&format!("idle-{i}"), 0))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(std::process::id());
    println!(
        "in-process idle RSS: {:.1} KiB per deployed server ({IN_PROCESS_RSS_SERVERS} servers added {} KiB to the host process, now {} KiB)",
        (after.saturating_sub(before)) as f64 / IN_PROCESS_RSS_SERVERS as f64,
        after.saturating_sub(before),
        after
    );
}

async fn process() {
    let state = tempfile::tempdir().unwrap();
    let mut config = ProcessConfig::new(env!("CARGO_BIN_EXE_bmm"), state.path());
    config.port_range = "19400-19449".parse().unwrap();
    let deployer = ProcessDeployer::new(config).unwrap();
    let mut times = Vec::new();
    for i in 0..PROCESS_DEPLOYS {
        times.push(deploy_to_tools_list(&deployer, converter("bench", i)).await);
    }
    report("process", &times);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (supervisor, child) = deployer.pids("bench").unwrap();
    println!(
        "process idle RSS: runner {} KiB, supervisor {} KiB (VmRSS)",
        rss_kib(child.unwrap()),
        rss_kib(supervisor)
    );
    deployer.remove("bench").await.unwrap();
}

async fn docker() {
    let Some(binary) = std::env::var_os("BMM_STATIC_BINARY").map(PathBuf::from) else {
        println!("docker: skipped, BMM_STATIC_BINARY is not set (scripts/build-static)");
        return;
    };
    let mut config = DockerConfig::new(binary);
    config.port_range = "19450-19469".parse().unwrap();
    let deployer = match DockerDeployer::connect(config).await {
        Ok(deployer) => deployer,
        Err(error) => {
            println!("docker: skipped, {error}");
            return;
        }
    };
    let _ = deployer.remove("bench").await;
    let mut times = Vec::new();
    for i in 0..DOCKER_DEPLOYS {
        times.push(deploy_to_tools_list(&deployer, converter("bench", i)).await);
    }
    report("docker (image build included)", &times);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let id = deployer.container_id("bench").await.unwrap();
    let inspect = deployer
        .docker()
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let pid = u32::try_from(inspect.state.unwrap().pid.unwrap()).unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let memory_current = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .and_then(|path| {
            std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.current")).ok()
        })
        .and_then(|v| v.trim().parse::<u64>().ok());
    println!(
        "docker idle RSS: runner {} KiB (VmRSS of the container's bmm), cgroup memory.current {}",
        rss_kib(pid),
        memory_current.map_or("unavailable".to_owned(), |b| format!("{} KiB", b / 1024))
    );
    deployer.remove("bench").await.unwrap();
}

fn report(target: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    println!(
        "{target}: deploy to first tools/list p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms over {} deploys",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(*sorted.last().unwrap()),
        sorted.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
