//! WeChat user-data crypto: AES-128-CBC decryption with strict PKCS#7 and a
//! watermark check, and the `rawData` SHA-1 signature.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Largest stored `user_info`, in bytes of compact JSON (as the original table).
pub const MAX_USER_INFO_BYTES: usize = 2048;

/// Why user data was refused. The messages name the check that failed, never
/// the data or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The data does not decrypt to this app's user object.
    #[error("{0}")]
    BadEncryptedData(&'static str),
    /// The `raw_data` signature does not match.
    #[error("signature does not match raw_data")]
    BadSignature,
}

/// User data decrypted and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedUser {
    /// The object as compact JSON text (at most [`MAX_USER_INFO_BYTES`]).
    pub user_info: String,
    /// Its `unionId`, when present.
    pub union_id: Option<String>,
}

fn decode16(b64: &str, what: &'static str) -> Result<[u8; 16], CryptoError> {
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| CryptoError::BadEncryptedData(what))?;
    bytes
        .try_into()
        .map_err(|_| CryptoError::BadEncryptedData(what))
}

/// Decrypts `encrypted_data` with the user's `session_key` and `iv` (all
/// base64) and checks that it is a JSON object whose `watermark.appid` is
/// `appid`: the object.
fn decrypt_object(
    session_key: &str,
    encrypted_data: &str,
    iv: &str,
    appid: &str,
) -> Result<serde_json::Value, CryptoError> {
    let key = decode16(session_key, "session key is not 16 bytes of base64")?;
    let iv = decode16(iv, "iv is not 16 bytes of base64")?;
    let data = STANDARD
        .decode(encrypted_data)
        .map_err(|_| CryptoError::BadEncryptedData("encrypt_data is not base64"))?;
    let plain = Aes128CbcDec::new(&key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| {
            CryptoError::BadEncryptedData("encrypt_data does not decrypt with the session key")
        })?;
    let value: serde_json::Value = serde_json::from_slice(&plain)
        .map_err(|_| CryptoError::BadEncryptedData("decrypted data is not JSON"))?;
    let watermark = value
        .as_object()
        .ok_or(CryptoError::BadEncryptedData(
            "decrypted data is not a JSON object",
        ))?
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(|a| a.as_str());
    if watermark != Some(appid) {
        return Err(CryptoError::BadEncryptedData(
            "watermark appid is not this app's",
        ));
    }
    Ok(value)
}

/// Decrypts data a mini-program fetched after login (`wx.getWeRunData`,
/// `wx.getShareInfo`, …): the checked object as compact JSON text.
pub fn decrypt_data(
    session_key: &str,
    encrypted_data: &str,
    iv: &str,
    appid: &str,
) -> Result<String, CryptoError> {
    Ok(decrypt_object(session_key, encrypted_data, iv, appid)?.to_string())
}

/// Decrypts the user info of a login ([`decrypt_data`]), at most
/// [`MAX_USER_INFO_BYTES`], with its `unionId`.
pub fn decrypt_user_data(
    session_key: &str,
    encrypted_data: &str,
    iv: &str,
    appid: &str,
) -> Result<DecryptedUser, CryptoError> {
    let value = decrypt_object(session_key, encrypted_data, iv, appid)?;
    let object = value.as_object().ok_or(CryptoError::BadEncryptedData(
        "decrypted data is not a JSON object",
    ))?;
    let union_id = object
        .get("unionId")
        .and_then(|u| u.as_str())
        // A NUL could not be stored (PostgreSQL refuses it); no real
        // unionId has one.
        .filter(|u| !u.is_empty() && !u.contains('\0'))
        .map(str::to_owned);
    let user_info = value.to_string();
    if user_info.len() > MAX_USER_INFO_BYTES {
        return Err(CryptoError::BadEncryptedData(
            "user data is larger than 2048 bytes",
        ));
    }
    Ok(DecryptedUser {
        user_info,
        union_id,
    })
}

