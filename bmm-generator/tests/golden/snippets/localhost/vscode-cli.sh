code --add-mcp '{"name":"units","type":"http","url":"http://localhost:8080/mcp"}'
