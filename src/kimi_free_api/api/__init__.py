"""The HTTP surfaces: each in its own subpackage (api/openai/), over what they all share here: routes, bearer tokens,
error middleware, body reading, SSE keep-alive and the one answer path (api/answering.py)."""
