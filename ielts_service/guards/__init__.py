"""What stands between a request and a handler: payload validation, API keys and CORS, rate limits."""
