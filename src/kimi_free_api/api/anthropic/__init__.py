"""The Anthropic Messages API surface (`POST /v1/messages`, `count_tokens`, the model list), over the same core
as the OpenAI surfaces: requests become a `ChatRequest`, answers are read as the core's guided events."""
