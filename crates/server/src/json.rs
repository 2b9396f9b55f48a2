//! `ApiJson<T>`: the JSON body extractor of every route. Its rejections are [`ApiError`]s that name the field
//! at fault and never echo the value that was sent (it may be PII or a secret). [`Reply`]: a JSON response
//! written by `engine::json` (the request path's serializer).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body, parsed and typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON: send Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(bytes_rejection)?;
        parse(&bytes).map(ApiJson)
    }
}

/// A JSON response body, what `axum::Json` writes but written by `engine::json` (SIMD string escaping: a
/// pre-check's response carries the whole redacted prompt).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reply<T>(pub T);

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match engine::json::to_vec(&self.0) {
            Ok(body) => {
                let mut response = Response::new(axum::body::Body::from(body));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            Err(error) => {
                tracing::error!(error = %error, "a response could not be serialized");
                ApiError::internal().into_response()
            }
        }
    }
}

/// Parses a JSON document into `T`, or explains what is wrong and where.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("empty_body", "the request body is empty: send a JSON object"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("invalid_utf8", "the request body is not valid UTF-8"))?;
    // One pass for the bodies taken (a whole document, nothing after it); a refused one is read again to say
    // where the problem is.
    serde_json::from_str(text).map_err(|error| explain::<T>(text, error))
}

/// What is wrong with a body `serde_json` refused, naming the field when it is one.
fn explain<T: DeserializeOwned>(text: &str, error: serde_json::Error) -> ApiError {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let (path, inner) = match serde_path_to_error::deserialize::<_, T>(deserializer) {
        Err(error) => (error.path().to_string(), error.into_inner()),
        // The document itself was fine: what follows it was not.
        Ok(_) => (".".to_owned(), error),
    };
    match inner.classify() {
        serde_json::error::Category::Data => {
            let mut api = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", describe(&inner));
            if path != "." {
                api = api.with_field(path);
            }
            api
        }
        _ => ApiError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON (line {}, column {})", inner.line(), inner.column()),
        ),
    }
}

fn is_json_content_type(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    }
}

/// serde's message without the offending value: the value sent may be PII or a secret, so only its JSON type
/// and what was expected are kept.
fn describe(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let message = full.split(" at line ").next().unwrap_or(&full);
    let expected = message.split_once(", expected ").map(|(_, e)| e);
    let described = if let Some(rest) = message.strip_prefix("invalid type: ") {
        let kind = rest.split(['`', '"', ',']).next().unwrap_or("value").trim();
        match expected {
            Some(expected) => format!("invalid type: {kind}, expected {expected}"),
            None => format!("invalid type: {kind}"),
        }
    } else if message.starts_with("invalid value: ") {
        match expected {
            Some(expected) => format!("invalid value, expected {expected}"),
            None => "invalid value".to_owned(),
        }
    } else if message.starts_with("unknown field") {
        match expected {
            Some(expected) => format!("unknown field, expected {expected}"),
            None => "unknown field".to_owned(),
        }
    } else if message.starts_with("missing field") || message.starts_with("invalid length") {
        message.to_owned()
    } else {
        "invalid value".to_owned()
    };
    described.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        query: String,
        context: Context,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Context {
        user_id: u32,
    }

    fn check(input: &str, status: StatusCode, code: &str, field: Option<&str>) {
        let error = parse::<Body>(input.as_bytes()).expect_err(input);
        assert_eq!((error.status(), error.code()), (status, code), "{input}");
        let body = format!("{error:?}");
        assert_eq!(body.contains("field: Some"), field.is_some(), "{input}: {body}");
        if let Some(field) = field {
            assert!(body.contains(&format!("field: Some({field:?})")), "{input}: {body}");
        }
    }

    #[test]
    fn errors_name_the_field_and_the_kind_of_problem() {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        check("", StatusCode::BAD_REQUEST, "empty_body", None);
        check("  \n", StatusCode::BAD_REQUEST, "empty_body", None);
        check("{", StatusCode::BAD_REQUEST, "malformed_json", None);
        check("{\"query\": }", StatusCode::BAD_REQUEST, "malformed_json", None);
        check("[1,2]", unprocessable, "invalid_field", Some("[0]"));
        check("{\"context\": {\"user_id\": 1}}", unprocessable, "invalid_field", None);
        check("{\"query\": 5, \"context\": {\"user_id\": 1}}", unprocessable, "invalid_field", Some("query"));
        check(
            "{\"query\": \"q\", \"context\": {\"user_id\": \"x\"}}",
            unprocessable,
            "invalid_field",
            Some("context.user_id"),
        );
        check(
            "{\"query\": \"q\", \"context\": {\"user_id\": 1}, \"extra\": 1}",
            unprocessable,
            "invalid_field",
            Some("extra"),
        );
        // One document: anything after it is refused, not ignored.
        let whole = "{\"query\": \"q\", \"context\": {\"user_id\": 1}}";
        assert!(parse::<Body>(whole.as_bytes()).is_ok());
        assert!(parse::<Body>(format!("{whole}\n ").as_bytes()).is_ok());
        check(&format!("{whole} {{"), StatusCode::BAD_REQUEST, "malformed_json", None);
        check(&format!("{whole}{whole}"), StatusCode::BAD_REQUEST, "malformed_json", None);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let error = parse::<Body>(b"{\"query\": \"\xff\"}").expect_err("invalid utf-8");
        assert_eq!(error.code(), "invalid_utf8");
    }

    #[test]
    fn the_value_sent_is_never_echoed() {
        for input in [
            "{\"query\": \"q\", \"context\": {\"user_id\": \"123-45-6789\"}}",
            "{\"query\": 123456789, \"context\": {\"user_id\": 1}}",
            "{\"query\": \"q\", \"context\": {\"user_id\": 123456789012}}",
            "{\"query\": \"q\", \"context\": {\"user_id\": -123456789}}",
            "{\"query\": [\"123456789\"], \"context\": {\"user_id\": 1}}",
        ] {
            let error = parse::<Body>(input.as_bytes()).expect_err("wrong type");
            let shown = format!("{error:?}");
            assert!(!shown.contains("6789"), "{shown}");
            assert!(shown.contains("invalid type") || shown.contains("invalid value"), "{shown}");
        }
    }

    #[test]
    fn content_types() {
        let check = |s: &'static str| is_json_content_type(Some(&axum::http::HeaderValue::from_static(s)));
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("Application/JSON"));
        assert!(check("application/problem+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type(None));
    }
}
