"""Calls one tool of a deployed server with the official Python MCP client.

Usage: deploy_client.py MCP_URL TOOL JSON_ARGUMENTS
Prints the server's name, then the tool result's structured content (or its
text) as JSON; exits 1 when the call fails.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url, tool, arguments):
    async with streamable_http_client(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            print(init.server_info.name)
            result = await session.call_tool(tool, arguments)
            if result.is_error:
                print(f"tool error: {result.content}", file=sys.stderr)
                sys.exit(1)
            if result.structured_content is not None:
                print(json.dumps(result.structured_content, sort_keys=True))
            else:
                print("".join(getattr(c, "text", "") for c in result.content))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
