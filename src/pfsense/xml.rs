//! pfSense's config.xml parser rules (`src/etc/inc/xmlparse.inc`), for the parts awsha reads:
//! one streaming pass over the whole file that checks it and finds the sections awsha needs, list
//! tags kept as arrays, any other element refused when repeated under one parent, and text
//! HTML-entity-decoded after XML decoding, as pfSense's `cData()` does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::base::text::shorten;

/// Real configs run to a few MB; anything this large is not a pfSense config.
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// The file's text, read bounded: a regular file, at most `MAX_CONFIG_BYTES`, UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    // A device or FIFO would be read forever (or block): pfSense's config is a regular file.
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if meta.len() > MAX_CONFIG_BYTES {
        bail!(
            "{}: {} bytes is larger than any pfSense config (limit {MAX_CONFIG_BYTES})",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    // Bounded even if the file grows between the size check and the read.
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1), &mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        bail!(
            "{}: larger than any pfSense config (limit {MAX_CONFIG_BYTES} bytes)",
            path.display()
        );
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(text)
}

/// The top-level sections of `<pfsense>` that awsha reads.
pub const SECTIONS: [&str; 3] = ["interfaces", "virtualip", "installedpackages"];

/// One streaming pass over the whole document (xmlparser: no tree, no copies): checks that it is
/// well-formed XML with a `<pfsense>` root and no DTD, and returns the text of each of
/// `SECTIONS` found directly under the root, in document order.
pub fn wanted_sections(text: &str) -> Result<Vec<&str>, String> {
    use xmlparser::{ElementEnd, Token};
    let mut open: Vec<&str> = Vec::new();
    let mut pending: (&str, usize) = ("", 0);
    let mut section_start: Option<usize> = None;
    let mut out = Vec::new();
    let mut root_seen = false;
    let is_wanted = |name: &str| SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(name));
    for token in xmlparser::Tokenizer::from(text) {
        match token.map_err(|e| format!("malformed XML: {e}"))? {
            Token::DtdStart { .. } | Token::EmptyDtd { .. } | Token::EntityDeclaration { .. } => {
                return Err("malformed XML: a DTD is not allowed".into());
            }
            Token::ElementStart { prefix, local, span } => {
                let name = if prefix.is_empty() {
                    local.as_str()
                } else {
                    span.as_str().trim_start_matches('<')
                };
                if open.is_empty() {
                    if root_seen {
                        return Err("malformed XML: more than one root element".into());
                    }
                    if !local.as_str().eq_ignore_ascii_case("pfsense") {
                        return Err(format!(
                            "the root element is <{}>, not <pfsense>",
                            shorten(local.as_str())
                        ));
                    }
                    root_seen = true;
                }
                pending = (name, span.start());
            }
            Token::ElementEnd {
                end: ElementEnd::Open, ..
            } => {
                if open.len() == 1 && is_wanted(pending.0) {
                    section_start = Some(pending.1);
                }
                open.push(pending.0);
            }
            Token::ElementEnd {
                end: ElementEnd::Empty,
                span,
            } if open.len() == 1 && is_wanted(pending.0) => {
                out.push(&text[pending.1..span.end()]);
            }
            Token::ElementEnd {
                end: ElementEnd::Close(prefix, local),
                span,
            } => {
                let name = if prefix.is_empty() {
                    local.as_str()
                } else {
                    &text[prefix.start()..local.end()]
                };
                match open.pop() {
                    Some(expected) if expected == name => {}
                    Some(expected) => {
                        return Err(format!(
                            "malformed XML: </{}> closes <{}> at byte {}",
                            shorten(name),
                            shorten(expected),
                            span.start()
                        ));
                    }
                    None => return Err(format!("malformed XML: </{}> with nothing open", shorten(name))),
                }
                if open.len() == 1
                    && let Some(start) = section_start.take()
                {
                    out.push(&text[start..span.end()]);
                }
            }
            Token::Text { text: t } if open.is_empty() && !t.as_str().trim().is_empty() => {
                return Err("malformed XML: text outside the root element".into());
            }
            _ => {}
        }
    }
    match (root_seen, open.last()) {
        (false, _) => Err("malformed XML: no root element".into()),
        (true, Some(name)) => Err(format!(
            "malformed XML: unexpected end of file inside <{}>",
            shorten(name)
        )),
        (true, None) => Ok(out),
    }
}

