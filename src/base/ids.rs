//! AWS resource ids: checked before any of them reaches a request or a shell.

use crate::base::text::shorten;

/// `<prefix>` followed by 8 or 17 hex digits, any case; returned in lower case (`rtb-`,
/// `eipalloc-`, `eni-`, `i-`). `what` names the kind in the error.
pub fn check_id(text: &str, prefix: &str, what: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("missing".into());
    }
    let lower = text.to_ascii_lowercase();
    match lower.strip_prefix(prefix) {
        Some(hex) if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(lower),
        _ => Err(format!(
            "\"{}\" is not {what} ({prefix} followed by 8 or 17 hex digits)",
            shorten(text)
        )),
    }
}

/// An ENI id as EC2 and IMDS give it; checked so that a broken IMDS answer never reaches a
/// request.
pub fn is_eni_id(text: &str) -> bool {
    check_id(text, "eni-", "").is_ok()
}

/// An instance id: `i-` followed by 8 or 17 hex digits.
pub fn is_instance_id(text: &str) -> bool {
    check_id(text, "i-", "").is_ok()
}

/// A region name as AWS spells them (`us-east-1`, `us-gov-west-1`).
pub fn check_region(text: &str) -> Result<(), String> {
    let ok = text.len() <= 32
        && text.split('-').count() >= 3
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an AWS region name (like us-east-1)",
            shorten(text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_any_case_used_lower() {
        assert_eq!(
            check_id("RTB-0123ABCD", "rtb-", "a route table id").unwrap(),
            "rtb-0123abcd"
        );
        assert!(
            check_id("rtb-0123", "rtb-", "x")
                .unwrap_err()
                .contains("8 or 17 hex digits")
        );
        assert_eq!(check_id("", "rtb-", "x").unwrap_err(), "missing");
        assert!(is_eni_id("eni-0123456789abcdef0") && !is_eni_id("eni-xyz"));
        assert!(is_instance_id("i-0123456789abcdef0") && !is_instance_id("i-01"));
    }
}
