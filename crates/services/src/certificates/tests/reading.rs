//! Reading: PEM text and its limits, the facts of a chain, trust bundles,
//! error codes.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};

use super::*;

#[test]
fn text_that_is_not_a_certificate_is_unreadable() {
    let key = key_pem(&KeyPair::generate().unwrap());
    let garbage =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    for chain in ["", "hello", garbage, unterminated, &key] {
        let error = validate_upload(chain, &key, "a.test", NOW, &[]).unwrap_err();
        assert_eq!(error.code(), "certificate_unreadable", "{chain}");
        assert!(facts(chain).is_err());
    }
    let error = validate_upload("hello", &key, "a.test", NOW, &[]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the certificate could not be read: ")
    );
}

#[test]
fn a_chain_holds_at_most_ten_certificates() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);
    let chain = pem_of(&leaf) + &pem_of(&pki.intermediate).repeat(10);

    let error = validate_upload(&chain, &key_pem(&key), "a.test", NOW, &[]).unwrap_err();

    assert_eq!(
        error,
        CertificateError::Unreadable("a chain may hold at most 10 certificates".into())
    );
}

#[test]
fn facts_reads_an_issued_chain() {
    let pki = pki();
    let leaf = pki.leaf(&["b.test", "A.test"], &KeyPair::generate().unwrap());
    let crlf = pki.chain(&leaf).replace('\n', "\r\n");

    let facts = facts(&format!("\r\n{crlf}\r\n")).unwrap();

    assert_eq!(facts.names, ["b.test", "a.test"]);
    assert_eq!(facts.serial, "0abcde");
    assert_eq!(facts.issuer, "Test Intermediate 1a2b3c");
    assert_eq!(facts.not_after, NOT_AFTER);
    assert_eq!(facts.chain_pem, pki.chain(&leaf));
    assert_eq!(facts.leaf_der, leaf.der().to_vec());
}

#[test]
fn indented_pem_is_read() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);
    let indent = |text: String| {
        text.lines()
            .map(|l| format!("  {l}  \n"))
            .collect::<String>()
    };

    let uploaded = validate_upload(
        &indent(pki.chain(&leaf)),
        &indent(key_pem(&key)),
        "a.test",
        NOW,
        &pki.roots(),
    )
    .unwrap();

    assert_eq!(uploaded.facts.chain_pem, pki.chain(&leaf));
}

#[test]
fn an_issuer_without_common_name_is_named_in_full() {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Example CA");
    name.push(DnType::CountryName, "NL");
    let pki = pki_named(name);
    let leaf = pki.leaf(&["a.test"], &KeyPair::generate().unwrap());

    let facts = facts(&pem_of(&leaf)).unwrap();

    assert_eq!(facts.issuer, "O=Example CA, C=NL");
}

#[test]
fn serials_lose_their_sign_padding() {
    assert_eq!(serial_hex(&[0x00, 0x8a, 0x01]), "8a01");
    assert_eq!(serial_hex(&[0x0a, 0xbc]), "0abc");
    assert_eq!(serial_hex(&[0x00]), "00");
    let pki = pki();
    let mut params = CertificateParams::new(vec!["a.test".to_owned()]).unwrap();
    params.serial_number = Some(SerialNumber::from(vec![0x8a, 0x01]));
    let leaf = params
        .signed_by(&KeyPair::generate().unwrap(), &pki.issuer)
        .unwrap();

    assert_eq!(facts(&pem_of(&leaf)).unwrap().serial, "8a01");
}

#[test]
fn roots_are_read_from_a_bundle() {
    let pki = pki();
    let bundle = pem_of(&pki.root) + &pem_of(&pki.intermediate);

    let roots = roots_from_pem(bundle.as_bytes()).unwrap();

    assert_eq!(
        roots,
        [pki.root.der().clone(), pki.intermediate.der().clone()]
    );
    assert_eq!(
        roots_from_pem(b"nothing").unwrap_err().code(),
        "certificate_unreadable"
    );
}

#[test]
fn every_error_has_its_code() {
    let at = NOW;
    let codes = [
        (
            CertificateError::Unreadable(String::new()),
            "certificate_unreadable",
        ),
        (
            CertificateError::KeyUnreadable(String::new()),
            "key_unreadable",
        ),
        (
            CertificateError::KeyUnsupported(String::new()),
            "key_unsupported",
        ),
        (CertificateError::KeyMismatch, "key_mismatch"),
        (
            CertificateError::Expired { not_after: at },
            "certificate_expired",
        ),
        (
            CertificateError::NotYetValid { not_before: at },
            "certificate_not_yet_valid",
        ),
        (
            CertificateError::NameMismatch {
                domain: "a.test".into(),
                names: vec![],
            },
            "certificate_name_mismatch",
        ),
        (
            CertificateError::IncompleteChain(String::new()),
            "certificate_chain_incomplete",
        ),
    ];
    for (error, code) in codes {
        assert_eq!(error.code(), code);
    }
    let nameless = CertificateError::NameMismatch {
        domain: "a.test".into(),
        names: vec![],
    };
    assert_eq!(
        nameless.to_string(),
        "the certificate is for no domain name, not a.test"
    );
}
