//! The Coolify adapter against the local fake of Coolify's API, which holds
//! every request to Coolify's published OpenAPI document
//! (`fixtures/coolify/openapi.json`). Run with
//! `cargo test -p bmm-deploy --features coolify-fake --test coolify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bmm_core::{CheckOptions, Format, SecretValue, ValidatedSpec, check, check_text};
use bmm_deploy::coolify::fake::{
    ENVIRONMENT_NAME, ENVIRONMENT_UUID, Failure, FakeCoolify, PROJECT_UUID, SERVER_UUID,
};
use bmm_deploy::coolify::{
    ClientOptions, CoolifyConfig, CoolifyDeployer, CreateDockerImageApplication, ImageRef,
    NewEnvVar,
};
use bmm_deploy::{Bundle, DeployError, DeployOptions, Deployer, InProcessDeployer, Status, Target};
use bmm_runtime::{HostConfig, Secrets};
use futures_util::StreamExt;
use serde_json::{Value, json};

const TOKEN: &str = "7|fake-coolify-api-token-3f9a";
const OWM_KEY: &str = "owm-live-4f1c9a77e2b8d3";
const IMAGE: &str = "ghcr.io/acme/bmm-{slug}:{version}";

async fn fake() -> FakeCoolify {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/coolify/openapi.json"
    );
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let fake = FakeCoolify::start(&document, TOKEN).await.unwrap();
    assert_eq!(fake.document_paths(), 192);
    fake
}

fn config(fake: &FakeCoolify, token: &str) -> CoolifyConfig {
    let mut config = CoolifyConfig::new(
        fake.url().clone(),
        SecretValue::new(token),
        PROJECT_UUID,
        SERVER_UUID,
        IMAGE,
    );
    config.environment_name = ENVIRONMENT_NAME.into();
    config.poll_interval = Duration::from_millis(5);
    // The fake's domains do not resolve; the probe has its own test.
    config.probe = false;
    config.log_poll_interval = Duration::from_millis(10);
    config.client = ClientOptions {
        request_timeout: Duration::from_secs(5),
        get_attempts: 3,
        retry_backoff: Duration::from_millis(5),
    };
    config
}

fn deployer(fake: &FakeCoolify) -> CoolifyDeployer {
    CoolifyDeployer::new(config(fake, TOKEN)).unwrap()
}

