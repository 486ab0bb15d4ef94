"""HTTP: blueprints, the envelope, validation before handlers, error mapping."""
