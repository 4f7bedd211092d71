//! PURE. `application/x-www-form-urlencoded` decoding, shared by the two places text arrives
//! encoded: Slack's interaction bodies (`slack::signature`) and the IAM policy documents some
//! CloudTrail records carry URL-encoded (`event::kind`).

/// `%XX` and `+` decoded; `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_pluses_decode_and_broken_ones_do_not() {
        assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%7B%22x%22%7D").as_deref(), Some("{\"x\"}"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%E6%97%A5").as_deref(), Some("日"));
    }
}
