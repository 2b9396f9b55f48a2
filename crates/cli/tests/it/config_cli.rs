use crate::support::binary;

fn check(toml: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("axonflow.toml");
    std::fs::write(&path, toml).expect("write");
    let output = binary()
        .args(["config", "check", "--json", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .expect("run");
    (output.status.code(), String::from_utf8(output.stdout).expect("utf-8"))
}

#[test]
fn config_check_accepts_a_valid_file() {
    let (code, out) = check("[agent]\nlisten = \"0.0.0.0:8443\"\n[log]\nformat = \"json\"\n", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).expect("json")["ok"], true);
}

#[test]
fn config_check_lists_every_problem_with_its_location_and_exits_2() {
    let (code, out) = check(
        "[agent]\nlisten = \"x\"\nlisen = \"typo\"\n[tls]\nmin_version = \"1.0\"\n",
        &[("AXONFLOW_HTTP_MAX_BODY_BYTES", "-1")],
    );
    assert_eq!(code, Some(2), "{out}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("json");
    let problems: Vec<String> = value["problems"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| format!("{} {}", p["location"].as_str().unwrap_or(""), p["message"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("axonflow.toml:3") && p.contains("unknown key `agent.lisen`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("axonflow.toml:2") && p.contains("agent.listen")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("axonflow.toml:5") && p.contains("tls.min_version")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("AXONFLOW_HTTP_MAX_BODY_BYTES")), "{problems:?}");
}

#[test]
fn serve_refuses_an_invalid_configuration_with_exit_code_2() {
    let output = binary().args(["serve", "--tls-min-version", "1.1"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("flag --tls-min-version"), "{stderr}");
}

#[test]
fn help_explains_the_commands() {
    let output = binary().arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    for word in ["serve", "agent", "orchestrator", "config"] {
        assert!(text.contains(word), "{text}");
    }
    let output = binary().args(["serve", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("AXONFLOW_AGENT_LISTEN") && text.contains("listening agent="), "{text}");
}

#[test]
fn serve_refuses_a_bundle_that_compiles_slower_than_policy_max_compile_ms() {
    let (code, out) = check("[policy]\nmax_compile_ms = 0\n", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("policy.max_compile_ms"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let output = binary()
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--agent-listen", "127.0.0.1:0", "--orchestrator-listen", "127.0.0.1:0"])
        .env("AXONFLOW_POLICY_MAX_COMPILE_MS", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the policy bundle was refused"), "{stderr}");
    assert!(stderr.contains("more than the limit of 1ms"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).is_empty(), "it never listened");
}

#[test]
fn gateway_max_approvals_is_checked_in_the_file_and_the_environment() {
    let (code, out) = check("[gateway]\nmax_approvals = 50000\n", &[]);
    assert_eq!(code, Some(0), "{out}");
    for (toml, env) in [
        ("[gateway]\nmax_approvals = 0\n", &[][..]),
        ("", &[("AXONFLOW_GATEWAY_MAX_APPROVALS", "many")][..]),
        ("", &[("AXONFLOW_GATEWAY_MAX_APPROVALS", "100000001")][..]),
    ] {
        let (code, out) = check(toml, env);
        assert_eq!(code, Some(2), "{toml} {env:?}: {out}");
        assert!(out.contains("gateway.max_approvals"), "{out}");
    }
}