fn example(file: &str) -> ValidatedSpec {
    let path = format!("{}/../examples/specs/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let format = Format::from_path(std::path::Path::new(&path)).unwrap();
    check_text(&text, format, &CheckOptions::default()).unwrap()
}

/// The example spec with another version.
fn with_version(spec: &ValidatedSpec, version: &str) -> ValidatedSpec {
    let mut value = serde_json::to_value(spec.spec()).unwrap();
    value["version"] = json!(version);
    check(&value, &CheckOptions::default()).unwrap()
}

fn weather_secrets() -> Secrets {
    [("OPENWEATHER_API_KEY", SecretValue::new(OWM_KEY))]
        .into_iter()
        .collect()
}

fn assert_no_violation(fake: &FakeCoolify) {
    let violations = fake.violations();
    assert!(
        violations.is_empty(),
        "requests the document does not allow:\n{}",
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn operations(fake: &FakeCoolify) -> Vec<String> {
    fake.received()
        .into_iter()
        .map(|r| {
            r.operation
                .unwrap_or_else(|| format!("{} {}", r.method, r.path))
        })
        .collect()
}

#[tokio::test]
async fn lifecycle_deploy_status_logs_list_stop_remove() {
    let fake = fake().await;
    let deployer: Arc<dyn Deployer> = Arc::new(deployer(&fake));
    assert_eq!(deployer.target(), Target::Coolify);

    let deployment = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap();
    assert_eq!(deployment.server, "unit-converter");
    assert_eq!(deployment.version, "1.0.0");
    assert_eq!(deployment.target, Target::Coolify);
    assert_eq!(deployment.status, Status::Running);
    assert_eq!(deployment.url.path(), "/mcp/unit-converter");

    let apps = fake.apps();
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    assert_eq!(deployment.id, app.uuid);
    assert_eq!(
        deployment.url.host_str(),
        Some(&*format!("{}.127.0.0.1.sslip.io", app.uuid))
    );
    assert_eq!(app.name, "bmm-unit-converter");
    assert!(app.description.starts_with("bmm:unit-converter@1.0.0"));
    assert_eq!(app.tags, ["bmm", "bmm-unit-converter"]);
    assert_eq!(
        (app.image_name.as_str(), app.image_tag.as_str()),
        ("ghcr.io/acme/bmm-unit-converter", "1.0.0")
    );
    assert_eq!(app.ports_exposes, "8080");
    assert_eq!(app.health_check_path, "/healthz");
    assert_eq!(
        app.serving.as_deref(),
        Some("ghcr.io/acme/bmm-unit-converter:1.0.0")
    );
    assert_eq!(app.deployments, 1);
    let mounted: Value = serde_json::from_str(&app.files["/server.json"]).unwrap();
    assert_eq!(mounted["slug"], "unit-converter");
    assert!(app.envs.is_empty());

    let status = deployer.status("unit-converter").await.unwrap();
    assert_eq!(status, deployment);

    let lines: Vec<String> = deployer
        .logs("unit-converter", false)
        .await
        .unwrap()
        .map(|line| line.unwrap().text)
        .collect()
        .await;
    assert!(
        lines.iter().any(|l| l == "bmm: serving on 0.0.0.0:8080"),
        "{lines:?}"
    );

    let listed = deployer.list().await.unwrap();
    assert_eq!(listed, vec![deployment.clone()]);

    deployer.stop("unit-converter").await.unwrap();
    assert_eq!(
        deployer.status("unit-converter").await.unwrap().status,
        Status::Stopped
    );

    deployer.remove("unit-converter").await.unwrap();
    assert!(fake.apps().is_empty());
    assert!(deployer.list().await.unwrap().is_empty());
    assert!(matches!(
        deployer.status("unit-converter").await,
        Err(DeployError::UnknownServer { server }) if server == "unit-converter"
    ));
    assert!(matches!(
        deployer.remove("unit-converter").await,
        Err(DeployError::UnknownServer { .. })
    ));

    let ops = operations(&fake);
    for expected in [
        "list-applications",
        "create-dockerimage-application",
        "list-storages-by-application-uuid",
        "create-storage-by-application-uuid",
        "deploy-by-tag-or-uuid",
        "get-deployment-by-uuid",
        "get-application-by-uuid",
        "list-envs-by-application-uuid",
        "get-application-logs-by-uuid",
        "stop-application-by-uuid",
        "delete-application-by-uuid",
    ] {
        assert!(
            ops.iter().any(|op| op == expected),
            "{expected} not called: {ops:?}"
        );
    }
    assert_no_violation(&fake);
}

#[tokio::test]
async fn secrets_land_as_env_vars_and_nowhere_else() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    let bundle = Bundle::from_spec(example("weather.yaml")).with_secrets(weather_secrets());
    assert!(!format!("{bundle:?}").contains(OWM_KEY));

    let deployment = deployer.deploy(bundle.clone()).await.unwrap();
    assert!(!format!("{deployment:?}").contains(OWM_KEY));
    assert!(!format!("{deployer:?}").contains(TOKEN));

    let app = &fake.apps()[0];
    let env = &app.envs["BMM_SECRET_OPENWEATHER_API_KEY"];
    assert_eq!(env.expose_secret(), OWM_KEY);
    assert_eq!(app.envs.len(), 1);
    assert!(!format!("{app:?}").contains(OWM_KEY));
    // The spec file names the secret and never holds its value.
    assert!(app.files["/server.json"].contains("OPENWEATHER_API_KEY"));
    assert!(!app.files["/server.json"].contains(OWM_KEY));
    let logs: Vec<String> = deployer
        .logs("weather", false)
        .await
        .unwrap()
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert!(
        logs.iter()
            .any(|l| l == "bmm: secrets from the environment: OPENWEATHER_API_KEY"),
        "{logs:?}"
    );

    // A careless answer that echoes the value does not carry it into the error.
    fake.inject(
        Failure::new("update-envs-by-application-uuid", 422).body(json!({
            "message": format!("Validation failed for {OWM_KEY}."),
            "errors": {"data.0.value": [format!("The value {OWM_KEY} is not allowed.")]},
        })),
    );
    let error = deployer.deploy(bundle.clone()).await.unwrap_err();
    assert!(
        matches!(error, DeployError::Api { status: 422, .. }),
        "{error:?}"
    );
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(OWM_KEY), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("data.0.value"), "{shown}");
    }

    // A missing required secret is refused before anything is sent.
    let before = fake.received().len();
    let error = deployer
        .deploy(Bundle::from_spec(example("weather.yaml")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::InvalidBundle { reason } if reason.contains("OPENWEATHER_API_KEY")),
        "{error:?}"
    );
    assert_eq!(fake.received().len(), before);
    assert_no_violation(&fake);
}

