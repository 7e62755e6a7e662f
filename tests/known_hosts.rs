//! The host-key verifier against keys, hashed names and certificates made by the real
//! `ssh-keygen`, with OpenSSH's rules.

use keybuzz_console::ssh::known_hosts::{KnownHosts, Verdict};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::{Certificate, PublicKey};
use std::path::{Path, PathBuf};
use std::process::Command;

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (openssh-client) is needed")
        .success();
    assert!(ok);
    path
}

fn pubkey(path: &Path) -> PublicKey {
    PublicKey::read_openssh_file(path.with_extension("pub")).unwrap()
}

fn line(path: &Path) -> String {
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn presented(k: &PublicKey) -> PublicKeyOrCertificate {
    PublicKeyOrCertificate::from(k.clone())
}

#[test]
fn plain_entries_patterns_ports_and_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let a = keygen(dir.path(), "a");
    let b = keygen(dir.path(), "b");
    let kh = dir.path().join("known_hosts");
    let text = format!(
        "# comment\n\
         db-01,10.0.0.1 {a}\n\
         [db-02]:2222 {a}\n\
         db-03\t{a_tab}\n\
         *.example.net,!evil.example.net {a}\n\
         \n",
        a = line(&a),
        a_tab = line(&a).replace(' ', "\t"),
    );
    std::fs::write(&kh, text).unwrap();
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    assert!(v.skipped.is_empty(), "{:?}", v.skipped);
    let ka = presented(&pubkey(&a));
    let kb = presented(&pubkey(&b));
    assert_eq!(v.check(&["db-01"], 22, &ka), Verdict::Trusted);
    assert_eq!(
        v.check(&["other", "10.0.0.1"], 22, &ka),
        Verdict::Trusted,
        "address alias"
    );
    assert_eq!(
        v.check(&["db-02"], 2222, &ka),
        Verdict::Trusted,
        "[host]:port"
    );
    assert!(
        matches!(v.check(&["db-02"], 22, &ka), Verdict::Unknown { .. }),
        "port 22 is not 2222"
    );
    assert_eq!(
        v.check(&["db-01"], 2200, &ka),
        Verdict::Trusted,
        "bare-name fallback for other ports"
    );
    assert_eq!(
        v.check(&["db-03"], 22, &ka),
        Verdict::Trusted,
        "tab separators"
    );
    assert_eq!(
        v.check(&["web.example.net"], 22, &ka),
        Verdict::Trusted,
        "glob"
    );
    assert!(
        matches!(
            v.check(&["evil.example.net"], 22, &ka),
            Verdict::Unknown { .. }
        ),
        "negation vetoes the line"
    );
    match v.check(&["db-01"], 22, &kb) {
        Verdict::Changed { expected, got } => {
            assert!(got.starts_with("ssh-ed25519 SHA256:"), "{got}");
            assert_eq!(expected.len(), 1);
            assert!(expected[0].contains("known_hosts:2"), "{expected:?}");
            assert!(!expected[0].contains(&got), "both fingerprints differ");
        }
        other => panic!("expected Changed, got {other:?}"),
    }
    match v.check(&["nobody"], 22, &kb) {
        Verdict::Unknown { key } => assert!(key.contains("SHA256:")),
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[test]
fn hashed_names_and_revoked_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = keygen(dir.path(), "a");
    let b = keygen(dir.path(), "b");
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "secret-host {}\n[secret-host]:2200 {}\n",
            line(&a),
            line(&a)
        ),
    )
    .unwrap();
    let ok = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let hashed = std::fs::read_to_string(&kh).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("secret-host"),
        "{hashed}"
    );
    std::fs::write(&kh, format!("{hashed}@revoked * {}\n", line(&b))).unwrap();
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    assert_eq!(
        v.check(&["secret-host"], 22, &presented(&pubkey(&a))),
        Verdict::Trusted
    );
    assert_eq!(
        v.check(&["secret-host"], 2200, &presented(&pubkey(&a))),
        Verdict::Trusted
    );
    assert!(matches!(
        v.check(&["secret-hosts"], 22, &presented(&pubkey(&a))),
        Verdict::Unknown { .. }
    ));
    match v.check(&["anything"], 22, &presented(&pubkey(&b))) {
        Verdict::Revoked { at, .. } => assert!(at.ends_with(":3"), "{at}"),
        other => panic!("expected Revoked, got {other:?}"),
    }
}

#[test]
fn host_certificates_need_a_trusted_ca_and_the_right_principal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "ca");
    let other_ca = keygen(dir.path(), "other-ca");
    let host = keygen(dir.path(), "host");
    let sign = |ca: &Path, principal: &str, user_cert: bool| -> Certificate {
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-q")
            .arg("-s")
            .arg(ca)
            .args(["-I", "test", "-n", principal]);
        if !user_cert {
            cmd.arg("-h");
        }
        let st = cmd.arg(host.with_extension("pub")).status().unwrap();
        assert!(st.success());
        let cert_path = dir.path().join("host-cert.pub");
        Certificate::read_file(&cert_path).unwrap()
    };
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, format!("@cert-authority *.lab {}\n", line(&ca))).unwrap();
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    let good = PublicKeyOrCertificate::from(sign(&ca, "db.lab", false));
    assert_eq!(v.check(&["db.lab"], 22, &good), Verdict::Trusted);
    assert!(
        matches!(
            v.check(&["db.other"], 22, &good),
            Verdict::BadCertificate { .. }
        ),
        "CA not for this host"
    );
    let wrong_principal = PublicKeyOrCertificate::from(sign(&ca, "web.lab", false));
    match v.check(&["db.lab"], 22, &wrong_principal) {
        Verdict::BadCertificate { reason } => assert!(reason.contains("principals"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let untrusted = PublicKeyOrCertificate::from(sign(&other_ca, "db.lab", false));
    assert!(matches!(
        v.check(&["db.lab"], 22, &untrusted),
        Verdict::BadCertificate { .. }
    ));
    let user = PublicKeyOrCertificate::from(sign(&ca, "db.lab", true));
    assert!(matches!(
        v.check(&["db.lab"], 22, &user),
        Verdict::BadCertificate { .. }
    ));
    // A revoked CA revokes what it signed.
    std::fs::write(
        &kh,
        format!(
            "@cert-authority *.lab {}\n@revoked * {}\n",
            line(&ca),
            line(&ca)
        ),
    )
    .unwrap();
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    assert!(matches!(
        v.check(&["db.lab"], 22, &good),
        Verdict::Revoked { .. }
    ));
}

#[test]
fn accept_new_appends_and_recorded_types_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = keygen(dir.path(), "a");
    let kh = dir.path().join("sub/known_hosts");
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    v.append(&["new-host", "10.1.1.1"], 2222, &pubkey(&a))
        .unwrap();
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.starts_with("[new-host]:2222,[10.1.1.1]:2222 ssh-ed25519 AAAA"),
        "{text}"
    );
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    assert_eq!(
        v.check(&["new-host"], 2222, &presented(&pubkey(&a))),
        Verdict::Trusted
    );
    let rsa = dir.path().join("rsa");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
            .arg(&rsa)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(&kh, format!("rsa-host {}\n", line(&rsa))).unwrap();
    let v = KnownHosts::load(std::slice::from_ref(&kh), kh.clone());
    let algs = v.preferred_algorithms(&["rsa-host"], 22);
    assert_eq!(algs[0].as_str(), "rsa-sha2-512", "{algs:?}");
    assert_eq!(algs[2].as_str(), "ssh-ed25519");
}
