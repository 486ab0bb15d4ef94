"""ielts-service: IELTS Speaking questions over HTTP, from Azure OpenAI or an offline bank."""

from ielts_service.observability.tracing import keep_unused_sdk_out

__version__ = "0.1.0"

keep_unused_sdk_out()  # before anything imports redis: see observability/tracing.py
