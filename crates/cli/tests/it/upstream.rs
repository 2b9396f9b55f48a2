//! A fake OpenAI-compatible upstream for proxy-mode tests: a test fixture on an ephemeral loopback port. It
//! answers every chat completion with the prompt it received and a sentence carrying an email address, so
//! tests can see both what reached the provider and what the caller gets back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub struct Upstream {
    pub addr: SocketAddr,
    pub prompts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let prompts = Arc::new(Mutex::new(Vec::new()));
        let seen = prompts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(answer(request, &seen).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Upstream { addr, prompts, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

async fn answer(request: Request<Incoming>, seen: &Mutex<Vec<String>>) -> Response<Full<Bytes>> {
    let authorized = request.headers().get("authorization").is_some_and(|v| v == "Bearer sk-test-upstream");
    let path_ok = request.uri().path() == "/v1/chat/completions";
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let prompt = json["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
    let (status, reply) = if !authorized {
        (401, serde_json::json!({"error": {"message": "bad key"}}))
    } else if !path_ok {
        (404, serde_json::json!({"error": {"message": "no route"}}))
    } else {
        seen.lock().expect("lock").push(prompt.clone());
        (
            200,
            serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-gpt",
                "choices": [{"index": 0, "message": {"role": "assistant",
                    "content": format!("You asked: {prompt}. Contact jane@example.com for details.")}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
            }),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
