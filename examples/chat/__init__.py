"""A chat app on fastevents: a provider's answer pumped into a stream, served over SSE.

Run it with ``python -m examples.chat`` from the repository root (see README.md here).
"""
