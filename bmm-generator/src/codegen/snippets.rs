//! Install snippets: how each MCP client adds a remote server by URL.
//!
//! The formats, as their vendors document them (checked 2026-11):
//!
//! - Claude Desktop: remote servers are added in Settings → Connectors →
//!   "Add custom connector" (name and URL; OAuth is handled there). Claude
//!   Desktop does not connect to remote servers written directly into
//!   `claude_desktop_config.json`; that file takes local (stdio) servers, so
//!   the config snippet runs the `mcp-remote` bridge (`npx -y mcp-remote
//!   URL`, with `--allow-http` for plain http to anything but localhost).
//!   <https://support.claude.com/en/articles/11175166-getting-started-with-custom-connectors-using-remote-mcp>,
//!   <https://support.claude.com/en/articles/11503834-building-custom-connectors-via-remote-mcp-servers>,
//!   <https://www.npmjs.com/package/mcp-remote>
//! - Claude Code: `claude mcp add --transport http NAME URL`; OAuth sign-in
//!   through `/mcp` inside Claude Code. <https://code.claude.com/docs/en/mcp>
//! - Cursor: `.cursor/mcp.json` (or `~/.cursor/mcp.json`) with
//!   `{"mcpServers": {NAME: {"url": URL}}}`, and the install link
//!   `cursor://anysphere.cursor-deeplink/mcp/install?name=NAME&config=BASE64`
//!   whose `config` is the base64 of the server's JSON configuration.
//!   <https://cursor.com/docs/context/mcp>, <https://cursor.com/docs/mcp/install-links>
//! - VS Code: `.vscode/mcp.json` with `{"servers": {NAME: {"type": "http",
//!   "url": URL}}}`, the command line `code --add-mcp JSON` where JSON is
//!   `{"name", "type", "url"}`, and the link `vscode:mcp/install?` followed by
//!   that JSON, URI-component-encoded.
//!   <https://code.visualstudio.com/docs/copilot/reference/mcp-configuration>,
//!   <https://code.visualstudio.com/docs/copilot/guides/mcp-developer-guide>
//! - ChatGPT: developer mode, Settings → Apps (formerly Connectors) →
//!   Create: name, description, MCP server URL, authentication (OAuth or
//!   none). ChatGPT reaches the server from OpenAI's side, so the URL must be
//!   public https.
//!   <https://help.openai.com/en/articles/12584461-developer-mode-apps-and-full-mcp-connectors-in-chatgpt-beta>,
//!   <https://platform.openai.com/docs/guides/developer-mode>

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use url::Url;

use super::{CodegenError, Renderer, Result};

/// What the snippets are made from. A `Config` struct with public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetInput {
    /// The name the client lists the server under, e.g. "weather". Any
    /// text without control characters; it is quoted for each format.
    pub name: String,
    /// The server's MCP endpoint, an absolute http or https URL, e.g.
    /// `https://weather.example.com/mcp`.
    pub url: String,
    /// Whether the server requires OAuth access tokens.
    pub oauth: bool,
    /// A sentence for clients that show one (ChatGPT's "description").
    pub description: Option<String>,
}

impl SnippetInput {
    /// Snippets for `name` at `url`, without OAuth or description.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            oauth: false,
            description: None,
        }
    }

    /// The same, with `oauth` set.
    pub fn oauth(mut self, oauth: bool) -> Self {
        self.oauth = oauth;
        self
    }

    /// The same, with a description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// How to add one server to each client. JSON files end with a newline;
/// commands and links are one line without one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snippets {
    /// `claude_desktop_config.json` running the `mcp-remote` bridge.
    pub claude_desktop: String,
    /// The `claude mcp add` command for Claude Code.
    pub claude_code: String,
    /// `.cursor/mcp.json`.
    pub cursor: String,
    /// Cursor's one-click install link.
    pub cursor_deeplink: String,
    /// `.vscode/mcp.json`.
    pub vscode: String,
    /// The `code --add-mcp` command.
    pub vscode_cli: String,
    /// VS Code's install link (`vscode:mcp/install?…`).
    pub vscode_install_link: String,
    /// ChatGPT's connector fields, as a Markdown list.
    pub chatgpt: String,
    markdown: String,
}

impl Snippets {
    /// All the snippets as one Markdown section (one `###` heading per
    /// client), as the bundle's README includes them.
    pub fn to_markdown(&self) -> &str {
        &self.markdown
    }
}