#[tokio::test]
async fn a_new_version_is_deployed_in_place_and_stale_secrets_go() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    let v1 = example("weather.yaml");
    let first = deployer
        .deploy(Bundle::from_spec(v1.clone()).with_secrets(weather_secrets()))
        .await
        .unwrap();
    assert_eq!(first.version, "1.2.0");

    // Variables set by hand or by an older version: the stale bmm one goes, the other stays.
    let client = deployer.client();
    client
        .upsert_envs(
            &first.id,
            &[
                NewEnvVar::new("BMM_SECRET_OLD_KEY", SecretValue::new("old-value-1")),
                NewEnvVar::new("LOG_LEVEL", SecretValue::new("debug")),
            ],
        )
        .await
        .unwrap();

    let second = deployer
        .deploy(Bundle::from_spec(with_version(&v1, "1.3.0")).with_secrets(weather_secrets()))
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.version, "1.3.0");
    assert_eq!(second.status, Status::Running);

    let apps = fake.apps();
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    assert_eq!(app.deployments, 2);
    assert_eq!(app.image_tag, "1.3.0");
    assert_eq!(
        app.serving.as_deref(),
        Some("ghcr.io/acme/bmm-weather:1.3.0")
    );
    assert!(app.description.starts_with("bmm:weather@1.3.0"));
    assert_eq!(app.files.len(), 1);
    let mounted: Value = serde_json::from_str(&app.files["/server.json"]).unwrap();
    assert_eq!(mounted["version"], "1.3.0");
    let keys: Vec<&String> = app.envs.keys().collect();
    assert_eq!(keys, ["BMM_SECRET_OPENWEATHER_API_KEY", "LOG_LEVEL"]);

    assert_eq!(deployer.status("weather").await.unwrap().version, "1.3.0");
    assert_eq!(deployer.list().await.unwrap().len(), 1);
    let ops = operations(&fake);
    assert!(ops.iter().any(|op| op == "update-application-by-uuid"));
    assert!(
        ops.iter()
            .any(|op| op == "update-storage-by-application-uuid")
    );
    assert!(ops.iter().any(|op| op == "delete-env-by-application-uuid"));
    assert_no_violation(&fake);
}

