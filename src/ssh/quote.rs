//! Shell quoting: the one function through which every value reaches a remote command line.
//! Inventory fields are validated too, but a command line is built only from quoted words.

/// Quotes one word for POSIX sh: left bare when it is made only of characters no shell
/// treats specially, otherwise wrapped in single quotes (a single quote inside becomes
/// `'\''`).
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Quotes each word and joins them with spaces.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting_survives_a_real_shell() {
        let nasty = [
            "plain",
            "",
            "two words",
            "it's",
            "$(id)",
            "`id`",
            "a;b|c&d",
            "*",
            "~",
            "\"dq\"",
            "new\nline",
            "back\\slash",
            "'",
            "é ü",
            "-n",
        ];
        // printf '%s\0' WORDS... through sh must give back exactly the words.
        let line = format!("printf '%s\\0' {}", join(&nasty));
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        let mut got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect();
        assert_eq!(got.pop().as_deref(), Some(""), "output ends with a NUL");
        assert_eq!(got, nasty);
        assert_eq!(quote(""), "''");
        assert_eq!(quote("db-master-01"), "db-master-01");
    }
}
