//! CSS selectors on XML documents (Huginn runs them through Nokogiri, which translates
//! CSS into XPath). muninn's CSS engine works on the HTML tree only, so for xml a simple
//! selector is translated into XPath the same way: tag names (or `*`), `#id`, `.class`,
//! `[attr]`, `[attr="value"]`, with the descendant (space) and child (`>`) combinators.
//! Anything else (pseudo-classes, `,`, `+`, `~`) is refused at save with a message that
//! says to use `xpath`.

use super::error::CssOnXmlError;

/// The XPath equal to `css` on an XML document.
pub fn to_xpath(css: &str) -> Result<String, CssOnXmlError> {
    let spaced = css.replace('>', " > ");
    let mut out = String::new();
    let mut axis = "//";
    for token in spaced.split_whitespace() {
        if token == ">" {
            axis = "/";
            continue;
        }
        if token.contains([':', ',', '+', '~', '(']) {
            return Err(CssOnXmlError::Unsupported(
                "pseudo-classes or other combinators",
            ));
        }
        out.push_str(axis);
        axis = "//";
        out.push_str(&compound(token).map_err(CssOnXmlError::Unsupported)?);
    }
    if out.is_empty() {
        return Err(CssOnXmlError::Empty);
    }
    Ok(out)
}

/// One compound selector (`tag#id.class[attr="v"]`) as an XPath step; `Err`: what it
/// uses that the translation does not take.
fn compound(token: &str) -> Result<String, &'static str> {
    let name_end = token.find(['#', '.', '[']).unwrap_or(token.len());
    let tag = &token[..name_end];
    let mut step = if tag.is_empty() {
        "*".to_string()
    } else {
        tag.to_string()
    };
    let mut rest = &token[name_end..];
    while !rest.is_empty() {
        let kind = rest.as_bytes()[0];
        if kind == b'[' {
            let end = rest.find(']').ok_or("an unclosed [")?;
            let inner = &rest[1..end];
            match inner.split_once('=') {
                Some((k, v)) => {
                    let v = v.trim_matches(['"', '\'']);
                    if v.contains('\'') || k.contains(['~', '|', '^', '$', '*']) {
                        return Err("attribute operators other than =");
                    }
                    step.push_str(&format!("[@{}='{v}']", k.trim()));
                }
                None => step.push_str(&format!("[@{}]", inner.trim())),
            }
            rest = &rest[end + 1..];
            continue;
        }
        let body = &rest[1..];
        let end = body.find(['#', '.', '[']).unwrap_or(body.len());
        let word = &body[..end];
        if word.is_empty() || word.contains('\'') {
            return Err("an empty or quoted name");
        }
        if kind == b'#' {
            step.push_str(&format!("[@id='{word}']"));
        } else {
            step.push_str(&format!(
                "[contains(concat(' ', normalize-space(@class), ' '), ' {word} ')]"
            ));
        }
        rest = &body[end..];
    }
    Ok(step)
}