#[tokio::test]
async fn a_failed_redeploy_leaves_the_previous_version() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    let v1 = example("unit-converter.json");
    deployer
        .deploy(Bundle::from_spec(v1.clone()))
        .await
        .unwrap();

    fake.fail_deployments(true);
    let error = deployer
        .deploy(Bundle::from_spec(with_version(&v1, "2.0.0")))
        .await
        .unwrap_err();
    match &error {
        DeployError::HealthCheckFailed {
            server,
            version,
            reason,
        } => {
            assert_eq!(
                (server.as_str(), version.as_str()),
                ("unit-converter", "2.0.0")
            );
            assert!(reason.contains("failed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    let app = &fake.apps()[0];
    assert_eq!(
        app.serving.as_deref(),
        Some("ghcr.io/acme/bmm-unit-converter:1.0.0")
    );
    assert_eq!(app.image_tag, "1.0.0", "the previous image is put back");
    assert!(app.description.starts_with("bmm:unit-converter@1.0.0"));
    let mounted: Value = serde_json::from_str(&app.files["/server.json"]).unwrap();
    assert_eq!(mounted["version"], "1.0.0");
    let status = deployer.status("unit-converter").await.unwrap();
    assert_eq!(
        (status.version.as_str(), &status.status),
        ("1.0.0", &Status::Running)
    );

    // A first deploy that fails has nothing to fall back to.
    let fresh = with_version(&example("weather.yaml"), "1.2.0");
    let error = deployer
        .deploy(Bundle::from_spec(fresh).with_secrets(weather_secrets()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeployError::HealthCheckFailed { .. }),
        "{error:?}"
    );
    assert_eq!(
        deployer.status("weather").await.unwrap().status,
        Status::Stopped
    );
    assert_no_violation(&fake);
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_says_to_check_it() {
    let fake = fake().await;
    let wrong = "9|not-the-right-token-77";
    let deployer = CoolifyDeployer::new(config(&fake, wrong)).unwrap();
    let error = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap_err();
    let DeployError::Unauthorized { message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("COOLIFY_TOKEN"), "{message}");
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{deployer:?}"),
    ] {
        assert!(!shown.contains(wrong), "{shown}");
    }
    assert!(fake.apps().is_empty());

    // A token revoked midway: Coolify's 401 on one call.
    let deployer = self::deployer(&fake);
    fake.inject(Failure::new("create-dockerimage-application", 401));
    let error = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeployError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_no_violation(&fake);
}

#[tokio::test]
async fn a_validation_error_carries_coolify_field_messages() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    fake.inject(Failure::new("create-dockerimage-application", 422));
    let error = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap_err();
    let DeployError::Api { status, message } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*status, 422);
    assert!(
        message.contains(
            "docker_registry_image_name: The docker registry image name field is required."
        ),
        "{message}"
    );
    assert!(fake.apps().is_empty());
    assert_no_violation(&fake);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let fake = fake().await;
    let deployer = deployer(&fake);

    // A read that fails twice succeeds on the third attempt.
    fake.inject(Failure::new("list-applications", 500).times(2));
    deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap();
    let ops = operations(&fake);
    assert_eq!(ops[..3], ["list-applications"; 3], "{ops:?}");
    assert_eq!(ops[3], "create-dockerimage-application", "{ops:?}");

    // Three failures exhaust the attempts.
    fake.inject(Failure::new("list-applications", 503).times(3));
    let error = deployer.status("unit-converter").await.unwrap_err();
    assert!(
        matches!(error, DeployError::Api { status: 503, .. }),
        "{error:?}"
    );

    // A write is sent once, whatever the answer.
    fake.inject(Failure::new("stop-application-by-uuid", 500));
    let before = operations(&fake).len();
    let error = deployer.stop("unit-converter").await.unwrap_err();
    let DeployError::Api {
        status: 500,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert!(message.contains("Server Error"), "{message}");
    let stops = operations(&fake)[before..]
        .iter()
        .filter(|op| *op == "stop-application-by-uuid")
        .count();
    assert_eq!(stops, 1);
    assert_no_violation(&fake);
}

#[tokio::test]
async fn timeouts_and_unreachable_instances_are_typed() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut config = CoolifyConfig::new(
        format!("http://{addr}").parse().unwrap(),
        SecretValue::new(TOKEN),
        PROJECT_UUID,
        SERVER_UUID,
        IMAGE,
    );
    config.client = ClientOptions {
        request_timeout: Duration::from_millis(200),
        get_attempts: 2,
        retry_backoff: Duration::from_millis(5),
    };
    let started = std::time::Instant::now();
    let error = CoolifyDeployer::new(config.clone())
        .unwrap()
        .status("x")
        .await
        .unwrap_err();
    let DeployError::Api { status: 0, message } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("did not answer"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "both attempts wait their timeout"
    );

    // Nothing listens on the port any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.url = format!("http://{}", closed.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(closed);
    let error = CoolifyDeployer::new(config)
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeployError::DaemonUnavailable { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(TOKEN));
}

#[tokio::test]
async fn an_unknown_project_is_a_configuration_error() {
    let fake = fake().await;
    let mut config = config(&fake, TOKEN);
    config.project_uuid = "no-such-project".into();
    let error = CoolifyDeployer::new(config)
        .unwrap()
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap_err();
    let DeployError::InvalidConfig { reason } = &error else {
        panic!("{error:?}")
    };
    assert!(
        reason.contains("Project not found") && reason.contains("COOLIFY_PROJECT_UUID"),
        "{reason}"
    );

    // With the environment's UUID as well, the request is just as valid.
    let mut config = self::config(&fake, TOKEN);
    config.environment_uuid = Some(ENVIRONMENT_UUID.into());
    CoolifyDeployer::new(config)
        .unwrap()
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap();
    assert_no_violation(&fake);
}

#[tokio::test]
async fn followed_logs_bring_new_lines_and_end_with_the_application() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    let deployment = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap();
    let mut stream = deployer.logs("unit-converter", true).await.unwrap();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("bmm: serving")) {
        seen.push(stream.next().await.unwrap().unwrap().text);
    }
    fake.push_log(&deployment.id, "tools/call convert_length");
    fake.push_log(&deployment.id, "tools/call convert_weight");
    assert_eq!(
        next(&mut stream).await.unwrap().unwrap().text,
        "tools/call convert_length"
    );
    assert_eq!(
        next(&mut stream).await.unwrap().unwrap().text,
        "tools/call convert_weight"
    );
    deployer.remove("unit-converter").await.unwrap();
    assert!(
        next(&mut stream).await.is_none(),
        "the log ends with the application"
    );
    assert_no_violation(&fake);
}

