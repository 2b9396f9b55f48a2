use std::time::Duration;

use rustls::version::{TLS12, TLS13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Server, client_config, roots, tls_connect};

#[tokio::test]
async fn the_generated_ca_validates_the_server_and_http2_is_negotiated() {
    let server = Server::start(&[]);
    for addr in [server.agent, server.orchestrator] {
        let config = client_config(roots(&server.ca), &[&TLS13], &[b"h2", b"http/1.1"]);
        let stream = tls_connect(addr, config).await.expect("the CA validates the server");
        let (_, session) = stream.get_ref();
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(session.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    }
    let reply = server.client().get("/health").await;
    assert_eq!(reply.version, hyper::Version::HTTP_2);
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn http1_is_served_to_clients_that_offer_only_http1() {
    let server = Server::start(&[]);
    let config = client_config(roots(&server.ca), &[&TLS13], &[b"http/1.1"]);
    let stream = tls_connect(server.agent, config).await.expect("connect");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let server = Server::start(&[]);
    let other = Server::start(&[]);
    let config = client_config(roots(&other.ca), &[&TLS13], &[b"h2"]);
    let error = tls_connect(server.agent, config).await.expect_err("must not verify");
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_tls12_only_client_is_refused_by_default_and_accepted_when_the_minimum_is_12() {
    let strict = Server::start(&[]);
    let config = client_config(roots(&strict.ca), &[&TLS12], &[b"h2"]);
    assert!(tls_connect(strict.agent, config.clone()).await.is_err(), "TLS 1.2 accepted under the default");

    let lenient = Server::start(&["--tls-min-version", "1.2"]);
    let config = client_config(roots(&lenient.ca), &[&TLS12], &[b"h2"]);
    let stream = tls_connect(lenient.agent, config).await.expect("TLS 1.2 accepted when allowed");
    let (_, session) = stream.get_ref();
    assert_eq!(session.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let suite = session.negotiated_cipher_suite().expect("suite").suite();
    let name = format!("{suite:?}");
    assert!(name.starts_with("TLS_ECDHE_") && (name.contains("GCM") || name.contains("CHACHA20")), "{name}");
    // A TLS 1.3 client still gets TLS 1.3.
    let config = client_config(roots(&lenient.ca), &[&TLS13, &TLS12], &[b"h2"]);
    let stream = tls_connect(lenient.agent, config).await.expect("connect");
    assert_eq!(stream.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}

/// A TLS 1.1 ClientHello (no supported_versions extension), written by hand: no TLS library here speaks 1.1.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    // Suites the server does support, so that the version alone is what it refuses.
    let suites: [u16; 5] = [0x1301, 0xc02b, 0xc02f, 0xcca8, 0xc013];
    body.extend_from_slice(&u16::try_from(suites.len() * 2).expect("len").to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // Extensions a 1.1 client sends and the server understands, so that the version alone is what it refuses:
    // supported_groups (x25519, secp256r1), ec_point_formats, signature_algorithms (ecdsa_p256_sha256, rsa_sha256).
    let extensions: [u8; 30] = [
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, //
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, //
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01, //
        0x00, 0x17, 0x00, 0x00,
    ];
    body.extend_from_slice(&u16::try_from(extensions.len()).expect("len").to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(body.len()).expect("len").to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("len").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

async fn tls11_answer(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(&tls11_client_hello()).await.expect("write hello");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test]
async fn a_tls11_client_is_always_refused_with_a_protocol_version_alert() {
    for args in [&[][..], &["--tls-min-version", "1.2"][..]] {
        let server = Server::start(args);
        let answer = tls11_answer(server.agent).await;
        // An alert record (21), fatal (2), protocol_version (70); never a ServerHello (22).
        assert_eq!(answer.first(), Some(&21), "{args:?}: {answer:?}");
        assert_eq!(&answer[answer.len() - 2..], &[2, 70], "{args:?}: {answer:?}");
    }
}

#[tokio::test]
async fn the_ca_key_and_server_key_are_private_and_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[]);
    let tls_dir = server.data_dir.path().join("data").join("tls");
    let mode =
        |name: &str| std::fs::metadata(tls_dir.join(name)).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode("ca.key"), 0o600);
    assert_eq!(mode("server.key"), 0o600);
    let ca = std::fs::read(&server.ca).expect("ca");
    let data_dir = server.into_data_dir();
    let again = Server::start_in(data_dir, &[]);
    assert_eq!(std::fs::read(&again.ca).expect("ca"), ca, "the CA must not change on restart");
    assert_eq!(again.client().get("/health").await.status, 200);
}
