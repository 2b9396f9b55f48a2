"""The official AxonFlow Python SDK, unchanged, against a running AxonFlow (Rust) server.

Run by the end-to-end test `sdk::the_official_python_sdk_works_unchanged`, which starts the server, a fake
OpenAI-compatible upstream, issues the keys and sets:
  AXONFLOW_AGENT_URL, SSL_CERT_FILE (the server's CA: TLS is verified), AXONFLOW_TELEMETRY=off,
  SDK_CLIENT_ID / SDK_CLIENT_SECRET (a service key), SDK_ADMIN_ID / SDK_ADMIN_SECRET (an admin key).
Prints one line per check and a closing "N passed, N failed"; exits 1 on any failure.
"""

import asyncio
import os
import sys
import traceback

from axonflow import AxonFlow
from axonflow.exceptions import PolicyViolationError
from axonflow.types import AuditSearchRequest, TokenUsage

ENDPOINT = os.environ["AXONFLOW_AGENT_URL"]
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception:  # noqa: BLE001 - every failure is reported, then the run fails
            results.append((name, traceback.format_exc()))
        return fn
    return wrap


service = AxonFlow.sync(
    endpoint=ENDPOINT,
    client_id=os.environ["SDK_CLIENT_ID"],
    client_secret=os.environ["SDK_CLIENT_SECRET"],
    cache_enabled=False,
)
ADMIN = {
    "endpoint": ENDPOINT,
    "client_id": os.environ["SDK_ADMIN_ID"],
    "client_secret": os.environ["SDK_ADMIN_SECRET"],
    "cache_enabled": False,
}
state = {}


@check("health")
def _():
    assert service.health_check() is True


@check("pre-check allowed")
def _():
    approval = service.get_policy_approved_context(
        user_token="user-17", query="What were our top products last quarter?", context={"user_role": "analyst"}
    )
    assert approval.approved is True, approval
    assert approval.context_id.startswith("ctx_"), approval.context_id
    state["context_id"] = approval.context_id


@check("pre-check blocked")
def _():
    approval = service.get_policy_approved_context(user_token="user-17", query="admin' OR 1=1--")
    assert approval.approved is False, approval


@check("audit llm call")
def _():
    result = service.audit_llm_call(
        context_id=state["context_id"],
        response_summary="Top products were A and B",
        provider="openai",
        model="gpt-4o",
        token_usage=TokenUsage(prompt_tokens=12, completion_tokens=30, total_tokens=42),
        latency_ms=350,
    )
    assert result.success is True and result.audit_id, result


@check("proxy query allowed, response redacted")
def _():
    response = service.proxy_llm_call(
        user_token="user-17", query="Say hello to the team", request_type="chat", context={"user_role": "analyst"}
    )
    assert response.success is True, response
    assert "***@***.***" in response.result, response.result
    assert "jane@example.com" not in response.result, response.result


@check("proxy query blocked raises PolicyViolationError with the reason")
def _():
    try:
        service.proxy_llm_call(
            user_token="user-17", query="SELECT * FROM users WHERE id=1 UNION SELECT password FROM admin",
            request_type="chat",
        )
    except PolicyViolationError as error:
        assert "SQL injection" in str(error), str(error)
    else:
        raise AssertionError("the blocked query was not raised")


@check("mcp check input")
def _():
    allowed = service.mcp_check_input("postgres", "SELECT name FROM customers WHERE id = 7")
    assert allowed.allowed is True, allowed
    blocked = service.mcp_check_input("postgres", "SELECT * FROM t WHERE a='' OR 1=1--")
    assert blocked.allowed is False, blocked


@check("mcp check output masks PII")
def _():
    result = service.mcp_check_output("postgres", response_data=[{"name": "Jane", "ssn": "123-45-6789"}], row_count=1)
    assert result.allowed is True, result
    assert result.redacted_data[0]["ssn"] == "***-**-****", result.redacted_data


@check("audit search (async client: the sync wrapper has no search)")
def _():
    async def search():
        async with AxonFlow(**ADMIN) as admin:
            return await admin.search_audit_logs(AuditSearchRequest(limit=50))

    found = asyncio.run(search())
    assert len(found.entries) >= 5, found
    assert all(entry.id for entry in found.entries)


@check("connectors list")
def _():
    assert service.list_connectors() == []


@check("static policies: create, list, toggle, decide, delete (the tenant's bundle)")
def _():
    from axonflow.policies import CreateStaticPolicyRequest, PolicyAction, PolicyCategory, PolicySeverity

    admin = AxonFlow.sync(**ADMIN)
    created = admin.create_static_policy(CreateStaticPolicyRequest(
        name="falcon is confidential", category=PolicyCategory.SECURITY_ADMIN, pattern=r"(?i)\bfalcon\b",
        severity=PolicySeverity.HIGH, action=PolicyAction.BLOCK, tags=["sdk"]))
    assert created.id and created.tier.value == "tenant" and created.enabled, created
    assert [p.id for p in admin.list_static_policies()] == [created.id]
    blocked = service.get_policy_approved_context(user_token="user-17", query="Status of project Falcon?")
    assert not blocked.approved and "falcon is confidential" in (blocked.block_reason or ""), blocked
    assert not admin.toggle_static_policy(created.id, False).enabled
    allowed = service.get_policy_approved_context(user_token="user-17", query="Status of project Falcon?")
    assert allowed.approved, allowed
    admin.delete_static_policy(created.id)
    assert admin.list_static_policies() == []


@check("connectors: install with sealed credentials, list, uninstall")
def _():
    from axonflow.types import ConnectorInstallRequest

    admin = AxonFlow.sync(**ADMIN)
    admin.install_connector(ConnectorInstallRequest(
        connector_id="snowflake", name="Snowflake", tenant_id="default",
        options={"account": "acme"}, credentials={"password": "sdk-secret-1"}))
    listed = service.list_connectors()
    assert [c.id for c in listed] == ["snowflake"] and listed[0].installed, listed
    assert "sdk-secret-1" not in repr(admin.get_connector("snowflake"))
    admin.uninstall_connector("snowflake")
    assert service.list_connectors() == []


failed = 0
for name, error in results:
    if error is None:
        print(f"{name}: PASS")
    else:
        failed += 1
        print(f"{name}: FAIL\n{error}")
print(f"sdk: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