#[tokio::test]
async fn reconcile_adopts_running_servers_and_cleans_strays() {
    let fake = fake().await;
    let deployer = deployer(&fake);
    let deployment = deployer
        .deploy(Bundle::from_spec(example("unit-converter.json")))
        .await
        .unwrap();

    let image = ImageRef::parse("ghcr.io/acme/bmm:0.1.0").unwrap();
    let create = |name: &str, description: &str, tags: &[&str]| {
        let mut request =
            CreateDockerImageApplication::new(PROJECT_UUID, SERVER_UUID, ENVIRONMENT_NAME, &image);
        request.name = name.into();
        request.description = description.into();
        request.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        request.ports_exposes = "8080".into();
        request
    };
    let client = deployer.client();
    // Half-made by bmm (no marker), a duplicate of a server, and someone else's application.
    let stray = client
        .create_dockerimage_application(&create("bmm-stray", "", &["bmm"]))
        .await
        .unwrap();
    let duplicate = client
        .create_dockerimage_application(&create(
            "bmm-unit-converter",
            "bmm:unit-converter@0.9.0 old copy",
            &["bmm", "bmm-unit-converter"],
        ))
        .await
        .unwrap();
    let foreign = client
        .create_dockerimage_application(&create("website", "", &["web"]))
        .await
        .unwrap();

    let reconciled = deployer.reconcile().await.unwrap();
    assert_eq!(reconciled.adopted, ["unit-converter"]);
    let mut cleaned = reconciled.cleaned.clone();
    cleaned.sort();
    let mut expected = vec![stray, duplicate];
    expected.sort();
    assert_eq!(cleaned, expected);
    let left: Vec<String> = fake.apps().into_iter().map(|a| a.uuid).collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&deployment.id) && left.contains(&foreign));
    assert_eq!(deployer.list().await.unwrap().len(), 1);
    assert_no_violation(&fake);
}

/// The next line of a followed log, within five seconds.
async fn next(
    stream: &mut bmm_deploy::LogStream,
) -> Option<bmm_deploy::Result<bmm_deploy::LogLine>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a followed log line or its end")
}

