//! Lexical views of a tool's JavaScript source for the static checks.
//!
//! These checks give early, located feedback to the author (or the model) of a
//! script; they are not the security boundary — the runtime's sandbox is. A
//! light scanner separates code from comments and string contents so that a
//! comment saying "no eval here" is not a finding while code calling `eval` is.
//! Regular-expression literals are not recognised; a quote inside one can hide
//! the rest of a line from the checks, which the sandbox still covers.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// Two views of a script, each the same length in lines as the source.
#[derive(Clone, Debug)]
pub struct ScriptViews {
    /// Comments and the contents of string and template literals blanked.
    pub code: String,
    /// Comments blanked, string literals intact.
    pub without_comments: String,
}

#[derive(Clone, Copy)]
enum State {
    Code,
    LineComment,
    BlockComment,
    Str(char),
    Template,
}

/// Splits `source` into its [`ScriptViews`].
pub fn views(source: &str) -> ScriptViews {
    let mut code = String::with_capacity(source.len());
    let mut plain = String::with_capacity(source.len());
    let mut state = State::Code;
    // One counter per open `${`: the depth of braces opened inside it.
    let mut interpolations: Vec<usize> = Vec::new();
    let mut chars = source.chars().peekable();
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while let Some(c) = chars.next() {
        match state {
            State::Code => match c {
                '/' if chars.peek() == Some(&'/') => {
                    state = State::LineComment;
                    code.push(' ');
                    plain.push(' ');
                }
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    state = State::BlockComment;
                    code.push_str("  ");
                    plain.push_str("  ");
                }
                '\'' | '"' => {
                    state = State::Str(c);
                    code.push(c);
                    plain.push(c);
                }
                '`' => {
                    state = State::Template;
                    code.push(c);
                    plain.push(c);
                }
                '{' => {
                    if let Some(depth) = interpolations.last_mut() {
                        *depth += 1;
                    }
                    code.push(c);
                    plain.push(c);
                }
                '}' => {
                    match interpolations.last_mut() {
                        Some(0) => {
                            interpolations.pop();
                            state = State::Template;
                        }
                        Some(depth) => *depth -= 1,
                        None => {}
                    }
                    code.push(c);
                    plain.push(c);
                }
                _ => {
                    code.push(c);
                    plain.push(c);
                }
            },
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
                code.push(blank(c));
                plain.push(blank(c));
            }
            State::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = State::Code;
                    code.push_str("  ");
                    plain.push_str("  ");
                } else {
                    code.push(blank(c));
                    plain.push(blank(c));
                }
            }
            State::Str(quote) => {
                plain.push(c);
                if c == '\\' {
                    code.push(' ');
                    if let Some(next) = chars.next() {
                        code.push(blank(next));
                        plain.push(next);
                    }
                } else if c == quote || c == '\n' {
                    state = State::Code;
                    code.push(c);
                } else {
                    code.push(' ');
                }
            }
            State::Template => {
                plain.push(c);
                if c == '\\' {
                    code.push(' ');
                    if let Some(next) = chars.next() {
                        code.push(blank(next));
                        plain.push(next);
                    }
                } else if c == '`' {
                    state = State::Code;
                    code.push(c);
                } else if c == '$' && chars.peek() == Some(&'{') {
                    chars.next();
                    plain.push('{');
                    code.push_str("${");
                    interpolations.push(0);
                    state = State::Code;
                } else {
                    code.push(blank(c));
                }
            }
        }
    }
    ScriptViews {
        code,
        without_comments: plain,
    }
}

/// The line (1-based) of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(1, |head| head.matches('\n').count() + 1)
}

static SECRET_REF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"\bsecret\s*:\s*(?:"([^"\n]*)"|'([^'\n]*)'|`([^`$\n]*)`|([^\s"'`]))"#).ok()
});

/// Secret references `{secret: "NAME"}` in a script: the literal names, and the
/// lines of references that are not a string literal (and so cannot be checked).
pub fn secret_references(views: &ScriptViews) -> (BTreeSet<String>, Vec<usize>) {
    let mut names = BTreeSet::new();
    let mut dynamic = Vec::new();
    let Some(re) = SECRET_REF.as_ref() else {
        return (names, dynamic);
    };
    for caps in re.captures_iter(&views.without_comments) {
        // Matches that start inside a string literal are text, not code.
        let Some(whole) = caps.get(0) else { continue };
        if views.code.get(whole.start()..whole.start() + 6) != Some("secret") {
            continue;
        }
        match caps.get(1).or(caps.get(2)).or(caps.get(3)) {
            Some(name) => {
                names.insert(name.as_str().to_owned());
            }
            None => dynamic.push(line_of(&views.code, whole.start())),
        }
    }
    (names, dynamic)
}

static URL_LITERAL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // ASCII boundary and digits: compiled, a Unicode `\b` and `\d{1,5}` hold
    // 212 KB for the life of the process, these 21 KB (a port is ASCII anyway).
    Regex::new(r"(?-u:\b)https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?").ok()
});

/// Absolute URLs written in the script's string literals: `(scheme, host, port)`.
pub fn url_literals(views: &ScriptViews) -> Vec<(String, String, Option<u16>)> {
    let Some(re) = URL_LITERAL.as_ref() else {
        return Vec::new();
    };
    re.captures_iter(&views.without_comments)
        .filter_map(|caps| {
            let whole = caps.get(0)?;
            let scheme = if whole.as_str().starts_with("https") {
                "https"
            } else {
                "http"
            };
            let host = caps.get(1)?.as_str().to_ascii_lowercase();
            let port = caps.get(2).and_then(|p| p.as_str().parse().ok());
            Some((scheme.to_owned(), host, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_comments_and_strings_but_not_interpolations() {
        let src = "// eval(x)\nconst a = \"eval(\"; /* process.env */ const b = `x ${eval(1)} y`;";
        let v = views(src);
        assert!(!v.code.contains("eval(x)"));
        assert!(!v.code.contains("process"));
        assert_eq!(v.code.matches("eval(").count(), 1, "{}", v.code);
        assert_eq!(v.code.lines().count(), src.lines().count());
        assert!(v.without_comments.contains("\"eval(\""));
    }

    #[test]
    fn nested_braces_inside_interpolation() {
        let v = views("`${ {a: 1}.a } and ${'}'}` + require('x')");
        assert!(v.code.contains("require("), "{}", v.code);
    }

    #[test]
    fn finds_secret_references() {
        let v = views(
            r#"fetch(u, {headers: {a: {secret: "API_KEY"}, b: {secret: name}}}) // {secret: "NOPE"}
            const s = "secret: 'ALSO_NOT'";"#,
        );
        let (names, dynamic) = secret_references(&v);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["API_KEY".to_owned()]
        );
        assert_eq!(dynamic, vec![1]);
    }

    #[test]
    fn finds_url_literals() {
        let v =
            views(r#"await fetch("https://api.example.com:8443/x"); // "https://comment.example""#);
        assert_eq!(
            url_literals(&v),
            vec![("https".into(), "api.example.com".into(), Some(8443))]
        );
    }
}
