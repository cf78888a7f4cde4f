//! Request bodies: the media type, the size limit, and collecting the bytes.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::HeaderMap;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use std::time::Duration;

use crate::error::ErrorCode;
use crate::http::response::Failure;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`, or no Content-Type at all.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// The body's format from its Content-Type. `form_ok` says whether the
/// route takes forms (the `/mina` routes do, the admin API does not).
pub fn format(headers: &HeaderMap, form_ok: bool) -> Result<Format, Failure> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    // What nearly every client sends, compared whole before the general parse.
    match value.as_bytes() {
        b"application/json" | b"application/json; charset=utf-8" => return Ok(Format::Json),
        b"application/x-www-form-urlencoded" if form_ok => return Ok(Format::Form),
        _ => {}
    }
    let media = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media.eq_ignore_ascii_case("application/json") || media.is_empty() {
        Ok(Format::Json)
    } else if form_ok && media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(Format::Form)
    } else {
        Err(Failure::new(
            ErrorCode::UnsupportedMediaType,
            if form_ok {
                "body must be application/json or application/x-www-form-urlencoded"
            } else {
                "body must be application/json"
            },
        ))
    }
}

/// A form-typed body that is a JSON object is read as JSON: `curl -d` and
/// some HTTP clients label every body as a form, and no form body of the
/// `/mina` fields starts with `{`.
pub fn sniff(declared: Format, body: &[u8]) -> Format {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match (declared, first) {
        (Format::Form, Some(b'{')) => Format::Json,
        _ => declared,
    }
}

fn too_large(limit: usize) -> Failure {
    Failure::new(
        ErrorCode::BodyTooLarge,
        format!("body is larger than {limit} bytes"),
    )
}

/// Reads the whole body, refusing more than `limit` bytes, empty bodies and
/// a body that has not fully arrived within `within` (a stalled client must
/// not hold its connection forever).
pub async fn read<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    within: Duration,
) -> Result<Bytes, Failure>
where
    // `Incoming` in the server; any body in the property tests.
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    // Frame by frame rather than `collect()`: a body in one frame (nearly
    // all of them) is kept as is, without collect's buffer list.
    let mut body = Limited::new(body, limit);
    let mut bytes = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    // The timeout polls the frame first: a body already received (nearly
    // all of them) never registers a timer.
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
            return Err(Failure::new(
                ErrorCode::RequestTimeout,
                format!("the body did not arrive within {} s", within.as_secs()),
            ));
        };
        let Some(frame) = frame else { break };
        let frame = match frame {
            Ok(f) => f,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(limit)),
            Err(_) => {
                return Err(Failure::new(
                    ErrorCode::BadRequest,
                    "the body could not be read",
                ));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing wafer reads
        };
        match &mut joined {
            Some(all) => all.extend_from_slice(&data),
            None if bytes.is_empty() => bytes = data,
            None => {
                let mut all = BytesMut::with_capacity(bytes.len() + data.len());
                all.extend_from_slice(&bytes);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    if let Some(all) = joined {
        bytes = all.freeze();
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::new(ErrorCode::BadRequest, "the body is empty"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        h
    }

    #[test]
    fn json_objects_labelled_as_forms_are_json() {
        assert_eq!(sniff(Format::Form, b" {\"code\":\"c\"}"), Format::Json);
        assert_eq!(sniff(Format::Form, b"code=c"), Format::Form);
        assert_eq!(sniff(Format::Json, b"code=c"), Format::Json);
    }

    #[test]
    fn media_types() {
        assert_eq!(format(&HeaderMap::new(), true).unwrap(), Format::Json);
        assert_eq!(
            format(&with_type("application/json; charset=utf-8"), true).unwrap(),
            Format::Json
        );
        assert_eq!(
            format(&with_type("application/x-www-form-urlencoded"), true).unwrap(),
            Format::Form
        );
        assert_eq!(
            format(&with_type("application/x-www-form-urlencoded"), false)
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedMediaType
        );
        assert_eq!(
            format(&with_type("text/xml"), true).unwrap_err().code,
            ErrorCode::UnsupportedMediaType
        );
    }

    /// A body arriving in the given chunks.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(hyper::body::Frame::data(c))))
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap_or_else(|e| panic!("a runtime: {e}"))
    }

    proptest::proptest! {
        #[test]
        fn a_body_in_any_chunks_reads_whole_or_is_refused(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..64), 0..12),
            limit in 1usize..400,
        ) {
            let whole: Vec<u8> = chunks.concat();
            let body = Chunks(chunks.into_iter().map(Bytes::from).collect());
            let got = run(read(&HeaderMap::new(), body, limit, Duration::from_secs(5)));
            if whole.len() > limit {
                proptest::prop_assert_eq!(got.map_err(|f| f.code), Err(ErrorCode::BodyTooLarge));
            } else if whole.iter().all(u8::is_ascii_whitespace) {
                proptest::prop_assert_eq!(got.map_err(|f| f.code), Err(ErrorCode::BadRequest));
            } else {
                proptest::prop_assert_eq!(got.map_err(|f| f.code), Ok(Bytes::from(whole)));
            }
        }

        #[test]
        fn any_content_type_is_read_or_refused(value in "[ -~]{0,60}", form_ok: bool, body: Vec<u8>) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                headers.insert(CONTENT_TYPE, v);
            }
            if let Ok(f) = format(&headers, form_ok) {
                proptest::prop_assert!(form_ok || f == Format::Json, "forms only where allowed");
                let _ = sniff(f, &body);
            }
        }
    }
}
