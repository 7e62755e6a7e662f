//! Case-insensitive shell-style globs (`*`, `?`), used by cluster rules and host selectors.

/// True when `text` matches `pattern`; `*` matches any run of characters, `?` exactly one.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// True when the pattern has glob characters (a plain word is matched exactly).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("redis-*", "redis-01"));
        assert!(matches("REDIS-0?", "redis-01"));
        assert!(matches("*patroni*", "patroni-node"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("redis-*", "queue-01"));
        assert!(!matches("redis-0?", "redis-010"));
        assert!(!matches("a*b", "axxbc"));
        assert!(matches("postgres", "Postgres"));
        assert!(!matches("postgres", "postgres-x"));
    }
}
