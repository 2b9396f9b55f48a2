//! Starting the real binary and talking to it over TLS.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_axonflow"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AXONFLOW_") {
            command.env_remove(name);
        }
    }
    command
}

/// Writes `input` to a spawned command's stdin and closes it. A command that rejects its arguments may exit
/// before it reads its input: a broken pipe is not a failure, any other error is.
pub fn feed(child: &mut Child, input: &str) {
    use std::io::Write;
    let mut stdin = child.stdin.take().expect("stdin");
    if let Err(error) = stdin.write_all(input.as_bytes()) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {error}");
    }
}

/// A running `axonflow serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub agent: SocketAddr,
    pub orchestrator: SocketAddr,
    pub ca: PathBuf,
    pub data_dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Server::start_in(data_dir, extra)
    }

    /// Starts with extra environment variables (`AXONFLOW_*` settings without a flag).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Server::spawn(data_dir, extra, env)
    }

    pub fn start_in(data_dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::spawn(data_dir, extra, &[])
    }

    /// Starts in a given data directory (a restart) with extra environment variables.
    pub fn spawn(data_dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_command("serve", data_dir, extra, env)
    }

    /// Runs `axonflow COMMAND` (`serve`, `agent` or `orchestrator`); a service it does not run has port 0.
    pub fn spawn_command(
        command: &str,
        data_dir: tempfile::TempDir,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let stderr_path = data_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = binary()
            .arg(command)
            .arg("--data-dir")
            .arg(data_dir.path().join("data"))
            .args(["--agent-listen", "127.0.0.1:0", "--orchestrator-listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn axonflow");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        assert!(
            line.starts_with("listening "),
            "no listening line; got {line:?}; stderr: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .unwrap_or("https://0.0.0.0:0")
                .to_owned()
        };
        let addr = |url: String| url.trim_start_matches("https://").parse::<SocketAddr>().expect("address");
        Server {
            agent: addr(field("agent")),
            orchestrator: addr(field("orchestrator")),
            ca: PathBuf::from(field("ca")),
            child: Some(child),
            data_dir,
            stderr_path,
        }
    }

    /// Stops the server (SIGKILL) and hands over its data directory, for a restart on the same data.
    pub fn into_data_dir(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"))
    }

    pub fn data(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// The bootstrap admin credential written on first start.
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data().join("admin.key")).expect("admin.key").trim().to_owned()
    }

    /// Runs `axonflow ARGS --data-dir DATA` against this server's deployment.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut child = binary()
            .args(args)
            .arg("--data-dir")
            .arg(self.data())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        feed(&mut child, stdin.unwrap_or(""));
        child.wait_with_output().expect("cli output")
    }

    /// A license key of `tenant` (`kind` service or admin) with `permissions`, issued with the operator CLI.
    pub fn issue(&self, tenant: &str, kind: &str, permissions: &[&str]) -> String {
        let mut args =
            vec!["license", "issue", "--tenant", tenant, "--kind", kind, "--expires", "2099-01-01"];
        if kind == "service" {
            args.extend(["--service", "app", "--type", "backend-service"]);
        }
        for permission in permissions {
            args.extend(["--permission", permission]);
        }
        let out = self.cli(&args, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not exit within {limit:?}");
    }

    pub fn client(&self) -> Client {
        Client::new(&self.ca, self.agent)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn roots(ca: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(cert.expect("ca cert")).expect("add root");
    }
    roots
}

pub fn client_config(
    roots: RootCertStore,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config).connect(ServerName::try_from("localhost").expect("name"), tcp).await
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
    pub version: hyper::Version,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// An HTTPS client for one server address; every request is a new connection.
pub struct Client {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
}

impl Client {
    pub fn new(ca: &Path, addr: SocketAddr) -> Client {
        Client { config: client_config(roots(ca), rustls::DEFAULT_VERSIONS, &[b"h2", b"http/1.1"]), addr }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], Vec::new()).await
    }

    /// GET with `Authorization: Bearer KEY`.
    pub async fn get_as(&self, key: &str, path: &str) -> Reply {
        self.send("GET", path, &[("authorization", &format!("Bearer {key}"))], Vec::new()).await
    }

    /// POST a JSON body with `X-License-Key: KEY`.
    pub async fn post_json(&self, key: &str, path: &str, body: &serde_json::Value) -> Reply {
        let headers = [("x-license-key", key), ("content-type", "application/json")];
        self.send("POST", path, &headers, body.to_string().into_bytes()).await
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let stream = tls_connect(self.addr, self.config.clone()).await.expect("tls connect");
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let mut request = hyper::Request::builder().method(method).uri(format!("https://localhost{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        let response = if h2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("h2");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("send")
        } else {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("send")
        };
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        Reply { status, headers, body, version }
    }
}
