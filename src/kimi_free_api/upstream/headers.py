"""The request headers of Kimi's own web client, so the gateway's calls look like the site's."""

from __future__ import annotations

import random
from typing import Any

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
_SEC_CH_UA = '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"'


def browser_headers(origin: str, language: str, timezone: str, version: str = "") -> dict[str, str]:
    """`version`: the web client's X-Msh-Version (not sent when empty)."""
    headers = {
        "Accept": "*/*",
        "Accept-Language": f"{language},{language.split('-', 1)[0]};q=0.9,en;q=0.8",
        "Origin": origin,
        "Referer": origin + "/",
        "R-Timezone": timezone,
        "Sec-Ch-Ua": _SEC_CH_UA,
        "Sec-Ch-Ua-Mobile": "?0",
        "Sec-Ch-Ua-Platform": '"Windows"',
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
        "User-Agent": USER_AGENT,
        "X-Language": language,
        "X-Msh-Platform": "web",
    }
    if version:
        headers["X-Msh-Version"] = version
    return headers


def identity_headers(claims: dict[str, Any]) -> dict[str, str]:
    """Device, session and user ids: from the access token's claims when present, as the web client sends them."""
    device = str(claims.get("device_id") or f"7{random.randrange(10**17, 10**18)}")
    session = str(claims.get("ssid") or f"17{random.randrange(10**16, 10**17)}")
    headers = {"X-Msh-Device-Id": device, "X-Msh-Session-Id": session}
    if claims.get("sub"):
        headers["X-Traffic-Id"] = str(claims["sub"])
    return headers
