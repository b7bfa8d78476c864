//! The template subset of http tools, and what a template refers to.
//!
//! Templates are handlebars, restricted to what can be analysed before a tool
//! runs: `{{args.NAME}}` (deeper paths such as `{{args.filter.from}}` are
//! allowed), `{{secrets.NAME}}`, the encoding helpers `{{url args.NAME}}` and
//! `{{json args.NAME}}`, and `{{#if args.NAME}}…{{else}}…{{/if}}` /
//! `{{#unless …}}` blocks. Anything else — partials, decorators, other helpers,
//! `this`, `@root`, `../` — is refused, so the arguments and secrets a template
//! uses are always known statically.

use std::collections::BTreeSet;

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

/// Helpers a template may call with one argument: `url` percent-encodes, `json` JSON-encodes.
pub const ENCODING_HELPERS: [&str; 2] = ["url", "json"];

/// What a template refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateRefs {
    /// Top-level argument names used (`args.NAME`).
    pub args: BTreeSet<String>,
    /// Secret names used (`secrets.NAME`).
    pub secrets: BTreeSet<String>,
}

impl TemplateRefs {
    /// Whether the template refers to nothing, i.e. it is literal text.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty() && self.secrets.is_empty()
    }
}

/// A problem in one template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateProblem {
    /// The template does not parse; the message says where.
    Syntax(String),
    /// The template uses a construct outside the supported subset.
    Unsupported(String),
}

/// Parses `source` and lists the arguments and secrets it refers to, or every
/// problem with it.
pub fn analyse(source: &str) -> Result<TemplateRefs, Vec<TemplateProblem>> {
    // Fast path: literal text needs no parser.
    if !source.contains("{{") {
        return Ok(TemplateRefs::default());
    }
    let template =
        Template::compile(source).map_err(|e| vec![TemplateProblem::Syntax(syntax_error(&e))])?;
    let mut refs = TemplateRefs::default();
    let mut problems = Vec::new();
    walk(&template, &mut refs, &mut problems);
    if problems.is_empty() {
        Ok(refs)
    } else {
        Err(problems)
    }
}

fn syntax_error(error: &handlebars::TemplateError) -> String {
    let at = error.pos().map_or_else(String::new, |(line, column)| {
        format!(" at line {line}, column {column}")
    });
    match error.reason() {
        handlebars::TemplateErrorReason::MismatchingClosedHelper(open, close) => {
            format!(
                "the template does not parse{at}: `{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`"
            )
        }
        handlebars::TemplateErrorReason::InvalidSyntax(_) => format!(
            "the template does not parse{at}: every `{{{{` needs a matching `}}}}`, and an expression holds one reference such as args.NAME"
        ),
        other => format!("the template does not parse{at}: {other}"),
    }
}

fn walk(template: &Template, refs: &mut TemplateRefs, problems: &mut Vec<TemplateProblem>) {
    for element in &template.elements {
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                expression(h, refs, problems);
            }
            TemplateElement::HelperBlock(h) => block(h, refs, problems),
            TemplateElement::DecoratorExpression(_)
            | TemplateElement::DecoratorBlock(_)
            | TemplateElement::PartialExpression(_)
            | TemplateElement::PartialBlock(_) => problems.push(TemplateProblem::Unsupported(
                "partials and decorators are not supported in templates".into(),
            )),
            _ => problems.push(TemplateProblem::Unsupported(
                "this template construct is not supported".into(),
            )),
        }
    }
}

fn expression(h: &HelperTemplate, refs: &mut TemplateRefs, problems: &mut Vec<TemplateProblem>) {
    if h.params.is_empty() && h.hash.is_empty() {
        reference(&h.name, refs, problems);
        return;
    }
    let helper = match &h.name {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(p) => raw_path(p),
        _ => "",
    };
    if !ENCODING_HELPERS.contains(&helper) || h.params.len() != 1 || !h.hash.is_empty() {
        problems.push(TemplateProblem::Unsupported(format!(
            "`{helper}` is not an available helper; use {{{{url args.NAME}}}} or {{{{json args.NAME}}}}"
        )));
        return;
    }
    reference(&h.params[0], refs, problems);
}

fn block(h: &HelperTemplate, refs: &mut TemplateRefs, problems: &mut Vec<TemplateProblem>) {
    let name = match &h.name {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(p) => raw_path(p),
        _ => "",
    };
    if !matches!(name, "if" | "unless") || h.params.len() != 1 || !h.hash.is_empty() {
        problems.push(TemplateProblem::Unsupported(format!(
            "`{{{{#{name}}}}}` blocks are not supported; only {{{{#if args.NAME}}}} and {{{{#unless args.NAME}}}}"
        )));
        return;
    }
    reference(&h.params[0], refs, problems);
    for inner in [&h.template, &h.inverse].into_iter().flatten() {
        walk(inner, refs, problems);
    }
}

fn raw_path(path: &handlebars::Path) -> &str {
    match path {
        handlebars::Path::Relative((_, raw)) | handlebars::Path::Local((_, _, raw)) => raw,
    }
}

fn reference(param: &Parameter, refs: &mut TemplateRefs, problems: &mut Vec<TemplateProblem>) {
    let raw = match param {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(p) => raw_path(p),
        Parameter::Literal(_) => return,
        _ => {
            problems.push(TemplateProblem::Unsupported(
                "sub-expressions `(…)` are not supported in templates".into(),
            ));
            return;
        }
    };
    let segments: Vec<&str> = raw.split(['.', '/']).collect();
    let plain = segments.iter().all(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    match segments.as_slice() {
        ["args", name, ..] if plain => {
            refs.args.insert((*name).to_owned());
        }
        ["secrets", name] if plain => {
            refs.secrets.insert((*name).to_owned());
        }
        _ => problems.push(TemplateProblem::Unsupported(format!(
            "`{{{{{raw}}}}}` refers to nothing a template can use; write {{{{args.NAME}}}} for an argument or {{{{secrets.NAME}}}} for a declared secret"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(src: &str) -> (Vec<String>, Vec<String>) {
        let r = analyse(src).unwrap();
        (
            r.args.into_iter().collect(),
            r.secrets.into_iter().collect(),
        )
    }

    #[test]
    fn finds_arguments_and_secrets() {
        assert_eq!(refs("plain"), (vec![], vec![]));
        assert_eq!(
            refs("https://x/{{args.city}}/{{url args.day}}?k={{secrets.API_KEY}}"),
            (vec!["city".into(), "day".into()], vec!["API_KEY".into()])
        );
        assert_eq!(
            refs("{{#if args.limit}}{{args.limit}}{{else}}{{json args.filter.kind}}{{/if}}"),
            (vec!["filter".into(), "limit".into()], vec![])
        );
    }

    #[test]
    fn refuses_what_cannot_be_analysed() {
        for src in [
            "{{city}}",
            "{{this}}",
            "{{../args.x}}",
            "{{@root.args.x}}",
            "{{lookup args \"x\"}}",
            "{{#each args.items}}{{this}}{{/each}}",
            "{{> partial}}",
            "{{url (json args.x)}}",
            "{{secrets.A.B}}",
        ] {
            assert!(analyse(src).is_err(), "{src} accepted");
        }
        assert!(matches!(
            analyse("{{args.x").unwrap_err()[0],
            TemplateProblem::Syntax(_)
        ));
    }
}
