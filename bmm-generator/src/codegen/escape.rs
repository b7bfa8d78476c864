//! Escaping for each output format, and the handlebars helpers built on it.
//!
//! Handlebars' own HTML escaping is switched off: none of the outputs is
//! HTML, and HTML escaping would corrupt JSON, YAML, shell and Markdown
//! alike. Instead every value that comes from a spec or an option goes
//! through the helper of the format it lands in:
//!
//! | helper | output | example |
//! |---|---|---|
//! | `{{json v}}` | a JSON value (any type), compact | `"a \"b\""` |
//! | `{{yaml s}}` | a YAML double-quoted string | `"a \"b\""` |
//! | `{{sh s}}` | one POSIX shell word | `'a "b"'` |
//! | `{{toml s}}` | a TOML basic string | `"a \"b\""` |
//! | `{{md s}}` | inline Markdown text, one line | `a \*b\*` |
//! | `{{md_code s}}` | a Markdown code span | `` `a` `` |
//! | `{{fence lang s}}` | a fenced Markdown code block | ```` ```json ```` |
//! | `{{one_line s}}` | text for a comment: line breaks and controls become spaces | `a b` |
//!
//! Each helper refuses a missing value (strict mode covers plain `{{x}}`;
//! this covers helper parameters too), so a typo in an override template is
//! an error rather than an empty string.

use std::borrow::Cow;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;

/// Registers every escaping helper on `registry`.
pub(crate) fn register(registry: &mut Handlebars<'_>) {
    registry.register_helper("json", Box::new(json_helper));
    registry.register_helper("yaml", Box::new(string_helper("yaml", |s| Ok(yaml(s)))));
    registry.register_helper("sh", Box::new(string_helper("sh", sh)));
    registry.register_helper("toml", Box::new(string_helper("toml", |s| Ok(toml(s)))));
    registry.register_helper("md", Box::new(string_helper("md", |s| Ok(md(s)))));
    registry.register_helper(
        "md_code",
        Box::new(string_helper("md_code", |s| Ok(md_code(s)))),
    );
    registry.register_helper("fence", Box::new(fence_helper));
    registry.register_helper(
        "one_line",
        Box::new(string_helper("one_line", |s| Ok(one_line(s)))),
    );
}

/// `s` on one line, for a comment in any format: every control character
/// and Unicode line break becomes a space, so the value cannot end the
/// comment and start code.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A JSON string literal for `s` (also the form every other string quoting
/// here starts from).
pub(crate) fn json_string(s: &str) -> String {
    // Serializing a `str` cannot fail; the fallback keeps this total anyway.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// A YAML double-quoted scalar. JSON string syntax is valid YAML; the
/// characters YAML 1.1 parsers take for line breaks (NEL, LS, PS) are
/// escaped as well, so a value stays on its line with every parser.
pub(crate) fn yaml(s: &str) -> String {
    let quoted = json_string(s);
    if !quoted.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
        return quoted;
    }
    quoted
        .replace('\u{85}', "\\N")
        .replace('\u{2028}', "\\L")
        .replace('\u{2029}', "\\P")
}

/// One POSIX shell word: `s` unchanged when it needs no quoting, otherwise
/// quoted so that the shell passes exactly `s` as one argument.
pub(crate) fn sh(s: &str) -> Result<String, String> {
    shlex::try_quote(s)
        .map(Cow::into_owned)
        .map_err(|_| "a shell argument cannot contain a NUL character".to_owned())
}

/// A TOML basic string: `"` and `\` escaped, every control character
/// (DEL included, which JSON leaves alone) as a `\uXXXX` escape.
pub(crate) fn toml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Inline Markdown: line breaks become spaces (a value never starts a new
/// block), and every character that could start emphasis, code, a link, an
/// HTML tag, an entity or a table cell is backslash-escaped.
pub(crate) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_space = false;
    for c in s.chars() {
        if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            if !previous_space {
                out.push(' ');
            }
            previous_space = true;
            continue;
        }
        previous_space = c == ' ';
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown code span around `s`, with a fence longer than any run of
/// backticks inside it (CommonMark's rule), on one line.
pub(crate) fn md_code(s: &str) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_backtick_run(&one_line) + 1);
    // A space on each side keeps a leading or trailing backtick apart from the fence.
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{one_line}{pad}{fence}")
}

