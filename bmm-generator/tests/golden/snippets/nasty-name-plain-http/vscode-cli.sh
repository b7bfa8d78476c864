code --add-mcp "{\"name\":\"My \\\"quoted\\\" server's "'$(touch pwned) `x` & <b>|[a](b)","type":"http","url":"http://10.0.0.7:8080/mcp?team=a&b=c%20d"}'
