"""Connects to `bmm run --auth local` with the official Python MCP client's
OAuthClientProvider: discovery from the 401, registration, authorization
(answered headlessly), token, tool call, then a refresh.

Usage: oauth_client.py MCP_URL   (prints one line per check; exits 1 on the first failure)
"""

import asyncio
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {name}")


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client = client_info


async def main(url):
    answer = {}

    async def redirect_handler(authorization_url):
        # The local server auto-approves: /authorize answers with the redirect to our callback.
        async with httpx.AsyncClient(follow_redirects=False) as http:
            response = await http.get(authorization_url)
        location = response.headers.get("location", "")
        query = parse_qs(urlparse(location).query)
        check("authorization redirects with a code", response.status_code in (302, 303) and "code" in query, location)
        answer.update(code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0])

    async def callback_handler():
        return AuthorizationCodeResult(code=answer["code"], state=answer["state"], iss=answer["iss"])

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="bmm e2e",
            redirect_uris=["http://127.0.0.1:53682/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                check("registered a client", storage.client is not None and storage.client.client_id)
                check("holds an access token", storage.tokens is not None and storage.tokens.access_token)
                check("holds a refresh token", storage.tokens.refresh_token is not None)
                tools = [t.name for t in (await session.list_tools()).tools]
                check("tools/list with the token", "convert_length" in tools, tools)
                result = await session.call_tool("convert_length", {"value": 1, "from": "km", "to": "m"})
                check("tools/call with the token", not result.is_error and result.structured_content == {"value": 1000, "unit": "m"}, result)

                first = storage.tokens
                # Let the access token expire in the client's eyes: its next request refreshes.
                provider.context.token_expiry_time = time.time() - 10
                result = await session.call_tool("convert_length", {"value": 2, "from": "km", "to": "m"})
                check("tools/call after a refresh", not result.is_error and result.structured_content == {"value": 2000, "unit": "m"}, result)
                check("the refresh issued a new access token", storage.tokens.access_token != first.access_token)
                check("the refresh token rotated", storage.tokens.refresh_token != first.refresh_token)

    # Without a token, the server answers 401 with where to find its metadata.
    async with httpx.AsyncClient() as plain:
        response = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        header = response.headers.get("www-authenticate", "")
        check("401 without a token", response.status_code == 401 and "resource_metadata=" in header, header)


asyncio.run(main(sys.argv[1]))
