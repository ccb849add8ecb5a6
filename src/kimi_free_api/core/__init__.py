"""Protocol-neutral translation core: between OpenAI-shaped requests and upstream chat events."""
