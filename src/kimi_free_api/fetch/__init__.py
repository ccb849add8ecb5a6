"""Server-side fetching of client-supplied attachment URLs, safe against SSRF.

`policy` decides which addresses may be contacted (a pure function), `resolver` makes aiohttp connect only to
addresses the policy allows (pinned after resolution, re-checked at connect time), `fetcher` downloads with
self-followed redirects and streaming size/time caps, `dataurl` decodes `data:` URLs and bare base64, and `loader`
turns an attachment reference into bytes for the core.
"""
