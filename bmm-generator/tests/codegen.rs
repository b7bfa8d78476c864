//! Codegen: golden files for everything rendered, escaping checked by real
//! parsers and a real shell, template overrides, and an ejected project
//! built with cargo and driven over MCP.
//!
//! Re-bless the golden files with `BMM_BLESS=1 cargo nextest run -p bmm-generator --test codegen`.

// A panic in a test is a failed test, not a crash on input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bmm_core::{CheckOptions, Format, ValidatedSpec, check_text};
use bmm_generator::codegen::{
    Bundle, BundleOptions, CodegenError, EjectOptions, RenderedFile, Renderer, SnippetInput,
};
use serde_json::{Value, json};

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Whether golden files should be rewritten instead of compared (`BMM_BLESS=1`).
fn bless() -> bool {
    std::env::var_os("BMM_BLESS").is_some_and(|v| v != "0")
}

fn spec(file: &str) -> ValidatedSpec {
    let path = workspace().join("examples/specs").join(file);
    let text = fs::read_to_string(&path).unwrap();
    check_text(
        &text,
        Format::from_path(&path).unwrap(),
        &CheckOptions::default(),
    )
    .unwrap()
}

fn weather() -> ValidatedSpec {
    spec("weather.yaml")
}

fn units() -> ValidatedSpec {
    spec("unit-converter.json")
}

fn renderer() -> Renderer {
    Renderer::new().unwrap()
}

/// A name meant to break every format that is not escaped properly.
const NASTY_NAME: &str = "My \"quoted\" server's $(touch pwned) `x` & <b>|[a](b)";

// ---------------------------------------------------------------------------
// Golden files

