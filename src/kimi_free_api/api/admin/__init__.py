"""The admin console at /admin and the JSON admin API behind it (/admin/api/…), both behind ADMIN_KEY: accounts,
API keys with their limits, and the request log, managed live."""
