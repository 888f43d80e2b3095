//! The checks of an upload, in their order: key, validity, names, chain.

use rcgen::KeyPair;
use time::macros::datetime;

use super::*;

#[test]
fn a_valid_upload_passes_with_its_facts() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["A.test", "www.a.test"], &key);

    let uploaded = pki.upload(&leaf, &key_pem(&key), "a.test").unwrap();

    let facts = &uploaded.facts;
    assert_eq!(facts.names, ["a.test", "www.a.test"]);
    assert_eq!(facts.serial, "0abcde");
    assert_eq!(facts.issuer, "Test Intermediate 1a2b3c");
    assert_eq!((facts.not_before, facts.not_after), (NOT_BEFORE, NOT_AFTER));
    assert_eq!(facts.chain_pem, pki.chain(&leaf));
    assert_eq!(facts.leaf_der, leaf.der().to_vec());
    assert!(uploaded.covers_www);
    assert_eq!(uploaded.key_pem, key_pem(&key));
    assert!(!format!("{uploaded:?}").contains("PRIVATE KEY"));
}

#[test]
fn www_is_reported_not_required() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);

    let uploaded = pki.upload(&leaf, &key_pem(&key), "A.test.").unwrap();

    assert!(!uploaded.covers_www);
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);

    let error = pki.upload(&leaf, &key_pem(&other), "a.test").unwrap_err();

    assert_eq!(error, CertificateError::KeyMismatch);
    assert_eq!(error.code(), "key_mismatch");
    assert_eq!(
        error.to_string(),
        "the private key does not belong to this certificate"
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let not_after = datetime!(2026-01-02 10:00 UTC);
    let leaf = pki.leaf_valid(&["a.test"], &key, NOT_BEFORE, not_after);

    let error = pki.upload(&leaf, &key_pem(&key), "a.test").unwrap_err();

    assert_eq!(error, CertificateError::Expired { not_after });
    assert_eq!(error.code(), "certificate_expired");
    assert_eq!(
        error.to_string(),
        "the certificate expired on 2026-01-02 (UTC)"
    );
}

#[test]
fn a_certificate_not_yet_valid_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let not_before = datetime!(2026-03-02 0:00 UTC);
    let leaf = pki.leaf_valid(&["a.test"], &key, not_before, NOT_AFTER);

    let error = pki.upload(&leaf, &key_pem(&key), "a.test").unwrap_err();

    assert_eq!(error, CertificateError::NotYetValid { not_before });
    assert_eq!(error.code(), "certificate_not_yet_valid");
    assert_eq!(
        error.to_string(),
        "the certificate is not valid before 2026-03-02 (UTC)"
    );
}

#[test]
fn a_certificate_for_other_names_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test", "www.a.test"], &key);

    let error = pki
        .upload(&leaf, &key_pem(&key), "example.test")
        .unwrap_err();

    assert_eq!(error.code(), "certificate_name_mismatch");
    assert_eq!(
        error.to_string(),
        "the certificate is for a.test, www.a.test, not example.test"
    );
}

#[test]
fn a_wildcard_covers_one_label_only() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["*.a.test"], &key);
    let key = key_pem(&key);

    let shop = pki.upload(&leaf, &key, "shop.a.test").unwrap();
    assert!(!shop.covers_www);
    for domain in ["a.b.a.test", "a.test", "b.test"] {
        let error = pki.upload(&leaf, &key, domain).unwrap_err();
        assert_eq!(error.code(), "certificate_name_mismatch", "{domain}");
    }
    let apex = pki.leaf(&["a.test", "*.a.test"], &KeyPair::generate().unwrap());
    assert!(verify::covers(
        &facts(&pem_of(&apex)).unwrap().names,
        "www.a.test"
    ));
}

#[test]
fn the_first_failure_wins() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let expired = datetime!(2026-02-01 0:00 UTC);
    let leaf = pki.leaf_valid(&["a.test"], &key, NOT_BEFORE, expired);
    let other = key_pem(&KeyPair::generate().unwrap());

    let mismatch = pki.upload(&leaf, &other, "b.test").unwrap_err();
    let expiry = pki.upload(&leaf, &key_pem(&key), "b.test").unwrap_err();
    let name = validate_upload(&pem_of(&leaf), &key_pem(&key), "b.test", NOW, &[]);

    assert_eq!(mismatch, CertificateError::KeyMismatch);
    assert_eq!(expiry.code(), "certificate_expired");
    assert_eq!(name.unwrap_err().code(), "certificate_expired");
}

#[test]
fn a_missing_intermediate_leaves_the_chain_incomplete() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);

    let error =
        validate_upload(&pem_of(&leaf), &key_pem(&key), "a.test", NOW, &pki.roots()).unwrap_err();

    assert_eq!(error.code(), "certificate_chain_incomplete");
    assert_eq!(
        error.to_string(),
        "the chain does not lead to a trusted root: an intermediate certificate is missing \
         or the issuer is not trusted"
    );
}

#[test]
fn an_unknown_root_leaves_the_chain_incomplete() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);

    let untrusted = validate_upload(&pki.chain(&leaf), &key_pem(&key), "a.test", NOW, &[]);
    let stranger = pki_named(common_name("Stranger"));
    let other_root = stranger.roots();
    let foreign = validate_upload(
        &pki.chain(&leaf),
        &key_pem(&key),
        "a.test",
        NOW,
        &other_root,
    );

    assert_eq!(
        untrusted.unwrap_err().code(),
        "certificate_chain_incomplete"
    );
    assert_eq!(foreign.unwrap_err().code(), "certificate_chain_incomplete");
}

#[test]
fn a_chain_with_its_root_still_verifies() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);
    let chain = pki.chain(&leaf) + &pem_of(&pki.root);

    let uploaded = validate_upload(&chain, &key_pem(&key), "a.test", NOW, &pki.roots()).unwrap();

    assert_eq!(uploaded.facts.chain_pem, chain);
}
