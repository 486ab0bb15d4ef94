"""The benchmark suite: `python -m bench` (or `make bench`) measures and writes report-latest.md.

Everything runs on loopback and stops by itself: a throw-away redis-server, the fake Azure
OpenAI server (in its own process), real `ielts-service serve` processes, a bare Quart app
under the same Hypercorn settings, `wrk` and an asyncio raw-socket client.
`python -m bench g j` (or any of a-k) measures only the figures named.
"""