/// A fenced Markdown code block holding `content` verbatim, with a fence
/// longer than any run of backticks inside it.
pub(crate) fn fence(lang: &str, content: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(content) + 1).max(3));
    let body = content.strip_suffix('\n').unwrap_or(content);
    // The info string is one word of letters, digits and dashes, or nothing.
    let lang: String = lang
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{fence}{lang}\n{body}\n{fence}")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn render_error(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

/// The parameter `index` of `h`, refusing a missing one.
fn param<'a>(h: &'a Helper<'_>, name: &str, index: usize) -> Result<&'a Value, RenderError> {
    match h.param(index) {
        Some(p) if !p.is_value_missing() => Ok(p.value()),
        Some(p) => Err(render_error(format!(
            "helper {name}: {} is missing",
            p.relative_path().map_or("its argument", String::as_str)
        ))),
        None => Err(render_error(format!(
            "helper {name} needs argument {}",
            index + 1
        ))),
    }
}

fn string_param<'a>(h: &'a Helper<'_>, name: &str, index: usize) -> Result<&'a str, RenderError> {
    param(h, name, index)?.as_str().ok_or_else(|| {
        render_error(format!(
            "helper {name}: argument {} is not a string",
            index + 1
        ))
    })
}

type Escape = fn(&str) -> Result<String, String>;

fn string_helper(
    name: &'static str,
    escape: Escape,
) -> impl Fn(
    &Helper<'_>,
    &Handlebars<'_>,
    &Context,
    &mut RenderContext<'_, '_>,
    &mut dyn Output,
) -> HelperResult
+ Send
+ Sync {
    move |h, _, _, _, out| {
        let value = string_param(h, name, 0)?;
        let escaped = escape(value).map_err(|e| render_error(format!("helper {name}: {e}")))?;
        out.write(&escaped)?;
        Ok(())
    }
}

fn json_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = param(h, "json", 0)?;
    let text =
        serde_json::to_string(value).map_err(|e| render_error(format!("helper json: {e}")))?;
    out.write(&text)?;
    Ok(())
}

fn fence_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let lang = string_param(h, "fence", 0)?;
    let content = string_param(h, "fence", 1)?;
    out.write(&fence(lang, content))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_strings_parse_back_to_themselves() {
        for s in [
            "plain",
            "a \"quoted\" 'word'",
            "colon: and # hash",
            "line\nbreak\ttab",
            "ls\u{2028}ps\u{2029}nel\u{85}",
            "${NOT_INTERPOLATED}",
            "",
        ] {
            let doc = format!("key: {}\n", yaml(s));
            let back: serde_json::Value = serde_yaml_ng::from_str(&doc).unwrap();
            assert_eq!(back["key"], s, "{doc}");
        }
    }

    #[test]
    fn one_line_text_has_no_line_breaks() {
        assert_eq!(one_line("a\nb\r\nc\u{2028}d\te"), "a b  c d e");
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(toml("x\u{7f}y\u{1}"), r#""x\u007Fy\u0001""#);
        assert_eq!(toml("C:\\path\n"), r#""C:\\path\n""#);
    }

    #[test]
    fn shell_words_round_trip_through_a_shell_parser() {
        for s in ["plain", "two words", "it's \"quoted\"", "$HOME `id` \\", ""] {
            let quoted = sh(s).unwrap();
            assert_eq!(
                shlex::split(&quoted).unwrap(),
                vec![s.to_owned()],
                "{quoted}"
            );
        }
        assert!(sh("nul\0").is_err());
    }

    #[test]
    fn markdown_inline_text_cannot_open_blocks_links_or_tags() {
        assert_eq!(md("a *b* [c](d) <e>"), r"a \*b\* \[c\](d) \<e\>");
        assert_eq!(md("one\n# two\r\n| three"), r"one \# two \| three");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(
            fence("json", "has ``` inside\n"),
            "````json\nhas ``` inside\n````"
        );
        assert_eq!(fence("sh", "x"), "```sh\nx\n```");
    }
}
