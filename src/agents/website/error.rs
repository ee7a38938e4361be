//! What goes wrong while the website agent takes values from a page: an expression it
//! refuses (at save and at run), a page it cannot read, a bound the page exceeds, rows
//! that do not line up. Each is turned into the agent's error log line
//! ("Error when fetching url: …"); the text is the one Huginn users know.

use super::extract_html::{
    MAX_DEPTH, MAX_DESCENDANT_STEPS, MAX_EXPR_CHARS, MAX_NESTING, MAX_OUTPUT, MAX_TIME,
};
use super::options::MAX_VALUES;

/// Why a CSS selector or an XPath is refused, said of the option it is in
/// ("option \"extract.title.xpath\" is longer than …").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("is longer than {MAX_EXPR_CHARS} characters")]
    TooLong,
    #[error("has {0} descendant (//) steps; at most {MAX_DESCENDANT_STEPS} are allowed")]
    TooManyDescendantSteps(usize),
    #[error("nests brackets {0} deep; at most {MAX_NESTING} are allowed")]
    TooDeep(usize),
    #[error("is not a valid CSS selector: {0}")]
    Css(String),
    #[error("is not a valid XPath expression: {0}")]
    XPath(String),
    #[error("is an empty XPath expression")]
    EmptyXPath,
    /// A CSS selector that cannot be run on an XML page (see `css_xml`).
    #[error("{0}")]
    CssOnXml(#[from] CssOnXmlError),
}

/// Why a CSS selector cannot be translated to XPath for an XML page.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CssOnXmlError {
    /// Names the construct muninn's translation does not take.
    #[error(
        "uses {0}, which muninn cannot run on xml (tag, #id, .class, [attr], [attr=\"v\"], descendant and > combinators only); use \"xpath\""
    )]
    Unsupported(&'static str),
    #[error("is empty")]
    Empty,
}

/// Why no values came from a fetched page.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An extraction's expression (its `option`: css, xpath, value) is refused.
    #[error("extract.{name}.{option} {source}")]
    Expr {
        name: String,
        option: &'static str,
        source: ExprError,
    },
    /// An expression failed while it ran on the page.
    #[error("extract.{name}.{option}: {message}")]
    Evaluate {
        name: String,
        option: &'static str,
        message: String,
    },
    #[error("The result of HTML/XML extraction was not a NodeSet")]
    NotANodeSet,
    /// An extraction of another document type (the options checks make this unreachable
    /// through a save; kept for a stored agent of an older version).
    #[error("extract.{name}: needs {needs}")]
    WrongKind { name: String, needs: &'static str },
    #[error("extract.{name} selected {count} nodes; at most {MAX_VALUES} are taken from one page")]
    TooManyNodes { name: String, count: usize },
    #[error(
        "extract.{name} matched {count} times; at most {MAX_VALUES} values are taken from one page"
    )]
    TooManyValues { name: String, count: usize },
    #[error("extract.{0}: the regexp matched more than {MAX_VALUES} times")]
    TooManyMatches(String),
    #[error(
        "extracting took longer than {} s; simplify the selectors of extract",
        MAX_TIME.as_secs()
    )]
    TooSlow,
    #[error("the values extracted from one page exceed {} MiB", MAX_OUTPUT / (1024 * 1024))]
    TooMuchOutput,
    #[error("the document nests elements more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error("the document is not well-formed XML: {0}")]
    NotXml(String),
    #[error("the document is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the JSON document is not an object: add extract to take values from it")]
    NotAnObject,
    #[error("Got an uneven number of matches for {agent}: {extract}")]
    UnevenMatches { agent: String, extract: String },
    #[error("At least one non-repeat key is required")]
    NoNonRepeatKey,
    /// A template (`value`, `template`) that did not render.
    #[error("{0}")]
    Template(#[from] crate::template::TemplateError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are the ones the agent logged before these were types.
    #[test]
    fn messages_read_as_before() {
        let cases: Vec<(ExtractError, &str)> = vec![
            (
                ExtractError::Expr {
                    name: "t".into(),
                    option: "xpath",
                    source: ExprError::TooManyDescendantSteps(5),
                },
                "extract.t.xpath has 5 descendant (//) steps; at most 4 are allowed",
            ),
            (
                ExtractError::Expr {
                    name: "t".into(),
                    option: "css",
                    source: CssOnXmlError::Unsupported("an unclosed [").into(),
                },
                "extract.t.css uses an unclosed [, which muninn cannot run on xml (tag, #id, .class, [attr], [attr=\"v\"], descendant and > combinators only); use \"xpath\"",
            ),
            (
                ExtractError::WrongKind {
                    name: "t".into(),
                    needs: "a \"path\" for type json",
                },
                "extract.t: needs a \"path\" for type json",
            ),
            (
                ExtractError::TooSlow,
                "extracting took longer than 10 s; simplify the selectors of extract",
            ),
            (
                ExtractError::TooMuchOutput,
                "the values extracted from one page exceed 64 MiB",
            ),
            (
                ExtractError::TooDeep,
                "the document nests elements more than 512 deep",
            ),
            (
                ExtractError::UnevenMatches {
                    agent: "a".into(),
                    extract: "{}".into(),
                },
                "Got an uneven number of matches for a: {}",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
        assert_eq!(
            ExprError::TooLong.to_string(),
            "is longer than 2000 characters"
        );
    }
}
