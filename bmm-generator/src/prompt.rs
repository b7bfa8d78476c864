//! What a model is told: the one system prompt, the answer tool and the
//! user turns, shared by every provider and entry point so they cannot drift.
//!
//! The model answers by calling one tool, [`ANSWER_TOOL`], whose input schema
//! is the `ServerSpec` JSON Schema; providers force that tool choice, so the
//! answer is a JSON object shaped by the schema rather than prose to scrape.

use bmm_core::ServerSpec;
use serde_json::{Value, json};

use crate::Request;

/// The name of the tool a model answers with.
pub const ANSWER_TOOL: &str = "emit_server_spec";

/// The system prompt. It is long-lived and identical across requests, which
/// is what makes it worth caching.
pub const SYSTEM_PROMPT: &str = r#"You design MCP servers for bmm ("build my MCP server"). A person describes what they want; you answer with one complete ServerSpec by calling the emit_server_spec tool. Never answer in prose.

# The ServerSpec
A JSON object: "bmm": "1"; "name" (human name); "slug" (lowercase letters, digits and single hyphens, e.g. "github-issues"); "description" (one or two sentences); "version" (semver, start at "1.0.0"); "egress" (hosts the tools may contact); "secrets" (credentials the tools need); "tools" (1 to 64 tools).

Each tool has "name" (snake_case, starting with a letter, e.g. "search_issues"), optional "title", "description" (what it does and when to use it, written for the model that will call it), "input_schema" (a JSON Schema object: "type": "object", "properties", "required", "additionalProperties": false; describe every property), optional "output_schema", "annotations" ("read_only", "destructive", "idempotent", "open_world" booleans) and "implementation", which is one of two kinds.

