"""The OpenAI surface: chat completions, the Responses API, models and files, in OpenAI's wire format."""
