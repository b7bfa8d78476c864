//! The in-process target: servers mounted on a [`bmm_runtime::Host`] in this
//! process, at `{base}/mcp/{slug}`.
//!
//! [`Host::deploy`] is the blue/green step: it builds the new server (scripts
//! compiled, required secrets present) before it swaps the map entry, and a
//! failure leaves the previous version serving. The runtime keeps no log of
//! its own, so this deployer keeps a bounded ring of deployer events per
//! server (deployed, replaced, rejected, stopped).
//!
//! The host's own configuration (allowed hosts, http, networks) applies to
//! every server on it; the per-bundle `allowed_hosts`, `allow_http` and
//! `allow_networks` options are for the runner-based targets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bmm_core::{BuildStep, Level};
use bmm_runtime::{Deployed, Host, HostConfig};
use tokio::task::JoinHandle;
use url::Url;

use crate::logs::LogRing;
use crate::{
    Bundle, DeployError, Deployer, Deployment, LogSource, LogStream, Reconciled, Result, Status,
    Target,
};

/// Deploys onto a [`Host`] in this process. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct InProcessDeployer {
    host: Host,
    base: Url,
    servers: Mutex<HashMap<String, Entry>>,
    server_task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Entry {
    deployment: Deployment,
    log: Arc<LogRing>,
}

impl InProcessDeployer {
    /// A deployer onto `host`, whose router (`host.router()`) the caller
    /// serves at `base` (e.g. `http://127.0.0.1:8080/`).
    pub fn new(host: Host, base: Url) -> Self {
        Self {
            host,
            base,
            servers: Mutex::default(),
            server_task: None,
        }
    }