/// pfSense's list tags: the only elements that may repeat under one parent.
const LIST_TAGS: &[&str] = &[
    "acls",
    "alias",
    "aliasurl",
    "allowedip",
    "allowedhostname",
    "authserver",
    "bridged",
    "ca",
    "cacert",
    "cert",
    "checkipservice",
    "child",
    "columnitem",
    "config",
    "crl",
    "dhcpdv6range",
    "dhcpdv6staticmap",
    "disk",
    "dnsserver",
    "dnsupdate",
    "domainoverrides",
    "dyndns",
    "earlyshellcmd",
    "element",
    "encryption-algorithm-option",
    "field",
    "fieldname",
    "hash-algorithm-option",
    "gateway_item",
    "gateway_group",
    "gif",
    "gre",
    "group",
    "hosts",
    "item",
    "key",
    "lagg",
    "lbaction",
    "lbpool",
    "l7rules",
    "lbprotocol",
    "member",
    "menu",
    "mobilekey",
    "monitor_type",
    "mount",
    "npt",
    "ntpd",
    "onetoone",
    "openvpn-server",
    "openvpn-client",
    "openvpn-csc",
    "option",
    "package",
    "passthrumac",
    "phase1",
    "phase2",
    "ppp",
    "pppoe",
    "priv",
    "proxyarpnet",
    "pool",
    "qinqentry",
    "queue",
    "pages",
    "pipe",
    "radnsserver",
    "roll",
    "route",
    "row",
    "rrddatafile",
    "rule",
    "schedule",
    "service",
    "servernat",
    "servers",
    "serversdisabled",
    "shellcmd",
    "staticmap",
    "subqueue",
    "switch",
    "swport",
    "timerange",
    "tunnel",
    "user",
    "vip",
    "virtual_server",
    "vlan",
    "vlangroup",
    "winsserver",
    "wolentry",
    "widget",
    "xmldatafile",
];

fn is_list_tag(name: &str) -> bool {
    LIST_TAGS.contains(&name)
}

/// The named children of `node`, refusing a repeat of any of them (pfSense refuses to load such a
/// file: "cannot occur more than once").
pub fn children_once<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    names: &[&str],
) -> Result<HashMap<String, roxmltree::Node<'a, 'i>>, String> {
    let mut found = HashMap::new();
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name().to_ascii_lowercase();
        if names.contains(&name.as_str()) && found.insert(name.clone(), child).is_some() {
            return Err(format!("<{name}> occurs more than once"));
        }
    }
    Ok(found)
}

pub fn elements_named<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case(name))
}

/// The text children of a row-like element, by lower-cased name; a repeated non-list element is
/// an error, as in pfSense; nested elements (rowhelper rows) are skipped.
pub fn leaf_fields(node: roxmltree::Node) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name().to_ascii_lowercase();
        if is_list_tag(&name) {
            continue;
        }
        if out.contains_key(&name) {
            return Err(format!("<{name}> occurs more than once"));
        }
        out.insert(name, element_text(child));
    }
    Ok(out)
}

/// XML-decoded text (roxmltree), trimmed, then entity-decoded again as pfSense's `cData()` does.
fn element_text(node: roxmltree::Node) -> String {
    let raw: String = node
        .children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    decode_entities(raw.trim())
}

/// PHP's `html_entity_decode(…, ENT_QUOTES|ENT_SUBSTITUTE|ENT_XML1)`: the five XML entities and
/// numeric references; anything else stays as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = name.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    n.map(|n| char::from_u32(n).filter(|c| *c != '\0').unwrap_or('\u{FFFD}'))
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_entities_after_xml_like_php() {
        assert_eq!(decode_entities("a &amp;amp; b"), "a &amp; b");
        assert_eq!(decode_entities("&lt;x&gt; &#65;&#x42; &quot;&apos;"), "<x> AB \"'");
        assert_eq!(decode_entities("AT&T & co &nbsp;"), "AT&T & co &nbsp;");
        assert_eq!(decode_entities("&#0;"), "\u{FFFD}");
    }
}
