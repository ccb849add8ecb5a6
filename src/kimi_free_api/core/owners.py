"""Who owns what the gateway keeps for a client: uploaded files, kept chats and stored responses.

With its own Kimi tokens (seed mode) a client owns what those tokens' accounts hold, and Kimi itself keeps other
tokens out. With a gateway API key (server mode) every key shares the server's accounts, so the key is the owner:
another key is answered 404, as if the thing did not exist. The owner is a fingerprint, never the key itself.
"""

from __future__ import annotations

import hashlib

# The owner of what a client with its own Kimi tokens keeps.
SEED = ""


def key_owner(api_key: str) -> str:
    return hashlib.sha256(b"kimi-free-api key owner\x00" + api_key.encode()).hexdigest()
