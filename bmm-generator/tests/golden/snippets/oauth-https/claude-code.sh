claude mcp add --transport http weather https://weather.example.com/mcp
