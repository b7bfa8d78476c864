"""Drives a `bmm run` server with the official Python MCP client and checks every answer.

Usage: client.py MCP_URL   (prints one line per check; exits 1 on the first failure)
"""

import asyncio
import json
import sys

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {name}")


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def main(url):
    async with streamable_http_client(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check("initialize names the server", init.server_info.name == "e2e", init.server_info)
            check("tools capability", init.capabilities.tools is not None)

            tools = {t.name: t for t in (await session.list_tools()).tools}
            check(
                "tools/list",
                sorted(tools) == ["add", "city_weather", "echo_secret", "fetch_city", "upstream_fails"],
                sorted(tools),
            )
            check("input schema served", tools["add"].input_schema["required"] == ["a", "b"])
            check("output schema served", tools["add"].output_schema["type"] == "object")
            check("annotations served", tools["add"].annotations.read_only_hint is True)

            r = await session.call_tool("add", {"a": 2, "b": 40})
            check("script tool result", not r.is_error and r.structured_content == {"sum": 42}, r)

            r = await session.call_tool("add", {"a": "two"})
            t = text_of(r)
            check("argument errors are tool errors naming the field", r.is_error and "`a`" in t and '"b"' in t, t)

            r = await session.call_tool("city_weather", {"city": "Paris/../admin?x=1"})
            body = json.loads(text_of(r))
            check("http tool reaches the upstream", not r.is_error, text_of(r))
            check("argument stays in its slot", body["path_city"] == "Paris/../admin?x=1", body)
            check("secret injected by reference", body["key_ok"] is True, body)
            check("response shaped to fields", sorted(body) == ["key_ok", "path_city"], body)

            r = await session.call_tool("fetch_city", {"city": "Oslo"})
            check("script fetch with a secret reference", not r.is_error and r.structured_content == {"city": "Oslo", "key_ok": True}, r)

            r = await session.call_tool("upstream_fails", {})
            t = text_of(r)
            check("upstream errors are tool errors with status", r.is_error and "503" in t and "maintenance" in t, t)

            r = await session.call_tool("echo_secret", {})
            t = text_of(r)
            check("an echoed secret is redacted", "s3cret-value" not in t and "[redacted]" in t, t)

            try:
                await session.call_tool("no_such_tool", {})
                check("unknown tool is a protocol error", False, "no error raised")
            except Exception as error:  # the client raises McpError
                check("unknown tool is a protocol error", "unknown tool" in str(error), error)

    # Session lifecycle on the 2025-11-25 lane: DELETE ends a session, and the
    # ended session is unknown afterwards.
    async with httpx.AsyncClient() as http:
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        init = {
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
        }
        response = await http.post(url, json=init, headers=headers)
        session_id = response.headers.get("mcp-session-id")
        check("initialize opens a session", response.status_code == 200 and session_id, response.status_code)
        with_session = {**headers, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        response = await http.delete(url, headers=with_session)
        check("DELETE ends the session", response.status_code == 204, response.status_code)
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        response = await http.post(url, json=ping, headers=with_session)
        check("an ended session is unknown", response.status_code == 404, response.status_code)
        response = await http.post(url, json=init, headers={**headers, "origin": "https://evil.example"})
        check("a foreign Origin is refused", response.status_code == 403, response.status_code)


asyncio.run(main(sys.argv[1]))