/// Characters left as they are in a URI component (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Serialize)]
struct Context<'a> {
    name: &'a str,
    url: &'a str,
    oauth: bool,
    description: Option<&'a str>,
    https: bool,
    mcp_remote_args: Vec<&'a str>,
    cursor_deeplink: String,
    vscode_add_mcp: String,
    vscode_install_link: String,
}

#[derive(Serialize)]
struct MarkdownContext<'a> {
    #[serde(flatten)]
    base: &'a Context<'a>,
    claude_desktop: &'a str,
    claude_code: &'a str,
    cursor: &'a str,
    vscode: &'a str,
    vscode_cli: &'a str,
    chatgpt: &'a str,
}

impl Renderer {
    /// Renders the install snippets for one server.
    ///
    /// Fails when the URL is not an absolute http(s) URL, carries
    /// credentials, or the name is empty or has control characters.
    pub fn snippets(&self, input: &SnippetInput) -> Result<Snippets> {
        let name = input.name.as_str();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(CodegenError::InvalidOption {
                what: "server name",
                reason: "it must be non-empty text without control characters".into(),
            });
        }
        let url = check_url(&input.url)?;
        let https = url.scheme() == "https";
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        let url = url.as_str();
        let mut mcp_remote_args = vec!["-y", "mcp-remote", url];
        if !https && !loopback {
            mcp_remote_args.push("--allow-http");
        }

        let cursor_config = serde_json::json!({ "url": url }).to_string();
        let cursor_deeplink = format!(
            "cursor://anysphere.cursor-deeplink/mcp/install?name={}&config={}",
            utf8_percent_encode(name, COMPONENT),
            utf8_percent_encode(
                &base64::engine::general_purpose::STANDARD.encode(cursor_config),
                COMPONENT
            ),
        );
        let vscode_add_mcp = serde_json::to_string(&VsCodeServer {
            name,
            kind: "http",
            url,
        })?;
        let vscode_install_link = format!(
            "vscode:mcp/install?{}",
            utf8_percent_encode(&vscode_add_mcp, COMPONENT)
        );
        let context = Context {
            name,
            url,
            oauth: input.oauth,
            description: input.description.as_deref(),
            https,
            mcp_remote_args,
            cursor_deeplink,
            vscode_add_mcp,
            vscode_install_link,
        };

        let claude_desktop = self.render("snippets/claude-desktop.json.hbs", &context)?;
        let claude_code = one_command(self.render("snippets/claude-code.sh.hbs", &context)?);
        let cursor = self.render("snippets/cursor.json.hbs", &context)?;
        let vscode = self.render("snippets/vscode.json.hbs", &context)?;
        let vscode_cli = one_command(self.render("snippets/vscode-cli.sh.hbs", &context)?);
        let chatgpt = self.render("snippets/chatgpt.md.hbs", &context)?;
        let markdown = self.render(
            "snippets/snippets.md.hbs",
            &MarkdownContext {
                base: &context,
                claude_desktop: &claude_desktop,
                claude_code: &claude_code,
                cursor: &cursor,
                vscode: &vscode,
                vscode_cli: &vscode_cli,
                chatgpt: &chatgpt,
            },
        )?;
        Ok(Snippets {
            claude_desktop,
            claude_code,
            cursor,
            cursor_deeplink: context.cursor_deeplink,
            vscode,
            vscode_cli,
            vscode_install_link: context.vscode_install_link,
            chatgpt,
            markdown,
        })
    }
}

/// The `code --add-mcp` argument, fields in the documented order.
#[derive(Serialize)]
struct VsCodeServer<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    url: &'a str,
}

/// A command template's output without its final newline.
fn one_command(mut text: String) -> String {
    while text.ends_with('\n') {
        text.pop();
    }
    text
}

/// Parses `raw` as the URL of an MCP endpoint. Errors do not repeat the
/// URL, which may hold credentials.
pub(crate) fn check_url(raw: &str) -> Result<Url> {
    let invalid = |reason: &str| CodegenError::InvalidOption {
        what: "server URL",
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("it must be an absolute http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not carry credentials; snippets are shared and stored in plain files",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not have a fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(check_url("https://a.example/mcp").is_ok());
        assert!(check_url("http://localhost:8080/mcp").is_ok());
        for bad in [
            "ftp://a.example/",
            "/mcp",
            "https://user:pw@a.example/mcp",
            "https://a.example/mcp#x",
            "mailto:a@b.c",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
