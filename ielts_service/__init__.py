"""ielts-service: IELTS Speaking questions over HTTP, from Azure OpenAI or an offline bank."""

__version__ = "0.1.0"
