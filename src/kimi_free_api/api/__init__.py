"""The OpenAI-facing HTTP surface: routes, request validation, OpenAI error objects and SSE framing."""
