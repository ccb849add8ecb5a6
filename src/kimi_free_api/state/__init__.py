"""Durable state: accounts configured on the server and gateway API keys (hashed), in a SQLite file."""
