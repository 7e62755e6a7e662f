//! The parser never panics, whatever bytes it is given, and what it accepts is sane.

use keybuzz_console::inventory::{Fleet, RuleSet, is_host_name, parse};
use proptest::prelude::*;
use std::path::Path;

/// Bytes biased towards the shapes that matter: tabs, line ends, BOM pieces, comments.
fn tsv_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\t".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"#".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"HOSTNAME\tIP_PRIVEE\tROLE".to_vec()),
        Just(b"10.0.0.1".to_vec()),
        Just("é".as_bytes().to_vec()),
        "[a-z0-9.;$ -]{0,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(Path::new("fuzz.tsv"), &bytes);
    }

    #[test]
    fn accepted_files_hold_only_valid_hosts(bytes in tsv_like()) {
        match parse(Path::new("fuzz.tsv"), &bytes) {
            Ok(inv) => {
                for h in &inv.hosts {
                    prop_assert!(is_host_name(&h.hostname));
                    prop_assert!(!h.role.is_empty());
                }
                let _ = Fleet::new(&inv, None, &RuleSet::builtin());
            }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                for p in &e.problems {
                    prop_assert!(p.to_string().starts_with("fuzz.tsv"));
                }
            }
        }
    }
}
