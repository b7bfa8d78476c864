code --add-mcp '{"name":"weather","type":"http","url":"https://weather.example.com/mcp"}'
