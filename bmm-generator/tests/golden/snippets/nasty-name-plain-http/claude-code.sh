claude mcp add --transport http "My \"quoted\" server's "'$(touch pwned) `x` & <b>|[a](b)' 'http://10.0.0.7:8080/mcp?team=a&b=c%20d'
