use serde_json::{Value, json};

use crate::support::{Client, Server};

async fn document(server: &Server) -> Value {
    let reply = server.client().get("/openapi.json").await;
    assert_eq!(reply.status, 200, "served without credentials");
    reply.json()
}

/// Every (method, path) in the document, with path parameters filled in.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let concrete =
                path.replace("{key_id}", "k").replace("{tenant_id}", "default").replace("{id}", "v");
            out.push((method.to_uppercase(), concrete));
        }
    }
    out
}

fn is_unrouted(status: u16, body: &[u8]) -> bool {
    status == 405 || (status == 404 && String::from_utf8_lossy(body).contains("no such route"))
}

#[tokio::test]
async fn every_documented_route_exists_and_the_document_is_openapi_3() {
    let server = Server::start(&[]);
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let admin = server.admin_key();
    let agent = server.client();
    let orchestrator = Client::new(&server.ca, server.orchestrator);
    let operations = operations(&doc);
    assert!(operations.len() >= 20, "{operations:?}");
    for (method, path) in operations {
        let mut routed = false;
        for client in [&agent, &orchestrator] {
            let headers = [("x-license-key", admin.as_str()), ("content-type", "application/json")];
            let body = if method == "POST" { b"{}".to_vec() } else { Vec::new() };
            let reply = client.send(&method, &path, &headers, body).await;
            routed |= !is_unrouted(reply.status, &reply.body);
        }
        assert!(routed, "{method} {path} is documented but not served");
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn generated_body(rng: &mut Rng, doc: &Value, path: &str) -> Vec<u8> {
    let values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(""),
        json!("   "),
        json!("x".repeat(5000)),
        json!("' OR 1=1-- 123-45-6789 jane@example.com \u{202e}\u{e0041}"),
        json!([]),
        json!({}),
        json!([[[[[[[[[[[[1]]]]]]]]]]]]),
        json!({"nested": {"deeper": ["a", 1, null]}}),
    ];
    match rng.next() % 6 {
        0 => (0..(rng.next() % 64)).map(|_| (rng.next() % 256) as u8).collect(),
        1 => b"{\"query\": \"unterminated".to_vec(),
        2 => format!("{}{}", "[".repeat(300), "]".repeat(300)).into_bytes(),
        3 => rng.pick(&values).to_string().into_bytes(),
        _ => {
            // The documented fields of the route, each with a value of a random type.
            let schema =
                doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
            let schema = match schema["$ref"].as_str() {
                Some(reference) => {
                    doc["components"]["schemas"][reference.rsplit('/').next().unwrap_or("")].clone()
                }
                None => schema,
            };
            let mut body = serde_json::Map::new();
            for field in schema["properties"].as_object().into_iter().flatten().map(|(k, _)| k) {
                if !rng.next().is_multiple_of(4) {
                    body.insert(field.clone(), rng.pick(&values).clone());
                }
            }
            Value::Object(body).to_string().into_bytes()
        }
    }
}

#[tokio::test]
async fn generated_bodies_on_every_route_get_json_answers_and_never_a_500() {
    let server = Server::start(&[]);
    let doc = document(&server).await;
    let admin = server.admin_key();
    let agent = server.client();
    let orchestrator = Client::new(&server.ca, server.orchestrator);
    let posts: Vec<String> =
        operations(&doc).into_iter().filter(|(m, _)| m == "POST").map(|(_, p)| p).collect();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    for round in 0..12 {
        for path in &posts {
            let template = doc["paths"].as_object().expect("paths").keys().find(|k| {
                k.replace("{key_id}", "k").replace("{tenant_id}", "default").replace("{id}", "v") == *path
            });
            let body = generated_body(&mut rng, &doc, template.map_or(path.as_str(), String::as_str));
            let client = if path == "/api/v1/llm/complete" { &orchestrator } else { &agent };
            let headers = [("x-license-key", admin.as_str()), ("content-type", "application/json")];
            let reply = client.send("POST", path, &headers, body.clone()).await;
            assert!(
                reply.status < 500 || reply.status == 502 || reply.status == 503,
                "round {round} {path}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            assert!(
                serde_json::from_slice::<Value>(&reply.body).is_ok(),
                "round {round} {path}: not JSON: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
    }
    assert_eq!(agent.get("/health").await.status, 200, "still serving");
    assert!(!server.stderr().contains("panicked"), "a handler panicked");
}
