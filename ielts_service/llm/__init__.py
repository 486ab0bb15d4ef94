"""How the model is called: the SDK client, retry policy, circuit breaker, budget, and the model's errors."""