/// Checks `signature == sha1(raw_data + session_key)` (hex, either case), in
/// constant time.
pub fn check_signature(
    raw_data: &str,
    session_key: &str,
    signature: &str,
) -> Result<(), CryptoError> {
    let expected = sign(raw_data, session_key);
    let given = signature.trim().to_ascii_lowercase();
    if expected.as_bytes().ct_eq(given.as_bytes()).into() {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// `sha1(raw_data + session_key)` as lowercase hex, as WeChat signs `rawData`.
pub(crate) fn sign(raw_data: &str, session_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(raw_data.as_bytes());
    h.update(session_key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `hmac_sha256(key = session_key, message = "")` as lowercase hex: how
/// `checksession` asks whether a session key is the user's current one.
/// The key is the session key's base64 text as WeChat gave it, not its
/// decoded bytes.
pub fn session_signature(session_key: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(session_key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes a key of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(b"");
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_signature_matches_wechats_vectors() {
        // WeChat's documentation signs {"foo":"bar"} with this key; the
        // same key over the empty message is what checksession wants.
        use hmac::{KeyInit, Mac};
        let key = "o0q0otL8aEzpcZL/FT9WsQ==";
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(br#"{"foo":"bar"}"#);
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
        assert_eq!(
            session_signature(key),
            "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
        );
    }

    use aes::cipher::BlockModeEncrypt;

    type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

    /// Encrypts as WeChat does; wafer itself never encrypts.
    fn encrypt_user_data(
        session_key: &str,
        iv: &str,
        plaintext: &[u8],
    ) -> Result<String, CryptoError> {
        let key = decode16(session_key, "session key is not 16 bytes of base64")?;
        let iv = decode16(iv, "iv is not 16 bytes of base64")?;
        let data =
            Aes128CbcEnc::new(&key.into(), &iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext);
        Ok(STANDARD.encode(data))
    }

    // WeChat's official demo vector.
    const APPID: &str = "wx4f4bc4dec97d474b";
    const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

    #[test]
    fn decrypts_the_official_demo_vector() {
        let user = decrypt_user_data(SESSION_KEY, DATA, IV, APPID).unwrap();
        let v: serde_json::Value = serde_json::from_str(&user.user_info).unwrap();
        assert_eq!(v["nickName"], "Band");
        assert_eq!(v["city"], "Guangzhou");
        assert_eq!(v["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(v["watermark"]["appid"], APPID);
        assert_eq!(
            user.union_id.as_deref(),
            Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA")
        );
    }

    #[test]
    fn another_apps_watermark_is_refused() {
        assert_eq!(
            decrypt_user_data(SESSION_KEY, DATA, IV, "wx0000000000000000"),
            Err(CryptoError::BadEncryptedData(
                "watermark appid is not this app's"
            ))
        );
    }

    #[test]
    fn wrong_key_or_iv_or_encoding_is_refused() {
        let other_key = STANDARD.encode([7u8; 16]);
        assert!(matches!(
            decrypt_user_data(&other_key, DATA, IV, APPID),
            Err(CryptoError::BadEncryptedData(_))
        ));
        assert!(
            decrypt_user_data(SESSION_KEY, DATA, "AAAA", APPID).is_err(),
            "short iv"
        );
        assert!(
            decrypt_user_data("c2hvcnQ=", DATA, IV, APPID).is_err(),
            "short key"
        );
        assert!(decrypt_user_data(SESSION_KEY, "not base64!", IV, APPID).is_err());
        assert!(
            decrypt_user_data(SESSION_KEY, &DATA[..DATA.len() - 4], IV, APPID).is_err(),
            "truncated"
        );
    }

    #[test]
    fn padding_is_checked_strictly() {
        // The last block ends in [3, 2]: a lax unpad would strip two bytes,
        // strict PKCS#7 needs both to be 2.
        let (k, v) = ([1u8; 16], [2u8; 16]);
        let mut block = [b' '; 32];
        let json = br#"{"watermark":{"appid":"wx1"}}"#;
        block[..json.len()].copy_from_slice(json);
        block[30] = 3;
        block[31] = 2;
        let enc = Aes128CbcEnc::new(&k.into(), &v.into())
            .encrypt_padded_vec::<aes::cipher::block_padding::NoPadding>(&block);
        assert_eq!(
            decrypt_user_data(
                &STANDARD.encode(k),
                &STANDARD.encode(enc),
                &STANDARD.encode(v),
                "wx1"
            ),
            Err(CryptoError::BadEncryptedData(
                "encrypt_data does not decrypt with the session key"
            ))
        );
    }

    #[test]
    fn non_object_plaintext_is_refused() {
        let key = STANDARD.encode([1u8; 16]);
        let iv = STANDARD.encode([2u8; 16]);
        let enc = encrypt_user_data(&key, &iv, b"[1,2]").unwrap();
        assert_eq!(
            decrypt_user_data(&key, &enc, &iv, "wx1"),
            Err(CryptoError::BadEncryptedData(
                "decrypted data is not a JSON object"
            ))
        );
        let enc = encrypt_user_data(&key, &iv, b"hello").unwrap();
        assert!(decrypt_user_data(&key, &enc, &iv, "wx1").is_err());
    }

    #[test]
    fn oversized_user_info_is_refused() {
        let key = STANDARD.encode([1u8; 16]);
        let iv = STANDARD.encode([2u8; 16]);
        let big = format!(
            r#"{{"nickName":"{}","watermark":{{"appid":"wx1"}}}}"#,
            "x".repeat(2100)
        );
        let enc = encrypt_user_data(&key, &iv, big.as_bytes()).unwrap();
        assert_eq!(
            decrypt_user_data(&key, &enc, &iv, "wx1"),
            Err(CryptoError::BadEncryptedData(
                "user data is larger than 2048 bytes"
            ))
        );
    }

    #[test]
    fn round_trip_through_encrypt() {
        let key = STANDARD.encode([9u8; 16]);
        let iv = STANDARD.encode([8u8; 16]);
        let plain = br#"{"nickName":"n","unionId":"u9","watermark":{"appid":"wxA","timestamp":1}}"#;
        let enc = encrypt_user_data(&key, &iv, plain).unwrap();
        let user = decrypt_user_data(&key, &enc, &iv, "wxA").unwrap();
        assert_eq!(user.union_id.as_deref(), Some("u9"));
    }

    #[test]
    fn official_signature_example() {
        let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
        let key = "HyVFkGl5F5OQWJZZaNzBBg==";
        assert_eq!(sign(raw, key), "75e81ceda165f4ffa64f4068af58c64b8f54b88c");
        assert_eq!(
            check_signature(raw, key, "75e81ceda165f4ffa64f4068af58c64b8f54b88c"),
            Ok(())
        );
        assert_eq!(
            check_signature(raw, key, "75E81CEDA165F4FFA64F4068AF58C64B8F54B88C"),
            Ok(())
        );
        assert_eq!(
            check_signature(raw, key, "75e81ceda165f4ffa64f4068af58c64b8f54b88d"),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            check_signature(raw, key, ""),
            Err(CryptoError::BadSignature)
        );
    }

    use proptest::strategy::{Just, Strategy};
    use proptest::test_runner::TestCaseError;

    /// A user object as WeChat encrypts it, under a random key and IV.
    #[derive(Debug, Clone)]
    struct Payload {
        key: [u8; 16],
        iv: [u8; 16],
        object: serde_json::Value,
    }

    fn payload() -> impl Strategy<Value = Payload> {
        (
            proptest::arbitrary::any::<[u8; 16]>(),
            proptest::arbitrary::any::<[u8; 16]>(),
            "\\PC{0,30}",
            // Empty and NUL-bearing unionIds are dropped, not stored.
            proptest::option::of("[A-Za-z0-9_\\x00-]{0,28}"),
            // Some objects just under the 2048-byte cap, some over it.
            proptest::option::of(proptest::prop_oneof![0usize..200, 1900usize..2100]),
            proptest::arbitrary::any::<u32>(),
        )
            .prop_map(|(key, iv, nick, union_id, filler, ts)| {
                let mut object =
                    serde_json::json!({"nickName": nick, "watermark": {"appid": "wx1", "timestamp": ts}});
                if let Some(u) = union_id {
                    object["unionId"] = u.into();
                }
                if let Some(n) = filler {
                    object["avatarUrl"] = "x".repeat(n).into();
                }
                Payload { key, iv, object }
            })
    }

    /// What is done to a valid payload before wafer decrypts it.
    #[derive(Debug, Clone)]
    enum Spoil {
        Nothing,
        /// The session key decodes to this many bytes (never 16).
        KeyLength(usize),
        /// The IV decodes to this many bytes (never 16).
        IvLength(usize),
        /// A `!` in the data's base64 at this place (modulo its length).
        NotBase64(usize),
        /// The ciphertext cut to this many bytes (modulo its length).
        Truncate(usize),
        /// A ciphertext byte (modulo its length) xored with the mask.
        FlipData(usize, u8),
        /// An IV byte xored with the mask: the same byte of the padded
        /// plaintext flips, so the outcome is known exactly.
        FlipIv(usize, u8),
        /// Decrypted with another key.
        OtherKey([u8; 16]),
        /// The JSON text cut to this many bytes (modulo its length) before
        /// it is encrypted.
        CutPlain(usize),
        /// Encrypted plaintext that is not a JSON object.
        NotObject(&'static [u8]),
        /// Decrypted for another app.
        OtherApp,
    }

    fn spoil() -> impl Strategy<Value = Spoil> {
        use proptest::arbitrary::any;
        proptest::prop_oneof![
            4 => Just(Spoil::Nothing),
            1 => (0usize..40).prop_filter("not 16", |n| *n != 16).prop_map(Spoil::KeyLength),
            1 => (0usize..40).prop_filter("not 16", |n| *n != 16).prop_map(Spoil::IvLength),
            1 => any::<usize>().prop_map(Spoil::NotBase64),
            1 => any::<usize>().prop_map(Spoil::Truncate),
            2 => (any::<usize>(), 1u8..).prop_map(|(i, m)| Spoil::FlipData(i, m)),
            2 => (0usize..16, 1u8..).prop_map(|(i, m)| Spoil::FlipIv(i, m)),
            1 => any::<[u8; 16]>().prop_map(Spoil::OtherKey),
            1 => any::<usize>().prop_map(Spoil::CutPlain),
            1 => proptest::sample::select(vec![
                &b"[1,2]"[..], b"\"wx1\"", b"null", b"12", b"\xff\xfe{}", b"",
            ])
            .prop_map(Spoil::NotObject),
            1 => Just(Spoil::OtherApp),
        ]
    }

    /// What the checks make of `plain` for `appid`: the object, or the
    /// message of the check that refuses it.
    fn verdict(plain: &[u8], appid: &str) -> Result<serde_json::Value, &'static str> {
        let v: serde_json::Value =
            serde_json::from_slice(plain).map_err(|_| "decrypted data is not JSON")?;
        if !v.is_object() {
            return Err("decrypted data is not a JSON object");
        }
        if v["watermark"]["appid"] != appid {
            return Err("watermark appid is not this app's");
        }
        Ok(v)
    }

    const NOT_DECRYPTED: &str = "encrypt_data does not decrypt with the session key";

    /// Spoils `p`, decrypts it both ways and checks the answers against what
    /// the spoil must cause: the exact refusal where it is known, else a
    /// refusal or an object that passed every check. Returns the outcome
    /// ("ok" or the refusal), so a test can count which checks were reached.
    fn decrypt_spoiled(p: &Payload, spoil: &Spoil) -> Result<&'static str, TestCaseError> {
        use proptest::{prop_assert, prop_assert_eq};
        let mut plain = p.object.to_string().into_bytes();
        let mut appid = "wx1";
        match spoil {
            Spoil::CutPlain(n) => plain.truncate(n % plain.len()),
            Spoil::NotObject(text) => plain = text.to_vec(),
            Spoil::OtherApp => appid = "wx2",
            _ => {}
        }
        let mut data =
            Aes128CbcEnc::new(&p.key.into(), &p.iv.into()).encrypt_padded_vec::<Pkcs7>(&plain);
        let (mut key, mut iv) = (p.key.to_vec(), p.iv.to_vec());
        // `None`: the outcome is not known beforehand.
        let mut want = Some(verdict(&plain, appid));
        let mut data64 = None;
        match *spoil {
            Spoil::KeyLength(n) => {
                key.resize(n, 7);
                want = Some(Err("session key is not 16 bytes of base64"));
            }
            Spoil::IvLength(n) => {
                iv.resize(n, 7);
                want = Some(Err("iv is not 16 bytes of base64"));
            }
            Spoil::NotBase64(i) => {
                let mut text = STANDARD.encode(&data);
                text.insert(i % (text.len() + 1), '!');
                data64 = Some(text);
                want = Some(Err("encrypt_data is not base64"));
            }
            Spoil::Truncate(n) => {
                // Compact JSON holds no byte under 0x20, so no cut leaves a
                // last block that unpads.
                data.truncate(n % data.len());
                want = Some(Err(NOT_DECRYPTED));
            }
            Spoil::FlipData(i, mask) => {
                let i = i % data.len();
                data[i] ^= mask;
                want = None;
            }
            Spoil::FlipIv(i, mask) => {
                iv[i] ^= mask;
                if i < plain.len() {
                    plain[i] ^= mask;
                    want = Some(verdict(&plain, appid));
                } else {
                    // A padding byte.
                    want = Some(Err(NOT_DECRYPTED));
                }
            }
            Spoil::OtherKey(other) if other != p.key => {
                key = other.to_vec();
                want = None;
            }
            _ => {}
        }
        let (key64, iv64) = (STANDARD.encode(&key), STANDARD.encode(&iv));
        let data64 = data64.unwrap_or_else(|| STANDARD.encode(&data));
        let got = decrypt_data(&key64, &data64, &iv64, appid);
        let user = decrypt_user_data(&key64, &data64, &iv64, appid);
        match want {
            Some(Ok(object)) => {
                let text = object.to_string();
                prop_assert_eq!(&got, &Ok(text.clone()));
                if text.len() > MAX_USER_INFO_BYTES {
                    prop_assert_eq!(
                        &user,
                        &Err(CryptoError::BadEncryptedData(
                            "user data is larger than 2048 bytes"
                        ))
                    );
                } else {
                    let union_id = object["unionId"]
                        .as_str()
                        .filter(|u| !u.is_empty() && !u.contains('\0'))
                        .map(str::to_owned);
                    prop_assert_eq!(
                        &user,
                        &Ok(DecryptedUser {
                            user_info: text,
                            union_id
                        })
                    );
                }
            }
            Some(Err(message)) => {
                prop_assert_eq!(&got, &Err(CryptoError::BadEncryptedData(message)));
                prop_assert_eq!(&user, &Err(CryptoError::BadEncryptedData(message)));
            }
            None => {
                for answer in [
                    got.map(|_| ()),
                    user.as_ref().map(|_| ()).map_err(Clone::clone),
                ] {
                    prop_assert!(
                        matches!(answer, Ok(()) | Err(CryptoError::BadEncryptedData(_))),
                        "{answer:?}"
                    );
                }
                if let Ok(u) = &user {
                    // Whatever garbage decrypted passed every check.
                    let v: serde_json::Value =
                        serde_json::from_str(&u.user_info).unwrap_or_default();
                    prop_assert_eq!(&v["watermark"]["appid"], appid);
                    prop_assert!(u.user_info.len() <= MAX_USER_INFO_BYTES);
                }
            }
        }
        Ok(match user {
            Ok(_) => "ok",
            Err(CryptoError::BadEncryptedData(message)) => message,
            Err(CryptoError::BadSignature) => "signature",
        })
    }

    #[test]
    fn spoiled_payloads_reach_every_check() {
        // The property below means something only if its inputs get past
        // base64 and the key: count where 1000 of them end.
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for _ in 0..1000 {
            let (p, s) = (payload(), spoil())
                .new_tree(&mut runner)
                .unwrap()
                .current();
            *seen.entry(decrypt_spoiled(&p, &s).unwrap()).or_default() += 1;
        }
        assert!(seen.get("ok").copied().unwrap_or(0) >= 100, "{seen:?}");
        for check in [
            "session key is not 16 bytes of base64",
            "iv is not 16 bytes of base64",
            "encrypt_data is not base64",
            NOT_DECRYPTED,
            "decrypted data is not JSON",
            "decrypted data is not a JSON object",
            "watermark appid is not this app's",
            "user data is larger than 2048 bytes",
        ] {
            assert!(
                seen.get(check).copied().unwrap_or(0) >= 5,
                "{check}: {seen:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn spoiled_payloads_are_refused_by_the_right_check(p in payload(), s in spoil()) {
            decrypt_spoiled(&p, &s)?;
        }

        #[test]
        fn what_the_mock_encrypts_decrypts(
            key: [u8; 16],
            iv: [u8; 16],
            nick in "\\PC{0,60}",
        ) {
            let object = serde_json::json!({"nickName": nick, "watermark": {"appid": "wx1"}});
            let data = wechat_mock::encrypt(&key, &iv, object.to_string().as_bytes());
            let (key64, iv64) = (STANDARD.encode(key), STANDARD.encode(iv));
            let back = decrypt_data(&key64, &data, &iv64, "wx1");
            proptest::prop_assert!(back.is_ok());
            if let Ok(back) = back {
                let v: serde_json::Value = serde_json::from_str(&back).unwrap_or_default();
                proptest::prop_assert_eq!(&v["nickName"], &object["nickName"]);
            }
            // Another app's watermark is refused, whatever the content.
            proptest::prop_assert!(decrypt_data(&key64, &data, &iv64, "wx2").is_err());
        }
    }
}