/// Compares `files` with the golden directory `tests/golden/{dir}`, byte for
/// byte and file for file (a golden file no longer rendered fails too), or
/// rewrites the directory when blessing.
fn check_golden(dir: &str, files: &[(String, String)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(dir);
    if bless() {
        let _ = fs::remove_dir_all(&root);
        for (path, contents) in files {
            let target = root.join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(target, contents).unwrap();
        }
        return;
    }
    let mut problems = Vec::new();
    for (path, contents) in files {
        let golden = fs::read_to_string(root.join(path)).unwrap_or_default();
        if &golden != contents {
            problems.push(format!(
                "{dir}/{path} differs\n--- golden\n{golden}\n--- actual\n{contents}"
            ));
        }
    }
    let rendered: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for on_disk in list_files(&root, &root) {
        if !rendered.contains(on_disk.as_str()) {
            problems.push(format!("{dir}/{on_disk} is golden but no longer rendered"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nreview the diff and re-bless with BMM_BLESS=1 cargo nextest run -p bmm-generator --test codegen",
        problems.join("\n\n")
    );
}

fn list_files(root: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(list_files(root, &path));
        } else {
            let relative = path.strip_prefix(root).unwrap();
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    out
}

fn bundle_files(bundle: &Bundle) -> Vec<(String, String)> {
    bundle
        .files
        .iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect()
}

fn snippet_files(input: &SnippetInput) -> Vec<(String, String)> {
    let s = renderer().snippets(input).unwrap();
    let line = |text: &str| format!("{text}\n");
    vec![
        (
            "claude_desktop_config.json".into(),
            s.claude_desktop.clone(),
        ),
        ("claude-code.sh".into(), line(&s.claude_code)),
        ("cursor-mcp.json".into(), s.cursor.clone()),
        ("cursor-deeplink.txt".into(), line(&s.cursor_deeplink)),
        ("vscode-mcp.json".into(), s.vscode.clone()),
        ("vscode-cli.sh".into(), line(&s.vscode_cli)),
        (
            "vscode-install-link.txt".into(),
            line(&s.vscode_install_link),
        ),
        ("chatgpt.md".into(), s.chatgpt.clone()),
        ("snippets.md".into(), s.to_markdown().to_owned()),
    ]
}

fn snippet_cases() -> Vec<(&'static str, SnippetInput)> {
    vec![
        (
            "oauth-https",
            SnippetInput::new("weather", "https://weather.example.com/mcp")
                .oauth(true)
                .description("Current weather and forecasts."),
        ),
        (
            "nasty-name-plain-http",
            SnippetInput::new(NASTY_NAME, "http://10.0.0.7:8080/mcp?team=a&b=c d"),
        ),
        (
            "localhost",
            SnippetInput::new("units", "http://localhost:8080/mcp"),
        ),
    ]
}

#[test]
fn bundles_match_their_golden_files() {
    let with_secrets = renderer()
        .bundle(
            &weather(),
            &BundleOptions {
                public_url: Some("https://weather.example.com/mcp".into()),
                ..BundleOptions::default()
            },
        )
        .unwrap();
    check_golden("bundle/weather", &bundle_files(&with_secrets));
    let without = renderer()
        .bundle(&units(), &BundleOptions::default())
        .unwrap();
    check_golden("bundle/unit-converter", &bundle_files(&without));
}

#[test]
fn snippets_match_their_golden_files() {
    for (name, input) in snippet_cases() {
        check_golden(&format!("snippets/{name}"), &snippet_files(&input));
    }
}

#[test]
fn ejected_projects_match_their_golden_files() {
    let path = renderer()
        .eject(&units(), &EjectOptions::runtime_path("/opt/bmm"))
        .unwrap();
    check_golden("eject/unit-converter", &bundle_files(&path));
    let git = renderer()
        .eject(
            &weather(),
            &EjectOptions::runtime_git(
                "https://git.example.com/bmm.git",
                "0123456789abcdef0123456789abcdef01234567",
            ),
        )
        .unwrap();
    check_golden("eject/weather-git", &bundle_files(&git));
}

#[test]
fn rendering_is_deterministic() {
    let options = BundleOptions::default();
    assert_eq!(
        renderer().bundle(&weather(), &options).unwrap(),
        renderer().bundle(&weather(), &options).unwrap()
    );
    let input = SnippetInput::new(NASTY_NAME, "https://a.example/mcp");
    assert_eq!(
        renderer().snippets(&input).unwrap(),
        renderer().snippets(&input).unwrap()
    );
}

// ---------------------------------------------------------------------------
// The bundle's contents

#[test]
fn the_compose_file_is_hardened_and_passes_secrets_by_reference() {
    let bundle = renderer()
        .bundle(&weather(), &BundleOptions::default())
        .unwrap();
    let compose: Value =
        serde_yaml_ng::from_str(&bundle.file("compose.yaml").unwrap().contents).unwrap();
    let service = &compose["services"]["weather"];
    assert_eq!(service["build"], ".");
    assert_eq!(service["read_only"], true);
    assert_eq!(service["cap_drop"], json!(["ALL"]));
    assert_eq!(service["security_opt"], json!(["no-new-privileges:true"]));
    assert_eq!(service["user"], "65532:65532");
    assert_eq!(service["ports"], json!(["8080:8080"]));
    assert_eq!(service["mem_limit"], "256m");
    assert_eq!(service["pids_limit"], 128);
    assert_eq!(
        service["environment"],
        json!({"BMM_SECRET_OPENWEATHER_API_KEY": "${OPENWEATHER_API_KEY:?set OPENWEATHER_API_KEY (see README.md)}"})
    );

    let units = renderer()
        .bundle(&units(), &BundleOptions::default())
        .unwrap();
    let compose: Value =
        serde_yaml_ng::from_str(&units.file("compose.yaml").unwrap().contents).unwrap();
    assert!(compose["services"]["unit-converter"]["environment"].is_null());
}

#[test]
fn the_dockerfile_runs_bmm_from_scratch_as_non_root() {
    let bundle = renderer()
        .bundle(&units(), &BundleOptions::default())
        .unwrap();
    let dockerfile = &bundle.file("Dockerfile").unwrap().contents;
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        instructions,
        [
            "FROM scratch",
            "COPY bmm /bmm",
            "COPY server.json /server.json",
            "USER 65532:65532",
            "EXPOSE 8080",
            r#"ENTRYPOINT ["/bmm", "run", "--spec", "/server.json", "--bind", "0.0.0.0", "--port", "8080", "--any-host"]"#,
        ]
    );
    let server: Value =
        serde_json::from_str(&bundle.file("server.json").unwrap().contents).unwrap();
    assert_eq!(server, serde_json::to_value(units().spec()).unwrap());
}

#[test]
fn the_readme_lists_tools_secrets_and_how_to_connect() {
    let spec = weather();
    let bundle = renderer()
        .bundle(
            &spec,
            &BundleOptions {
                public_url: Some("https://weather.example.com/mcp".into()),
                ..BundleOptions::default()
            },
        )
        .unwrap();
    let readme = &bundle.file("README.md").unwrap().contents;
    for tool in &spec.spec().tools {
        assert!(
            readme.contains(&format!("`{}`", tool.name)),
            "{}",
            tool.name
        );
        assert!(readme.contains(&tool.description), "{}", tool.description);
    }
    for secret in &spec.spec().secrets {
        assert!(readme.contains(&format!("`{}`", secret.name)));
        assert!(readme.contains(&secret.description));
    }
    assert!(readme.contains("https://home.openweathermap.org/api\\_keys"));
    assert!(
        readme.contains("claude mcp add --transport http weather https://weather.example.com/mcp")
    );
    assert!(readme.contains("cursor://anysphere.cursor-deeplink/mcp/install?name=weather&config="));
}

#[test]
fn spec_text_cannot_break_out_of_markdown_or_comments() {
    let mut spec = weather().into_spec();
    spec.name = "Evil\n# Heading".into();
    spec.description = "Line one\n\n```\n<script>x</script> | cell".into();
    spec.tools[0].description = "Breaks | the table\n| a | b |".into();
    spec.secrets[0].description = "Key\nINJECTED=1".into();
    let spec = spec.check(&CheckOptions::default()).unwrap();
    let bundle = renderer().bundle(&spec, &BundleOptions::default()).unwrap();
    let readme = &bundle.file("README.md").unwrap().contents;
    assert!(readme.starts_with("# Evil \\# Heading\n"), "{readme}");
    assert!(!readme.contains("<script>"));
    assert!(readme.contains("Breaks \\| the table \\| a \\| b \\|"));
    let env = &bundle.file(".env.example").unwrap().contents;
    assert!(!env.lines().any(|l| l.starts_with("INJECTED")), "{env}");
    let eject = renderer()
        .eject(&spec, &EjectOptions::runtime_path("/opt/bmm"))
        .unwrap();
    let main = &eject.file("src/main.rs").unwrap().contents;
    assert!(
        main.starts_with("//! Evil # Heading: an MCP server"),
        "{main}"
    );
    let manifest: toml::Table = eject.file("Cargo.toml").unwrap().contents.parse().unwrap();
    assert_eq!(
        manifest["package"]["description"].as_str(),
        Some(spec.spec().description.as_str())
    );
}

// ---------------------------------------------------------------------------
// Snippets: escaping checked by real parsers and a real shell

#[test]
fn json_snippets_parse_and_carry_the_name_and_url_exactly() {
    let url = "https://a.example/mcp?x=1&y=two";
    let s = renderer()
        .snippets(&SnippetInput::new(NASTY_NAME, url))
        .unwrap();
    let desktop: Value = serde_json::from_str(&s.claude_desktop).unwrap();
    assert_eq!(
        desktop["mcpServers"][NASTY_NAME]["args"],
        json!(["-y", "mcp-remote", url])
    );
    let cursor: Value = serde_json::from_str(&s.cursor).unwrap();
    assert_eq!(cursor["mcpServers"][NASTY_NAME], json!({"url": url}));
    let vscode: Value = serde_json::from_str(&s.vscode).unwrap();
    assert_eq!(
        vscode["servers"][NASTY_NAME],
        json!({"type": "http", "url": url})
    );
}

#[test]
fn mcp_remote_allows_plain_http_only_where_it_must() {
    let args = |url: &str| {
        let s = renderer().snippets(&SnippetInput::new("x", url)).unwrap();
        let desktop: Value = serde_json::from_str(&s.claude_desktop).unwrap();
        desktop["mcpServers"]["x"]["args"].clone()
    };
    assert_eq!(
        args("http://10.1.2.3/mcp"),
        json!(["-y", "mcp-remote", "http://10.1.2.3/mcp", "--allow-http"])
    );
    assert_eq!(
        args("http://localhost:9/mcp"),
        json!(["-y", "mcp-remote", "http://localhost:9/mcp"])
    );
    assert_eq!(
        args("https://a.example/mcp"),
        json!(["-y", "mcp-remote", "https://a.example/mcp"])
    );
}

/// Runs `command` in `sh` with `program` replaced by a function printing its
/// arguments, and returns them.
fn shell_arguments(program: &str, command: &str) -> Vec<String> {
    let script = format!("{program}() {{ printf '%s\\0' \"$@\"; }}\n{command}\n");
    let output = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(output.status.success(), "{script}: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_terminator('\0').map(str::to_owned).collect()
}

#[test]
fn shell_commands_pass_a_nasty_name_as_one_argument() {
    let url = "https://a.example/mcp?x=1&y=$(id)";
    let s = renderer()
        .snippets(&SnippetInput::new(NASTY_NAME, url))
        .unwrap();
    assert_eq!(
        shell_arguments("claude", &s.claude_code),
        ["mcp", "add", "--transport", "http", NASTY_NAME, url]
    );
    let args = shell_arguments("code", &s.vscode_cli);
    assert_eq!(args.len(), 2, "{args:?}");
    assert_eq!(args[0], "--add-mcp");
    let config: Value = serde_json::from_str(&args[1]).unwrap();
    assert_eq!(
        config,
        json!({"name": NASTY_NAME, "type": "http", "url": url})
    );
    assert!(!Path::new("pwned").exists());
}

fn query_pairs(link: &str) -> Vec<(String, String)> {
    url::Url::parse(link)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn install_links_decode_to_the_documented_configuration() {
    let url = "https://a.example/mcp";
    let s = renderer()
        .snippets(&SnippetInput::new(NASTY_NAME, url))
        .unwrap();
    assert!(
        s.cursor_deeplink
            .starts_with("cursor://anysphere.cursor-deeplink/mcp/install?")
    );
    let pairs = query_pairs(&s.cursor_deeplink);
    assert_eq!(pairs[0], ("name".to_owned(), NASTY_NAME.to_owned()));
    assert_eq!(pairs[1].0, "config");
    let config = base64::engine::general_purpose::STANDARD
        .decode(&pairs[1].1)
        .unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config, json!({"url": url}));

    let query = s
        .vscode_install_link
        .strip_prefix("vscode:mcp/install?")
        .unwrap();
    let decoded = percent_decode(query);
    let config: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(
        config,
        json!({"name": NASTY_NAME, "type": "http", "url": url})
    );
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn snippet_inputs_are_checked() {
    let r = renderer();
    for (name, url) in [
        ("", "https://a.example/mcp"),
        ("new\nline", "https://a.example/mcp"),
        ("x", "ftp://a.example/"),
        ("x", "https://user:secret@a.example/mcp"),
        ("x", "not a url"),
    ] {
        let error = r.snippets(&SnippetInput::new(name, url)).unwrap_err();
        assert!(
            matches!(error, CodegenError::InvalidOption { .. }),
            "{name:?} {url:?}: {error}"
        );
        assert!(!error.to_string().contains("secret@"), "{error}");
    }
}

// ---------------------------------------------------------------------------
// Overrides and strict mode

fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn an_override_replaces_the_embedded_template_of_the_same_name() {
    let dir = override_dir(&[
        (
            "bundle/Dockerfile.hbs",
            "FROM example.com/base\n# {{one_line name}}\n",
        ),
        ("notes.txt", "not a template, ignored"),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let bundle = renderer
        .bundle(&units(), &BundleOptions::default())
        .unwrap();
    assert_eq!(
        bundle.file("Dockerfile").unwrap().contents,
        "FROM example.com/base\n# Unit Converter\n"
    );
    // The other templates stay embedded.
    assert_eq!(
        bundle.file("compose.yaml"),
        Renderer::new()
            .unwrap()
            .bundle(&units(), &BundleOptions::default())
            .unwrap()
            .file("compose.yaml")
    );
    assert!(
        Renderer::embedded("bundle/Dockerfile.hbs")
            .unwrap()
            .contains("FROM scratch")
    );
    assert_eq!(Renderer::template_names().count(), 15);
}

#[test]
fn a_misspelt_override_is_an_error() {
    let dir = override_dir(&[("bundle/Dockerfle.hbs", "FROM x\n")]);
    let error = Renderer::with_overrides(dir.path()).unwrap_err();
    assert!(
        matches!(error, CodegenError::UnknownOverride { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("bundle/Dockerfile.hbs"),
        "{error}"
    );
}

#[test]
fn templates_are_strict() {
    let broken = override_dir(&[("bundle/Dockerfile.hbs", "{{#if slug}}unclosed\n")]);
    let error = Renderer::with_overrides(broken.path()).unwrap_err();
    assert!(matches!(error, CodegenError::Template { .. }), "{error}");

    for text in [
        "{{no_such_field}}\n",
        "{{json no_such_field}}\n",
        "{{sh no_such_field}}\n",
    ] {
        let dir = override_dir(&[("bundle/Dockerfile.hbs", text)]);
        let renderer = Renderer::with_overrides(dir.path()).unwrap();
        let error = renderer
            .bundle(&units(), &BundleOptions::default())
            .unwrap_err();
        assert!(
            matches!(error, CodegenError::Render { .. }),
            "{text}: {error}"
        );
    }
}

#[test]
fn html_escaping_is_off() {
    let dir = override_dir(&[(
        "bundle/Dockerfile.hbs",
        "{{description}}|{{json description}}\n",
    )]);
    let mut spec = units().into_spec();
    spec.description = "a < b & \"c\"".into();
    let spec = spec.check(&CheckOptions::default()).unwrap();
    let bundle = Renderer::with_overrides(dir.path())
        .unwrap()
        .bundle(&spec, &BundleOptions::default())
        .unwrap();
    assert_eq!(
        bundle.file("Dockerfile").unwrap().contents,
        "a < b & \"c\"|\"a < b & \\\"c\\\"\"\n"
    );
}

// ---------------------------------------------------------------------------
// Writing a bundle

#[test]
fn write_to_creates_the_directory_and_refuses_to_clobber() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out/weather");
    let bundle = renderer()
        .eject(&weather(), &EjectOptions::runtime_path("/opt/bmm"))
        .unwrap();
    bundle.write_to(&dir, false).unwrap();
    for file in &bundle.files {
        assert_eq!(
            fs::read_to_string(dir.join(&file.path)).unwrap(),
            file.contents
        );
    }
    let error = bundle.write_to(&dir, false).unwrap_err();
    assert!(matches!(error, CodegenError::NotEmpty { .. }), "{error}");
    fs::write(dir.join("README.md"), "changed").unwrap();
    bundle.write_to(&dir, true).unwrap();
    assert_ne!(
        fs::read_to_string(dir.join("README.md")).unwrap(),
        "changed"
    );

    // A planted link is replaced, not written through.
    let outside = root.path().join("outside.txt");
    fs::write(&outside, "keep me").unwrap();
    fs::remove_file(dir.join("server.json")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("server.json")).unwrap();
    bundle.write_to(&dir, true).unwrap();
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep me");
    assert!(
        !fs::symlink_metadata(dir.join("server.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn write_to_refuses_unsafe_paths_before_writing_anything() {
    let root = tempfile::tempdir().unwrap();
    for bad in ["../escape", "/abs", "a/../../b", "a//b", ""] {
        let dir = root.path().join("out");
        let bundle = Bundle {
            files: vec![
                RenderedFile {
                    path: "fine.txt".into(),
                    contents: "x".into(),
                },
                RenderedFile {
                    path: bad.into(),
                    contents: "x".into(),
                },
            ],
        };
        let error = bundle.write_to(&dir, false).unwrap_err();
        assert!(
            matches!(error, CodegenError::UnsafePath { .. }),
            "{bad}: {error}"
        );
        assert!(!dir.exists(), "{bad}: something was written");
    }
    assert!(!root.path().join("escape").exists());
}

// ---------------------------------------------------------------------------
// The ejected project builds and serves MCP

/// Kills the child process when dropped, so a failing test leaves none behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JSON-RPC message of an MCP response body, plain JSON or SSE.
fn rpc_message(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {body:?}"))
}

#[test]
fn the_ejected_project_builds_and_serves_its_tools_over_mcp() {
    let workspace = workspace();
    let dir = tempfile::tempdir().unwrap();
    let spec = units();
    let bundle = renderer()
        .eject(&spec, &EjectOptions::runtime_path(&workspace))
        .unwrap();
    bundle.write_to(dir.path(), true).unwrap();
    // The workspace's lock file: the same versions are chosen, nothing new is fetched.
    fs::copy(workspace.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();

    // The shared target directory: dependencies already built are reused.
    // A relative target directory is taken from the workspace root, where cargo is run.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    // The workspace's debug profile too, so that the dependencies built with
    // the same features are the same artifacts, not a second full-debug copy.
    let build = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .args(["--config", "profile.dev.debug=\"line-tables-only\""])
        .args(["--config", "profile.dev.package.\"*\".debug=false"])
        .args(["--config", "profile.dev.package.rquickjs-sys.opt-level=2"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "cargo build of the ejected project failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    eprintln!("ejected project built in {:.1?}", started.elapsed());

    let binary = target
        .join("debug")
        .join(format!("unit-converter{}", std::env::consts::EXE_SUFFIX));
    let mut child = Command::new(binary)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("serving at ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tools = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let post = |body: Value, session: Option<&str>| {
            let mut request = client
                .post(&endpoint)
                .header("accept", "application/json, text/event-stream")
                .json(&body);
            if let Some(session) = session {
                request = request
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", "2025-11-25");
            }
            request.send()
        };
        let response = post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bmm-codegen-test", "version": "0"}}}),
            None,
        )
        .await
        .unwrap();
        assert!(response.status().is_success(), "{response:?}");
        let session = response
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let init = rpc_message(&response.text().await.unwrap());
        assert_eq!(
            init["result"]["serverInfo"]["name"], "unit-converter",
            "{init}"
        );

        let initialized = post(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            session.as_deref(),
        )
        .await
        .unwrap();
        assert!(initialized.status().is_success(), "{initialized:?}");

        let response = post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
            session.as_deref(),
        )
        .await
        .unwrap();
        let list = rpc_message(&response.text().await.unwrap());
        list["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    });
    drop(server);
    let expected: Vec<String> = spec
        .spec()
        .tools
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tools, expected);
}
