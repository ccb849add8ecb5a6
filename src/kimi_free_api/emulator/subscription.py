"""GetSubscriptionStats: an account's usage windows, which the admin console shows beside its plan.

Capture S7 shows the web app calling it, but not its fields. The answer here is a plausible shape (a list of
windows with used, limit and reset time, in the server's casing) so that the gateway's loose reader
(upstream/plan.py) and the console's "unknown" fall-back can both be exercised: `usage_stats: false` makes the
call unimplemented, answered not_found, like a Kimi without it.
"""

from __future__ import annotations

import time

from aiohttp import web

from kimi_free_api.emulator import frames
from kimi_free_api.emulator.errors import ConnectError, json_response
from kimi_free_api.emulator.runtime import Runtime, bearer

SUBSCRIPTION_STATS = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscriptionStats"
# (name, limit, length in seconds) of each window: free accounts' documented ones are 5-hour and weekly.
_WINDOWS = (("FIVE_HOURS", 50, 5 * 3600), ("WEEKLY", 300, 7 * 24 * 3600))


class SubscriptionRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        return [web.post(SUBSCRIPTION_STATS, self.stats)]

    async def stats(self, request: web.Request) -> web.Response:
        runtime = self._runtime
        runtime.state.count("subscription_stats")
        try:
            user_id = runtime.user_for_access(bearer(request))
            runtime.check_fault("subscription_stats", user_id)
            if not runtime.config.usage_stats:
                raise ConnectError("not_found", "unknown method GetSubscriptionStats")
        except ConnectError as exc:
            return exc.response()
        used = runtime.state.opened_streams.get(user_id, 0)
        now = time.time()
        windows = [
            {
                "window": name,
                "usedCount": str(used),  # 64-bit integers travel as strings in protobuf's JSON codec
                "limitCount": str(limit),
                "resetTime": frames.rfc3339(now - now % length + length),
            }
            for name, limit, length in _WINDOWS
        ]
        return json_response(200, runtime.cased({"stats": {"usages": windows}}))