    /// A new host with `config`, served by this deployer on `addr` (port 0
    /// picks a free one) until the deployer is dropped.
    pub async fn serve(config: HostConfig, addr: SocketAddr) -> Result<Self> {
        let host = Host::new(config).map_err(|e| DeployError::InvalidConfig {
            reason: format!("cannot start the host: {e}"),
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| DeployError::io(format!("cannot listen on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| DeployError::io("cannot read the listening address", e))?;
        let base =
            Url::parse(&format!("http://{local}/")).map_err(|e| DeployError::InvalidConfig {
                reason: format!("{local} makes no URL: {e}"),
            })?;
        let router = host.router();
        let task = tokio::spawn(async move {
            // The listener only fails when the runtime shuts down.
            let _ = bmm_runtime::serve(listener, router, std::future::pending()).await;
        });
        let mut deployer = Self::new(host, base);
        deployer.server_task = Some(task);
        Ok(deployer)
    }

    /// The host the servers are mounted on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Where the host is served; MCP endpoints are `{base}/mcp/{slug}`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, slug: &str) -> Result<Url> {
        self.base
            .join(&format!("mcp/{slug}"))
            .map_err(|e| DeployError::InvalidConfig {
                reason: format!("base URL {} cannot hold /mcp/{slug}: {e}", self.base),
            })
    }

    fn servers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for InProcessDeployer {
    fn drop(&mut self) {
        if let Some(task) = &self.server_task {
            task.abort();
        }
    }
}

#[async_trait]
impl Deployer for InProcessDeployer {
    fn target(&self) -> Target {
        Target::InProcess
    }

    async fn deploy(&self, bundle: Bundle) -> Result<Deployment> {
        let slug = bundle.slug().to_owned();
        let version = bundle.version().to_owned();
        let url = self.url(&slug)?;
        bundle.progress(
            BuildStep::Deploy,
            format!("mounting {slug} v{version} at {url}"),
        );
        let log = self
            .servers()
            .get(&slug)
            .map(|e| e.log.clone())
            .unwrap_or_else(|| Arc::new(LogRing::new()));
        let deployed = match self.host.deploy(&bundle.spec, bundle.secrets.clone()) {
            Ok(deployed) => deployed,
            Err(error) => {
                let reason = error.to_string();
                log.push(
                    LogSource::Deployer,
                    format!("rejected v{version}: {reason}"),
                );
                bundle
                    .options
                    .report(BuildStep::HealthCheck, Level::Error, reason.clone());
                return Err(DeployError::HealthCheckFailed {
                    server: slug,
                    version,
                    reason,
                });
            }
        };
        log.push(
            LogSource::Deployer,
            match deployed {
                Deployed::Added => format!("serving v{version} at {url}"),
                Deployed::Replaced { previous } => {
                    format!("serving v{version} at {url} (replaced v{previous})")
                }
            },
        );
        bundle.progress(BuildStep::HealthCheck, "healthy");
        let deployment = Deployment {
            id: format!("inprocess-{slug}-{version}"),
            server: slug.clone(),
            version,
            target: Target::InProcess,
            url,
            status: Status::Running,
        };
        self.servers().insert(
            slug,
            Entry {
                deployment: deployment.clone(),
                log,
            },
        );
        Ok(deployment)
    }

    async fn status(&self, server: &str) -> Result<Deployment> {
        self.servers()
            .get(server)
            .map(|e| e.deployment.clone())
            .ok_or_else(|| unknown(server))
    }

    async fn logs(&self, server: &str, follow: bool) -> Result<LogStream> {
        let servers = self.servers();
        let entry = servers.get(server).ok_or_else(|| unknown(server))?;
        Ok(entry.log.stream(follow))
    }

    async fn stop(&self, server: &str) -> Result<()> {
        let mut servers = self.servers();
        let entry = servers.get_mut(server).ok_or_else(|| unknown(server))?;
        self.host.remove(server);
        entry.deployment.status = Status::Stopped;
        entry.log.push(LogSource::Deployer, "stopped");
        Ok(())
    }

    async fn remove(&self, server: &str) -> Result<()> {
        let entry = self
            .servers()
            .remove(server)
            .ok_or_else(|| unknown(server))?;
        self.host.remove(server);
        entry.log.push(LogSource::Deployer, "removed");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Deployment>> {
        let mut out: Vec<Deployment> = self
            .servers()
            .values()
            .map(|e| e.deployment.clone())
            .collect();
        out.sort_by(|a, b| a.server.cmp(&b.server));
        Ok(out)
    }

    /// Adopts servers mounted on the host by someone else, and marks records
    /// whose server is no longer mounted as failed.
    async fn reconcile(&self) -> Result<Reconciled> {
        let mounted = self.host.list();
        let mut servers = self.servers();
        let mut report = Reconciled::default();
        for (slug, version) in &mounted {
            if servers.contains_key(slug) {
                continue;
            }
            let deployment = Deployment {
                id: format!("inprocess-{slug}-{version}"),
                server: slug.clone(),
                version: version.clone(),
                target: Target::InProcess,
                url: self.url(slug)?,
                status: Status::Running,
            };
            let log = Arc::new(LogRing::new());
            log.push(LogSource::Deployer, format!("adopted v{version}"));
            servers.insert(slug.clone(), Entry { deployment, log });
            report.adopted.push(slug.clone());
        }
        for (slug, entry) in servers.iter_mut() {
            let running = entry.deployment.status == Status::Running;
            if running && !mounted.iter().any(|(s, _)| s == slug) {
                entry.deployment.status = Status::Failed {
                    reason: "no longer mounted on the host".into(),
                };
                report.cleaned.push(entry.deployment.id.clone());
            }
        }
        Ok(report)
    }
}

fn unknown(server: &str) -> DeployError {
    DeployError::UnknownServer {
        server: server.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use bmm_core::{CheckOptions, check};
    use bmm_runtime::{SecretValue, Secrets};
    use futures_util::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::{DeployEvent, DeployOptions, check_health};

    fn spec(version: &str, secret_required: bool) -> Bundle {
        let document = json!({
            "bmm": "1", "name": "Adder", "slug": "adder", "version": version,
            "description": "Adds numbers.", "egress": ["api.example.com"],
            "secrets": [{"name": "TOKEN", "description": "A token.", "required": secret_required}],
            "tools": [{
                "name": "add", "description": "Adds two numbers.",
                "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
                "implementation": {"kind": "script", "source": "export default (a) => ({ sum: a.a + a.b })"}
            }, {
                "name": "whoami", "description": "Asks the API who the token belongs to.",
                "input_schema": {"type": "object"},
                "implementation": {"kind": "http", "method": "GET", "url": "https://api.example.com/me",
                    "headers": {"Authorization": "Bearer {{secrets.TOKEN}}"}}
            }]
        });
        Bundle::from_spec(check(&document, &CheckOptions::default()).unwrap())
    }

    async fn deployer() -> InProcessDeployer {
        InProcessDeployer::serve(HostConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn deploys_serves_and_reports_progress() {
        let deployer = deployer().await;
        let events: Arc<StdMutex<Vec<DeployEvent>>> = Arc::default();
        let sink = events.clone();
        let options = DeployOptions {
            progress: Some(Arc::new(move |e| sink.lock().unwrap().push(e))),
            ..DeployOptions::default()
        };
        let bundle = spec("1.0.0", false).with_options(options);
        let deployment = deployer.deploy(bundle).await.unwrap();
        assert_eq!(deployment.server, "adder");
        assert_eq!(deployment.version, "1.0.0");
        assert_eq!(deployment.status, Status::Running);
        assert_eq!(deployment.url.path(), "/mcp/adder");
        let tools = check_health(&deployment.url, Duration::from_secs(5), || None)
            .await
            .unwrap();
        assert_eq!(tools, 2);
        let steps: Vec<BuildStep> = events.lock().unwrap().iter().map(|e| e.step).collect();
        assert_eq!(steps, [BuildStep::Deploy, BuildStep::HealthCheck]);
        assert_eq!(deployer.list().await.unwrap(), vec![deployment]);
    }

    #[tokio::test]
    async fn a_failed_redeploy_keeps_the_old_version() {
        let deployer = deployer().await;
        deployer.deploy(spec("1.0.0", false)).await.unwrap();
        let error = deployer.deploy(spec("2.0.0", true)).await.unwrap_err();
        match &error {
            DeployError::HealthCheckFailed {
                server,
                version,
                reason,
            } => {
                assert_eq!((server.as_str(), version.as_str()), ("adder", "2.0.0"));
                assert!(reason.contains("TOKEN"), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(
            deployer.host().list(),
            [("adder".to_owned(), "1.0.0".to_owned())]
        );
        assert_eq!(deployer.status("adder").await.unwrap().version, "1.0.0");

        let secrets: Secrets = [("TOKEN", SecretValue::new("tok-value-123"))]
            .into_iter()
            .collect();
        let fixed = deployer
            .deploy(spec("2.0.0", true).with_secrets(secrets))
            .await
            .unwrap();
        assert_eq!(fixed.version, "2.0.0");
        let lines: Vec<String> = deployer
            .logs("adder", false)
            .await
            .unwrap()
            .map(|l| l.unwrap().text)
            .collect()
            .await;
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].starts_with("rejected v2.0.0"), "{lines:?}");
        assert!(lines[2].contains("replaced v1.0.0"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("tok-value-123")));
    }

    #[tokio::test]
    async fn stop_remove_and_unknown_servers() {
        let deployer = deployer().await;
        let deployment = deployer.deploy(spec("1.0.0", false)).await.unwrap();
        let mut follow = deployer.logs("adder", true).await.unwrap();
        assert!(
            follow
                .next()
                .await
                .unwrap()
                .unwrap()
                .text
                .starts_with("serving")
        );

        deployer.stop("adder").await.unwrap();
        assert_eq!(
            deployer.status("adder").await.unwrap().status,
            Status::Stopped
        );
        assert_eq!(follow.next().await.unwrap().unwrap().text, "stopped");
        let answer = reqwest::get(deployment.url.clone()).await.unwrap();
        assert_eq!(answer.status(), 404);

        deployer.remove("adder").await.unwrap();
        assert_eq!(follow.next().await.unwrap().unwrap().text, "removed");
        assert!(follow.next().await.is_none(), "following ends on removal");
        for error in [
            deployer.status("adder").await.unwrap_err(),
            deployer.stop("adder").await.unwrap_err(),
            deployer.remove("nope").await.unwrap_err(),
        ] {
            assert!(
                matches!(error, DeployError::UnknownServer { .. }),
                "{error}"
            );
        }
        assert!(deployer.logs("nope", false).await.is_err());
    }

    #[tokio::test]
    async fn reconcile_adopts_servers_mounted_behind_its_back() {
        let deployer = deployer().await;
        let other = spec("3.1.0", false);
        deployer.host().deploy(&other.spec, Secrets::new()).unwrap();
        let report = deployer.reconcile().await.unwrap();
        assert_eq!(report.adopted, ["adder"]);
        let status = deployer.status("adder").await.unwrap();
        assert_eq!(
            (status.version.as_str(), status.status),
            ("3.1.0", Status::Running)
        );
        deployer.host().remove("adder");
        let report = deployer.reconcile().await.unwrap();
        assert_eq!(report.cleaned.len(), 1);
        assert!(matches!(
            deployer.status("adder").await.unwrap().status,
            Status::Failed { .. }
        ));
    }
}
