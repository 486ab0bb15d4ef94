"""Logs, request ids and metrics: what operators see."""
