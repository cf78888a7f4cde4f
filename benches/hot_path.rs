//! The pieces of a request wafer pays for itself, on real bodies:
//! request parsing (serde_json, what wafer uses, against simd-json),
//! decrypting WeChat's official vector, minting and hashing an skey,
//! encoding the replies, and the whole auth path on the embedded store.
//!
//! `cargo bench --bench hot_path`; numbers are recorded in BENCHMARKS.md.

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;

use wafer::clock::{ManualClock, Timestamp};
use wafer::domain::Wafer;
use wafer::domain::app::NewApp;
use wafer::domain::session::{NewSession, Profile};
use wafer::domain::skey::Skey;
use wafer::http::body::Format;
use wafer::http::mina;
use wafer::store::embedded::EmbeddedStore;
use wafer::store::{AppStore, SessionStore};
use wafer::wechat::WechatClient;
use wafer::wechat::crypto::decrypt_user_data;

// WeChat's official demo vector (also in the crypto unit tests).
const APPID: &str = "wx4f4bc4dec97d474b";
const SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
const IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
const DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

/// An auth body as business services send it (~120 bytes).
fn auth_body() -> String {
    format!(
        r#"{{"uuid":"{}","skey":"{}","app_id":1}}"#,
        uuid::Uuid::new_v4(),
        Skey::mint()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    )
}

/// A login body with user data, as mini-programs send it (~1.1 KB).
fn login_body() -> String {
    let raw = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0"}"#;
    serde_json::json!({
        "code": "081ZQxZZ0Ni0hC1jf91005RxZZ0ZQxZq",
        "app_id": "wx4f4bc4dec97d474b",
        "encrypt_data": DATA,
        "iv": IV,
        "raw_data": raw,
        "signature": "75e81ceda165f4ffa64f4068af58c64b8f54b88c",
    })
    .to_string()
}

// The same shapes wafer reads, for a like-for-like parser comparison.
#[derive(Deserialize)]
#[allow(dead_code)]
struct AuthShape<'a> {
    #[serde(borrow)]
    uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    skey: Option<Cow<'a, str>>,
    app_id: Option<u64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct LoginShape<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    app_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    encrypt_data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    iv: Option<Cow<'a, str>>,
    #[serde(borrow)]
    raw_data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
}

fn parsing(c: &mut Criterion) {
    let auth = Bytes::from(auth_body());
    let login = Bytes::from(login_body());
    let mut g = c.benchmark_group("parse");
    g.bench_function("auth/wafer", |b| {
        b.iter(|| mina::parse_auth(Format::Json, black_box(&auth)).is_ok())
    });
    g.bench_function("auth/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<AuthShape>(black_box(&auth)).is_ok())
    });
    // simd-json parses in place: the fair cost includes copying hyper's
    // immutable Bytes into a (reused) mutable buffer.
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("auth/simd_json", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&auth));
            simd_json::serde::from_slice::<AuthShape>(&mut buf).is_ok()
        })
    });
    g.bench_function("login/wafer", |b| {
        b.iter(|| mina::parse_login(Format::Json, black_box(&login)).is_ok())
    });
    g.bench_function("login/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<LoginShape>(black_box(&login)).is_ok())
    });
    g.bench_function("login/simd_json", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&login));
            simd_json::serde::from_slice::<LoginShape>(&mut buf).is_ok()
        })
    });
    // What a request would pay: a fresh buffer per body.
    g.bench_function("login/simd_json_fresh", |b| {
        b.iter(|| {
            let mut fresh = black_box(&login).to_vec();
            simd_json::serde::from_slice::<LoginShape>(&mut fresh).is_ok()
        })
    });
    g.finish();
}

fn crypto(c: &mut Criterion) {
    c.bench_function("decrypt/official_vector", |b| {
        b.iter(|| decrypt_user_data(SESSION_KEY, black_box(DATA), IV, APPID).is_ok())
    });
    c.bench_function("skey/mint_and_hash", |b| {
        b.iter(|| Skey::mint().map(|s| s.hash()).is_ok())
    });
}

fn profile() -> Profile {
    Profile {
        open_id: "oGZUI0egBJY1zhBYw2KhdUfwVJJE".into(),
        union_id: Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA".into()),
        user_info: Some(Arc::from(
            r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}"#,
        )),
        phone_number: None,
    }
}

fn encoding(c: &mut Criterion) {
    let p = profile();
    c.bench_function("encode/auth_ok", |b| {
        b.iter(|| mina::auth_ok(black_box(&p)).len())
    });
}

fn full_auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let now = Timestamp(1_800_000_000_000);
    let store = Arc::new(EmbeddedStore::new(1_000_000));
    let wechat = WechatClient::new(
        "http://127.0.0.1:9",
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .expect("a client");
    let wafer = Wafer::new(store.clone(), wechat, Arc::new(ManualClock::new(now)));
    // 100k sessions, as in the load test, so the lookup is not cache-hot.
    let bodies: Vec<Bytes> = rt.block_on(async {
        let app = store
            .create_app(
                NewApp {
                    title: "bench".into(),
                    appid: "wxbench".into(),
                    secret: "secret".into(),
                    login_duration: 30,
                    session_duration: 2_592_000,
                },
                now,
            )
            .await
            .expect("an app");
        let mut bodies = Vec::new();
        for i in 0..100_000 {
            let skey = Skey::mint().expect("an skey");
            let stored = store
                .upsert_session(NewSession {
                    app_id: app.id,
                    open_id: format!("o-{i}"),
                    union_id: None,
                    session_key: "c2Vzc2lvbmtleTEyMzQ1Ng==".into(),
                    skey_hash: skey.hash(),
                    user_info: profile().user_info.map(|s| s.to_string()),
                    now,
                })
                .await
                .expect("a session");
            bodies.push(Bytes::from(format!(
                r#"{{"uuid":"{}","skey":"{}","app_id":{}}}"#,
                stored.uuid,
                skey.expose(),
                app.id
            )));
        }
        bodies
    });
    let mut i = 0;
    c.bench_function("auth/embedded_full_path", |b| {
        b.iter(|| {
            i = (i + 7_919) % bodies.len();
            rt.block_on(async {
                let input = mina::parse_auth(Format::Json, &bodies[i]).expect("a valid body");
                let profile = wafer.auth(&input).await.expect("a valid session");
                mina::auth_ok(&profile).len()
            })
        })
    });
}

criterion_group!(benches, parsing, crypto, encoding, full_auth);
criterion_main!(benches);
