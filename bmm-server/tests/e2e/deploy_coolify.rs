//! `bmm deploy --target coolify`, `bmm ps` and `bmm rm` against the local
//! fake of Coolify's API, which checks every request against Coolify's
//! published OpenAPI document.

use std::process::Command;

use bmm_deploy::coolify::fake::{ENVIRONMENT_NAME, FakeCoolify, PROJECT_UUID, SERVER_UUID};
use serde_json::Value;

use crate::deploy_support::bmm;
use crate::harness::workspace;

const TOKEN: &str = "9|cli-fake-coolify-token-77e1";
const OWM_KEY: &str = "owm-cli-secret-5b2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deploys_lists_and_removes_on_coolify() {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("fixtures/coolify/openapi.json")).unwrap(),
    )
    .unwrap();
    let fake = FakeCoolify::start(&document, TOKEN).await.unwrap();
    let url = fake.url().to_string();
    let spec = workspace().join("examples/specs/weather.yaml");
    let run = move |args: Vec<String>, token: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let output = Command::new(bmm())
                .args(&args)
                .env("COOLIFY_URL", &url)
                .env("COOLIFY_TOKEN", token)
                .env("COOLIFY_PROJECT_UUID", PROJECT_UUID)
                .env("COOLIFY_SERVER_UUID", SERVER_UUID)
                .env("COOLIFY_ENVIRONMENT_NAME", ENVIRONMENT_NAME)
                .env("COOLIFY_IMAGE", "ghcr.io/acme/bmm:0.1.0")
                // The fake's domains do not resolve; the adapter's own tests cover the probe.
                .env("COOLIFY_PROBE", "0")
                .env("BMM_SECRET_OPENWEATHER_API_KEY", OWM_KEY)
                .output()
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let spec = spec.to_str().unwrap();
    let (ok, out, err) = run(args(&["deploy", spec, "--target", "coolify"]), TOKEN)
        .await
        .unwrap();
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("deployed weather v1.2.0 to coolify"), "{out}");
    assert!(!out.contains(OWM_KEY) && !err.contains(OWM_KEY));
    let apps = fake.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "bmm-weather");

    let (ok, out, err) = run(args(&["ps", "--target", "coolify"]), TOKEN)
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("weather")), "{out}");

    // A wrong token is refused with a message that names the fix, not the token.
    let (ok, _, err) = run(args(&["ps", "--target", "coolify"]), "wrong-token")
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("COOLIFY_TOKEN"), "{err}");
    assert!(!err.contains("wrong-token"), "{err}");

    let (ok, out, err) = run(args(&["rm", "weather", "--target", "coolify"]), TOKEN)
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("removed weather"), "{out}");
    assert!(fake.apps().is_empty());

    let violations = fake.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