## kind "http": one request to an API
{"kind": "http", "method": "GET", "url": "https://api.example.com/v1/items/{{url args.id}}", "headers": {"Accept": "application/json", "Authorization": "Bearer {{secrets.API_TOKEN}}"}, "query": {"q": "{{args.query}}"}, "body": {"title": "{{json args.title}}"}, "response": {"pointer": "/items", "fields": ["id", "name"]}}
Templates: {{args.NAME}} inserts an argument, {{secrets.NAME}} a declared secret; {{url args.x}} percent-encodes a value inside a URL path; {{json args.x}} inserts any JSON value into a body; {{#if args.x}}...{{/if}} for optional parts. A query parameter, header or body field whose arguments are all absent is left out, so optional arguments need no {{#if}}. "response" is optional: "pointer" (RFC 6901) selects part of a JSON answer, "fields" keeps only those keys. A non-2xx answer becomes a tool error automatically.

## kind "script": JavaScript run in a sandbox
{"kind": "script", "source": "export default async function (args) { ... }"}
An ES module whose default export is a function (possibly async) taking the validated arguments and returning JSON or a string. The sandbox has the JavaScript language core and console.log, and a fetch(url, {method, headers, query, body}) that resolves to {status, ok, headers, text(), json()}. It has no filesystem, process, environment, timers, imports, eval or Function constructor. Each call starts fresh and is limited to about 2 seconds and 32 MiB. Use scripts for computation, for combining several requests, or for reshaping data; use http tools for a single plain request.

# Secrets are used by reference, never by value
Declare every credential in "secrets": {"name": "GITHUB_TOKEN" (upper snake case), "description", "how_to_get" (where the user creates it), "required": true}. Refer to it only as {{secrets.NAME}} in http templates, or as {secret: "NAME"} for a header or query value in a script's fetch: the host fills it in and the script never sees the value. Never put a key, token or password in the spec, never ask for one as a tool argument, and declare no secret the tools do not use. If no credential is needed, "secrets" is empty.

# Egress allowlist
List in "egress" every host the tools contact, exactly ("api.github.com", "*.example.com" for subdomains, "host:8443" for another port); only https; no IP addresses, no localhost, no private networks. Requests anywhere else are refused at run time.

# Quality rules
- Tools do one thing each and their names and descriptions say what; no instructions to the calling model beyond describing the tool, no hidden or invisible characters, no text that tries to change another tool's behaviour.
- Prefer read-only tools unless the person asks for changes; mark destructive tools "destructive": true.
- Use real, public API endpoints you are confident exist; do not invent hosts.
- Scripts must not throw on valid arguments; validate inputs in the input_schema instead.

# Example
{"bmm": "1", "name": "Unit Converter", "slug": "unit-converter", "description": "Converts lengths between common units.", "version": "1.0.0", "egress": [], "secrets": [], "tools": [{"name": "convert_length", "description": "Converts a length between metres, kilometres, miles and feet.", "input_schema": {"type": "object", "properties": {"value": {"type": "number", "description": "The length."}, "from": {"type": "string", "enum": ["m", "km", "mi", "ft"]}, "to": {"type": "string", "enum": ["m", "km", "mi", "ft"]}}, "required": ["value", "from", "to"], "additionalProperties": false}, "annotations": {"read_only": true, "idempotent": true, "open_world": false}, "implementation": {"kind": "script", "source": "const M = { m: 1, km: 1000, mi: 1609.344, ft: 0.3048 };\nexport default function (args) {\n  return { value: args.value * M[args.from] / M[args.to], unit: args.to };\n}\n"}}]}

# When problems are reported
If the tool result says your spec has problems, answer with the whole corrected spec (not a patch), fixing every problem listed and changing nothing else."#;

/// The answer tool's definition: its name, what it is for and the
/// `ServerSpec` JSON Schema as its input schema.
pub fn answer_tool() -> Value {
    json!({
        "name": ANSWER_TOOL,
        "description": "Emit the complete ServerSpec for the MCP server the user asked for.",
        "input_schema": ServerSpec::json_schema(),
    })
}

/// The first user turn of a conversation: the request, and for an
/// iteration the current spec it changes.
pub fn user_turn(request: &Request) -> String {
    let mut text = String::new();
    if let Some(current) = &request.current {
        let current = serde_json::to_string_pretty(current).unwrap_or_default();
        text.push_str("Here is the current spec of the server:\n\n```json\n");
        text.push_str(&current);
        text.push_str(
            "\n```\n\nChange it as follows, keeping its slug and everything the request \
             does not mention:\n\n",
        );
    } else {
        text.push_str("Design an MCP server for this request:\n\n");
    }
    text.push_str(request.prompt.trim());
    if let Some(name) = &request.name {
        text.push_str(&format!("\n\nName the server {name:?}."));
    }
    if let Some(slug) = &request.slug {
        text.push_str(&format!("\n\nUse the slug {:?}.", slug.as_str()));
    }
    text
}

/// The follow-up turn that sends a round's problems back to the model.
pub fn repair_turn(problems: &[String]) -> String {
    let mut text = format!(
        "Your spec has {} problem{}. Answer again with the whole corrected spec:\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("- ");
        text.push_str(problem);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_tool_carries_the_spec_schema() {
        let tool = answer_tool();
        assert_eq!(tool["name"], ANSWER_TOOL);
        assert_eq!(tool["input_schema"], ServerSpec::json_schema());
    }

    #[test]
    fn the_example_in_the_prompt_is_a_valid_spec() {
        let start = SYSTEM_PROMPT.find("# Example\n").unwrap() + "# Example\n".len();
        let end = SYSTEM_PROMPT[start..].find("\n\n").unwrap() + start;
        let example: Value = serde_json::from_str(&SYSTEM_PROMPT[start..end]).unwrap();
        bmm_core::check(&example, &bmm_core::CheckOptions::default()).unwrap();
    }

    #[test]
    fn the_repair_turn_lists_every_problem() {
        let text = repair_turn(&["a is wrong".into(), "b is missing".into()]);
        assert!(text.starts_with("Your spec has 2 problems."));
        assert!(text.contains("- a is wrong\n- b is missing\n"));
    }
}
