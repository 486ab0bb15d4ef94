"""State shared between workers and instances: the one Redis client and its gate, pools, single-flight, rate-limit store, background work."""
