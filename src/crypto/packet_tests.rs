//! Behaviour of packet sealing and opening for both schemes.

use std::time::Instant;

use super::*;

const SCHEMES: [PacketScheme; 2] = [PacketScheme::Ecies, PacketScheme::Hpke];

#[test]
fn seal_open_round_trip() {
    for scheme in SCHEMES {
        let (key, _) = PacketPrivateKey::generate(scheme).unwrap();
        assert_eq!(key.scheme(), scheme);
        let public = key.public_key();
        assert_eq!(public.scheme(), scheme);
        for len in [0usize, 1, 32, 116, 5000] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = public.seal(&plaintext, b"uuid-1").unwrap();
            assert_eq!(sealed.len(), plaintext.len() + min_payload_len(scheme));
            assert_eq!(key.open(&sealed, b"uuid-1").unwrap(), plaintext);
        }
    }
}

#[test]
fn min_payload_lengths() {
    assert_eq!(min_payload_len(PacketScheme::Ecies), 81);
    assert_eq!(min_payload_len(PacketScheme::Hpke), 48);
}

#[test]
fn key_text_round_trips() {
    for scheme in SCHEMES {
        let (key, text) = PacketPrivateKey::generate(scheme).unwrap();
        let again = PacketPrivateKey::from_text(scheme, &format!("\n {text} \n")).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public_text = key.public_key().to_text();
        let public = PacketPublicKey::from_text(scheme, &public_text).unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(public.to_text(), public_text);
        // A payload sealed to the re-parsed public key opens with the re-parsed private key.
        let sealed = public.seal(b"hello", b"").unwrap();
        assert_eq!(again.open(&sealed, b"").unwrap(), b"hello");
    }
}

#[test]
fn ecies_text_is_point_then_scalar() {
    let (key, text) = PacketPrivateKey::generate(PacketScheme::Ecies).unwrap();
    let raw = text::decode("t", &text).unwrap();
    assert_eq!(raw.len(), 97);
    let point = text::decode("t", &key.public_key().to_text()).unwrap();
    assert_eq!(&raw[..65], &point[..]);
}

#[test]
fn flipped_bytes_fail_to_decrypt() {
    for scheme in SCHEMES {
        let (key, _) = PacketPrivateKey::generate(scheme).unwrap();
        let sealed = key.public_key().seal(&[9u8; 116], b"aad").unwrap();
        // One position in the key part, the ciphertext, and the tag.
        for pos in [1, sealed.len() - 40, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[pos] ^= 0x01;
            assert!(
                matches!(key.open(&bad, b"aad"), Err(CryptoError::DecryptFailed)),
                "{scheme}: flip at {pos}"
            );
        }
    }
}

#[test]
fn wrong_key_fails_to_decrypt() {
    for scheme in SCHEMES {
        let (a, _) = PacketPrivateKey::generate(scheme).unwrap();
        let (b, _) = PacketPrivateKey::generate(scheme).unwrap();
        let sealed = a.public_key().seal(b"secret share", b"").unwrap();
        assert!(matches!(
            b.open(&sealed, b""),
            Err(CryptoError::DecryptFailed)
        ));
    }
}

#[test]
fn short_payloads_are_rejected() {
    for scheme in SCHEMES {
        let (key, _) = PacketPrivateKey::generate(scheme).unwrap();
        let min = min_payload_len(scheme);
        for len in [0, 1, min - 1] {
            match key.open(&vec![4u8; len], b"") {
                Err(CryptoError::PayloadTooShort { len: l, min: m }) => {
                    assert_eq!((l, m), (len, min))
                }
                other => panic!("{scheme}: expected PayloadTooShort, got {other:?}"),
            }
        }
        // Exactly the overhead is long enough to be tried (and then fails to authenticate).
        assert!(matches!(
            key.open(&vec![4u8; min], b""),
            Err(CryptoError::DecryptFailed)
        ));
    }
}

#[test]
fn hpke_binds_aad_and_ecies_ignores_it() {
    let (hpke, _) = PacketPrivateKey::generate(PacketScheme::Hpke).unwrap();
    let sealed = hpke.public_key().seal(b"share", b"packet-a").unwrap();
    assert!(matches!(
        hpke.open(&sealed, b"packet-b"),
        Err(CryptoError::DecryptFailed)
    ));

    let (ecies, _) = PacketPrivateKey::generate(PacketScheme::Ecies).unwrap();
    let sealed = ecies.public_key().seal(b"share", b"packet-a").unwrap();
    assert_eq!(ecies.open(&sealed, b"packet-b").unwrap(), b"share");
}

#[test]
fn bad_key_texts_are_rejected_without_echo() {
    let (_, ecies_text) = PacketPrivateKey::generate(PacketScheme::Ecies).unwrap();
    let (_, other_text) = PacketPrivateKey::generate(PacketScheme::Ecies).unwrap();
    let (_, hpke_text) = PacketPrivateKey::generate(PacketScheme::Hpke).unwrap();

    // Point of one key with the scalar of another.
    let mut mixed = text::decode("t", &ecies_text).unwrap();
    mixed[65..].copy_from_slice(&text::decode("t", &other_text).unwrap()[65..]);
    let mixed = text::encode(&mixed);

    let cases = [
        (PacketScheme::Ecies, mixed.as_str()),
        (PacketScheme::Ecies, hpke_text.as_str()),
        (PacketScheme::Hpke, ecies_text.as_str()),
        (PacketScheme::Ecies, "%%%"),
    ];
    for (scheme, text) in cases {
        let err = PacketPrivateKey::from_text(scheme, text).unwrap_err();
        assert!(matches!(err, CryptoError::BadKey { .. }), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&text[..text.len().min(20)]), "{shown}");
    }
    assert!(PacketPublicKey::from_text(PacketScheme::Ecies, &text::encode(&[4u8; 65])).is_err());
    assert!(PacketPublicKey::from_text(PacketScheme::Hpke, &text::encode(&[1u8; 31])).is_err());
}

#[test]
fn debug_of_private_keys_shows_no_key_material() {
    for scheme in SCHEMES {
        let (key, text) = PacketPrivateKey::generate(scheme).unwrap();
        let raw = text::decode("t", &text).unwrap();
        let secret = &raw[raw.len() - 32..];
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains(&text), "{shown}");
        // The tail of the text encodes only secret bytes.
        assert!(!shown.contains(&text[text.len() - 24..]), "{shown}");
        let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.to_lowercase().contains(&secret_hex[..16]), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &secret[..8])), "{shown}");
    }
}

/// Rough cost of one open. Run with
/// `cargo test --release --lib crypto::packet_tests::open_timing -- --nocapture`.
#[test]
fn open_timing() {
    const N: u32 = 300;
    for (scheme, len) in [(PacketScheme::Ecies, 116), (PacketScheme::Hpke, 116)] {
        let (key, _) = PacketPrivateKey::generate(scheme).unwrap();
        let sealed = key.public_key().seal(&vec![1u8; len], b"aad").unwrap();
        key.open(&sealed, b"aad").unwrap();
        let start = Instant::now();
        for _ in 0..N {
            std::hint::black_box(key.open(std::hint::black_box(&sealed), b"aad").unwrap());
        }
        let per = start.elapsed() / N;
        println!("{scheme} open of a {len}-byte plaintext: {per:?} per packet ({N} runs)");
    }
}
