claude mcp add --transport http units http://localhost:8080/mcp
