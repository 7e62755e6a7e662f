//! Field checks. Host names and user names end up on SSH command lines and in remote shell
//! arguments, so they are held to the strict RFC 1123 / POSIX shapes: nothing that a shell
//! could read as a metacharacter can pass.

/// RFC 1123 host name: dot-separated labels of ASCII letters, digits and hyphens, no label
/// starting or ending with a hyphen, labels of 1..=63 characters, 253 characters at most.
pub fn is_host_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Why a host name is not valid, in words a person can act on.
pub fn host_name_problem(s: &str) -> String {
    if s.len() > 253 {
        return "is longer than 253 characters".into();
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return format!("contains {c:?}, which a host name cannot");
    }
    if s.split('.').any(|l| l.is_empty()) {
        return "has an empty label (two dots in a row, or a leading or trailing dot)".into();
    }
    if s.split('.').any(|l| l.starts_with('-') || l.ends_with('-')) {
        return "has a label starting or ending with '-'".into();
    }
    "has a label longer than 63 characters".into()
}

/// A POSIX-portable login name, as `useradd` accepts by default.
pub fn is_user_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if s.len() > 32 || !(first.is_ascii_lowercase() || first == '_') {
        return false;
    }
    let body = s.strip_suffix('$').unwrap_or(s);
    body.chars()
        .skip(1)
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in [
            "db-master-01",
            "a",
            "redis1.example.net",
            "k8s-worker-05",
            "x1",
        ] {
            assert!(is_host_name(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "-db",
            "db-",
            "db..x",
            ".db",
            "db_01",
            "db 01",
            "db;rm",
            "$(id)",
            "db`x`",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_host_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn host_name_problems_name_the_cause() {
        assert!(host_name_problem("db;rm").contains("';'"));
        assert!(host_name_problem("db..x").contains("empty label"));
        assert!(host_name_problem("-db").contains("starting or ending"));
    }

    #[test]
    fn user_names() {
        for ok in ["root", "debian", "_svc", "deploy-01", "ops$"] {
            assert!(is_user_name(ok), "{ok} should be valid");
        }
        for bad in ["", "Root", "1ops", "a b", "ops;id", "r$oot"] {
            assert!(!is_user_name(bad), "{bad:?} should be invalid");
        }
    }
}