/// The fake itself: a request the document does not allow is refused and
/// recorded, so the other tests' "no violation" can fail.
#[tokio::test]
async fn the_fake_refuses_what_the_document_does_not_allow() {
    let fake = fake().await;
    let http = reqwest::Client::new();
    let api = fake.url().join("api/v1/").unwrap();
    let send = |method: reqwest::Method, path: &str, body: Option<Value>, auth: bool| {
        let mut request = http.request(method, api.join(path).unwrap());
        if auth {
            request = request.bearer_auth(TOKEN);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let valid = json!({
        "project_uuid": PROJECT_UUID, "server_uuid": SERVER_UUID,
        "environment_name": ENVIRONMENT_NAME, "environment_uuid": "",
        "docker_registry_image_name": "ghcr.io/acme/bmm",
    });
    assert_eq!(
        send(
            reqwest::Method::POST,
            "applications/dockerimage",
            Some(valid.clone()),
            true
        )
        .await,
        201
    );
    assert_no_violation(&fake);

    let mut missing = valid.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("docker_registry_image_name");
    let mut wrong_type = valid.clone();
    wrong_type["ports_exposes"] = json!(8080);
    let mut unknown_field = valid.clone();
    unknown_field["image"] = json!("ghcr.io/acme/bmm:1");
    let cases: Vec<(reqwest::Method, &str, Option<Value>, bool, &str)> = vec![
        (
            reqwest::Method::POST,
            "applications/dockerimage",
            Some(missing),
            true,
            "docker_registry_image_name",
        ),
        (
            reqwest::Method::POST,
            "applications/dockerimage",
            Some(wrong_type),
            true,
            "/ports_exposes",
        ),
        (
            reqwest::Method::POST,
            "applications/dockerimage",
            Some(unknown_field),
            true,
            "image",
        ),
        (
            reqwest::Method::PUT,
            "applications/abc",
            None,
            true,
            "not an operation",
        ),
        (
            reqwest::Method::GET,
            "applications/abc/containers",
            None,
            true,
            "no path",
        ),
        (reqwest::Method::GET, "applications", None, false, "bearer"),
        (
            reqwest::Method::GET,
            "applications/abc/logs?lines=all",
            None,
            true,
            "integer",
        ),
        (
            reqwest::Method::GET,
            "applications?label=bmm",
            None,
            true,
            "`label` is not declared",
        ),
        (
            reqwest::Method::POST,
            "applications/abc/stop",
            Some(json!({"force": true})),
            true,
            "takes no request body",
        ),
    ];
    for (i, (method, path, body, auth, problem)) in cases.into_iter().enumerate() {
        assert_eq!(
            send(method.clone(), path, body, auth).await,
            400,
            "{method} {path}"
        );
        let violations = fake.violations();
        assert!(
            violations.iter().any(|v| v.problem.contains(problem)),
            "case {i} {method} {path}: expected a violation about {problem:?}, got {violations:#?}"
        );
    }
    assert!(fake.violations().len() >= 9);
    // The body's values do not appear in the recorded problems.
    assert!(
        fake.violations()
            .iter()
            .all(|v| !v.problem.contains(PROJECT_UUID))
    );
}

#[tokio::test]
async fn the_server_is_checked_from_here_and_a_failed_check_rolls_back() {
    let fake = fake().await;
    // A real runtime on loopback stands in for the container Coolify starts.
    let runtime = InProcessDeployer::serve(HostConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let v1 = example("unit-converter.json");
    runtime.deploy(Bundle::from_spec(v1.clone())).await.unwrap();
    let mut config = config(&fake, TOKEN);
    config.probe = true;
    config.domain = Some(runtime.base().as_str().trim_end_matches('/').to_owned());
    let deployer = CoolifyDeployer::new(config).unwrap();
    let quick = || DeployOptions {
        health_timeout: Duration::from_millis(600),
        ..DeployOptions::default()
    };

    let deployment = deployer
        .deploy(Bundle::from_spec(v1.clone()).with_options(quick()))
        .await
        .unwrap();
    assert_eq!(
        deployment.url.as_str(),
        format!("{}mcp/unit-converter", runtime.base())
    );

    // Coolify says the new container is healthy, but the server does not answer MCP.
    runtime.remove("unit-converter").await.unwrap();
    let error = deployer
        .deploy(Bundle::from_spec(with_version(&v1, "2.0.0")).with_options(quick()))
        .await
        .unwrap_err();
    let DeployError::HealthCheckFailed { reason, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("from here"), "{reason}");
    assert!(
        reason.contains("the previous version is being redeployed"),
        "{reason}"
    );
    let app = &fake.apps()[0];
    assert_eq!(app.image_tag, "1.0.0");
    assert_eq!(
        app.deployments, 3,
        "first deploy, the failed one, the rollback"
    );
    assert_eq!(
        operations(&fake)
            .iter()
            .filter(|op| *op == "deploy-by-tag-or-uuid")
            .count(),
        3
    );
    assert_no_violation(&fake);
}
