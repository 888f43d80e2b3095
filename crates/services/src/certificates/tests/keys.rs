//! The private key formats: each accepted one with a leaf for its public
//! key, each refused one with the reason the customer reads. The keys are
//! made here when the tests run, in the forms OpenSSL writes.

use std::sync::OnceLock;

use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
    PublicKeyData,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use rsa::pkcs1::{
    DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _, LineEnding,
};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rustls::pki_types::PrivateKeyDer;
use x509_parser::asn1_rs::{Any, FromDer as _};

use super::der;
use super::*;

/// A real RSA key of 1024 or 2048 bits, made once per test binary (making
/// one takes up to a second).
fn rsa_key(bits: usize) -> &'static rsa::RsaPrivateKey {
    static RSA_1024: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    static RSA_2048: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    let cell = match bits {
        1024 => &RSA_1024,
        2048 => &RSA_2048,
        _ => unreachable!("no test needs a real RSA key of {bits} bits"),
    };
    cell.get_or_init(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap())
}

/// PKCS#1 PEM (`RSA PRIVATE KEY`), as `openssl genrsa -traditional` writes.
fn rsa_pkcs1(key: &rsa::RsaPrivateKey) -> String {
    key.to_pkcs1_pem(LineEnding::LF)
        .unwrap()
        .as_str()
        .to_owned()
}

/// The rcgen key pair of an RSA key, to sign a leaf for its public key.
fn rsa_key_pair(key: &rsa::RsaPrivateKey) -> KeyPair {
    KeyPair::try_from(key.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

/// An RSA key with an 8192-bit modulus (the largest accepted) as PKCS#1
/// PEM. Making a real one takes over a minute, so its two factors are
/// random odd 4096-bit numbers, not primes: reading a key, the `rsa` crate
/// checks that the factors multiply to the modulus and that
/// d·e ≡ 1 mod (factor − 1) for each, which holds here as for a real key,
/// never that they are prime. Useless for RSA itself; read exactly as a
/// real key is.
fn rsa_8192_pkcs1() -> String {
    let exponent = rsa::BigUint::from_bytes_be(&[0x01, 0x00, 0x01]);
    loop {
        let factor = || {
            let mut bytes = random(512);
            bytes[0] |= 0xc0; // the product has all 8192 bits
            bytes[511] |= 0x01;
            rsa::BigUint::from_bytes_be(&bytes)
        };
        // Retried when e divides a factor less one (no d exists) or the
        // factors share a divisor (no CRT coefficient for PKCS#1).
        if let Ok(key) = rsa::RsaPrivateKey::from_p_q(factor(), factor(), exponent.clone())
            && let Ok(pem) = key.to_pkcs1_pem(LineEnding::LF)
        {
            return pem.as_str().to_owned();
        }
    }
}

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SystemRandom::new().fill(&mut bytes).unwrap();
    bytes
}

/// The privateKey OCTET STRING of a PKCS#8 key: for ECDSA, a SEC1 key
/// (ring's carries no curve parameters).
fn pkcs8_inner(der: &[u8]) -> &[u8] {
    let (_, info) = Any::from_der(der).unwrap();
    let (rest, _version) = Any::from_der(info.data).unwrap();
    let (rest, _algorithm) = Any::from_der(rest).unwrap();
    Any::from_der(rest).unwrap().1.data
}

/// A P-256 key made by rcgen on ring (PKCS#8), and the SEC1 forms of it.
struct P256(KeyPair);

impl P256 {
    fn generate() -> Self {
        Self(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap())
    }

    /// The private scalar: the second item of the SEC1 ECPrivateKey inside
    /// ring's PKCS#8.
    fn scalar(&self) -> Vec<u8> {
        let der = self.0.serialize_der();
        let (_, ec) = Any::from_der(pkcs8_inner(&der)).unwrap();
        let (rest, _version) = Any::from_der(ec.data).unwrap();
        Any::from_der(rest).unwrap().1.data.to_vec()
    }

    /// SEC1 ECPrivateKey DER as OpenSSL writes it: the curve named in
    /// `[0]`, then the public key in `[1]` unless `public` is false (as
    /// `openssl ec -no_public` leaves it out).
    fn sec1(&self, public: bool) -> Vec<u8> {
        let version = der::integer(1);
        let scalar = der::octet_string(&self.scalar());
        let curve = der::context(0, der::OID_P256);
        let point = der::context(1, &der::bit_string(self.0.public_key_raw()));
        match public {
            true => der::sequence(&[&version, &scalar, &curve, &point]),
            false => der::sequence(&[&version, &scalar, &curve]),
        }
    }

    /// What `openssl ecparam -name prime256v1 -genkey` prints: an
    /// `EC PARAMETERS` block naming the curve, then the SEC1 key.
    fn openssl_sec1_pem(&self) -> String {
        pem::encode("EC PARAMETERS", der::OID_P256)
            + &pem::encode("EC PRIVATE KEY", &self.sec1(true))
    }
}

/// An `ENCRYPTED PRIVATE KEY` as `openssl pkcs8 -topk8 -v2 aes-256-cbc`
/// writes, in shape only: an EncryptedPrivateKeyInfo naming PBES2 (its
/// parameters left out) over random bytes, not ciphertext. The label is
/// refused before anything is decoded.
fn pkcs8_encrypted_pem() -> String {
    let algorithm = der::sequence(&[der::OID_PBES2]);
    let info = der::sequence(&[&algorithm, &der::octet_string(&random(144))]);
    pem::encode("ENCRYPTED PRIVATE KEY", &info)
}

/// OpenSSL's legacy encrypted PEM (`openssl ec -aes256`), in shape only:
/// the `Proc-Type`/`DEK-Info` headers over random bytes, not ciphertext.
/// The header is refused before anything is decoded.
fn sec1_legacy_encrypted_pem() -> String {
    let iv: String = random(16).iter().map(|b| format!("{b:02X}")).collect();
    let headers = format!("-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,{iv}\n\n");
    pem::encode("EC PRIVATE KEY", &random(128)).replacen("-----\n", &headers, 1)
}

/// A PKCS#8 key on the curve P-521, which ring cannot make: well-formed
/// DER naming secp521r1, but random bytes of the right lengths for the
/// scalar and the point, not a key. The curve is refused before they are
/// read.
fn p521_pkcs8_pem() -> String {
    let mut scalar = random(66);
    scalar[0] &= 0x01;
    let point = [&[0x04][..], &random(132)].concat();
    let ec = der::sequence(&[
        &der::integer(1),
        &der::octet_string(&scalar),
        &der::context(1, &der::bit_string(&point)),
    ]);
    let algorithm = der::sequence(&[der::OID_EC, der::OID_P521]);
    let info = der::sequence(&[&der::integer(0), &algorithm, &der::octet_string(&ec)]);
    pem::encode("PRIVATE KEY", &info)
}

/// Uploads a leaf for `key` (signed with `signing_key`) with `key_text`.
fn upload_with(signing_key: &KeyPair, key_text: &str) -> Result<Uploaded, CertificateError> {
    let pki = pki();
    let leaf = pki.leaf(&["a.test"], signing_key);
    pki.upload(&leaf, key_text, "a.test")
}

#[test]
fn an_rsa_pkcs1_key_is_accepted() {
    let key = rsa_key(2048);
    let pkcs1 = rsa_pkcs1(key);

    let uploaded = upload_with(&rsa_key_pair(key), &pkcs1).unwrap();

    assert_eq!(uploaded.key_pem, pkcs1);
}

/// An RSA public key for rcgen to put in a leaf (ring, under rcgen, loads
/// no RSA key over 4096 bits).
struct RsaPublic(Vec<u8>);

impl PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

#[test]
fn an_rsa_key_of_8192_bits_is_accepted() {
    let pkcs1 = rsa_8192_pkcs1();
    let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(&pkcs1).unwrap();
    assert_eq!(rsa.n().bits(), 8192);
    let public = RsaPublic(rsa.to_public_key().to_pkcs1_der().unwrap().into_vec());
    let pki = pki();
    let leaf = pki.leaf(&["a.test"], &public);

    let uploaded = pki.upload(&leaf, &pkcs1, "a.test").unwrap();

    assert_eq!(uploaded.key_pem, pkcs1);
}

#[test]
fn an_rsa_pkcs8_key_is_accepted() {
    let key = rsa_key(2048);
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .as_str()
        .to_owned();

    let uploaded = upload_with(&rsa_key_pair(key), &pkcs8).unwrap();

    assert_eq!(uploaded.key_pem, pkcs8);
}

#[test]
fn a_sec1_key_is_accepted_without_its_parameters_block() {
    let key = P256::generate();
    let openssl = key.openssl_sec1_pem();

    let uploaded = upload_with(&key.0, &openssl).unwrap();

    assert!(
        uploaded
            .key_pem
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
    assert!(!uploaded.key_pem.contains("EC PARAMETERS"));
    assert!(openssl.ends_with(&uploaded.key_pem));
}

#[test]
fn a_sec1_key_without_curve_is_told_by_its_length() {
    let key = KeyPair::generate().unwrap();
    let PrivateKeyDer::Pkcs8(pkcs8) = pem::private_key(&key_pem(&key)).unwrap() else {
        panic!("rcgen writes PKCS#8");
    };
    let sec1 = pem::encode("EC PRIVATE KEY", pkcs8_inner(pkcs8.secret_pkcs8_der()));

    upload_with(&key, &sec1).unwrap();
}

#[test]
fn ed25519_and_p384_keys_are_accepted() {
    for alg in [&PKCS_ED25519, &PKCS_ECDSA_P384_SHA384] {
        let key = KeyPair::generate_for(alg).unwrap();

        upload_with(&key, &key_pem(&key)).unwrap();
    }
}

#[test]
fn a_key_for_another_rsa_certificate_is_a_mismatch() {
    let rsa = rsa_pkcs1(rsa_key(2048));

    let error = upload_with(&KeyPair::generate().unwrap(), &rsa).unwrap_err();

    assert_eq!(error, CertificateError::KeyMismatch);
}

#[test]
fn passphrase_protected_keys_are_refused() {
    let signing = KeyPair::generate().unwrap();
    for text in [pkcs8_encrypted_pem(), sec1_legacy_encrypted_pem()] {
        let error = upload_with(&signing, &text).unwrap_err();

        assert_eq!(error.code(), "key_unsupported");
        assert!(
            error.to_string().contains("remove the passphrase"),
            "{error}"
        );
    }
}

#[test]
fn a_sec1_key_without_its_public_key_is_refused_with_the_conversion() {
    let key = P256::generate();
    let no_public = pem::encode("EC PRIVATE KEY", &key.sec1(false));

    let error = upload_with(&key.0, &no_public).unwrap_err();

    assert_eq!(error.code(), "key_unsupported");
    assert!(
        error.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
        "{error}"
    );
}

#[test]
fn unsupported_curves_and_sizes_are_refused() {
    let signing = KeyPair::generate().unwrap();
    let p521 = upload_with(&signing, &p521_pkcs8_pem()).unwrap_err();
    let rsa1024 = upload_with(&signing, &rsa_pkcs1(rsa_key(1024))).unwrap_err();

    assert_eq!(
        p521.to_string(),
        "this private key is not supported: the key uses the elliptic curve P-521; \
         mPanel accepts P-256 and P-384"
    );
    assert_eq!(
        rsa1024.to_string(),
        "this private key is not supported: the RSA key has 1024 bits; \
         mPanel accepts RSA keys of 2048 to 8192 bits"
    );
}

#[test]
fn text_that_is_not_one_private_key_is_unreadable() {
    let pki = pki();
    let signing = KeyPair::generate().unwrap();
    let one = key_pem(&signing);
    let two = one.clone() + &key_pem(&KeyPair::generate().unwrap());
    let garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    let certificate = pem_of(&pki.intermediate) + &one;

    for text in ["", "secret", garbage, &two, &certificate] {
        let error = upload_with(&signing, text).unwrap_err();
        assert_eq!(error.code(), "key_unreadable", "{text}");
    }
}

#[test]
fn a_private_key_in_the_certificate_text_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);
    let chain = pki.chain(&leaf) + &key_pem(&key);

    let error = validate_upload(&chain, &key_pem(&key), "a.test", NOW, &pki.roots()).unwrap_err();

    assert_eq!(
        error.to_string(),
        "the certificate could not be read: the certificate text contains a private key; \
         paste the key in its own field"
    );
}
