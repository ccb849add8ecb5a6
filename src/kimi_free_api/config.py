"""Settings, read from the environment (and overridden by CLI flags).

Every knob the gateway has lives here, so README's settings table can be checked against one file.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROXY_SCHEMES = frozenset({"http", "https"})
SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})


def proxy_url_problem(url: str) -> str:
    """What makes `url` unusable as a proxy ("" when it is usable, or empty); never repeats the URL, which may
    carry a password."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme.lower() not in PROXY_SCHEMES | SOCKS_SCHEMES:
        return f"a proxy URL must start with one of {', '.join(sorted(PROXY_SCHEMES | SOCKS_SCHEMES))}://"
    try:
        port = parts.port
    except ValueError:
        return "the proxy URL has an invalid port"
    if not parts.hostname or (parts.scheme.lower() in SOCKS_SCHEMES and port is None):
        return "a proxy URL needs a host (and, for SOCKS, a port)"
    return ""


def ca_file_problem(path: str) -> str:
    """What makes `path` unusable as a file of PEM CA certificates ("" when it is usable, or empty)."""
    if not path:
        return ""
    try:
        # A bare context: reading the file is the check, without loading the system's certificates every time.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:  # before OSError, its base class
        return f"no PEM certificate could be read from {path}"
    except OSError as exc:
        return f"{exc.strerror or exc}: {path}"
    return ""


class SettingsError(ValueError):
    pass


LEGACY_REFRESH_PATH = "/api/auth/token/refresh"
CONNECT_REFRESH_PATH = "/api/account.gateway.v1.AuthService/RefreshToken"
# The web app's auth host for each public origin; any other origin (a proxy, the emulator) serves both itself.
_AUTH_HOSTS = {"www.kimi.com": "auth.kimi.com", "www.kimi.ai": "auth.kimi.ai"}


def auth_origin(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    host = _AUTH_HOSTS.get((parts.hostname or "").lower())
    return f"{parts.scheme}://{host}" if host else f"{parts.scheme}://{parts.netloc}"


def _env_bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    kimi_base_url: str = "https://www.kimi.com"
    # Where refresh tokens are exchanged; empty means the chosen style's own endpoint (`refresh_url`).
    kimi_refresh_url: str = ""
    # "connect": POST {"refresh_token"} to the auth host's AuthService/RefreshToken, as the web app does since
    # 2026, falling back to the legacy call where that answers 404/405/415; "rest": only the legacy
    # GET {base}/api/auth/token/refresh with the refresh token as bearer (still used by 2026 third-party clients).
    kimi_refresh_style: str = "connect"
    # Sent as X-Msh-Version: without it Kimi serves a stale catalog bucket (2026 clients send 2.0.0 to 2.2.0).
    kimi_msh_version: str = "2.0.0"
    # Connect-RPC scenario sent for ordinary chats; the protocol document lists several seen in 2025-26.
    kimi_scenario: str = "SCENARIO_K2D5"
    # `-research`: Deep Research is the `deep-researcher` agent on SCENARIO_OK_COMPUTER, with search and ask-user
    # tools (evidence P6). An empty KIMI_RESEARCH_AGENT sends only the scenario (set SCENARIO_RESEARCH for the
    # older guess).
    kimi_research_scenario: str = "SCENARIO_OK_COMPUTER"
    kimi_research_agent: str = "deep-researcher"
    # How "append" frames carry text: "delta" (only the new text) or "cumulative" (all text so far).
    # The protocol document marks this unknown; every known client treats it as a delta.
    kimi_append_mode: str = "delta"
    kimi_language: str = "zh-CN"
    kimi_timezone: str = "Asia/Shanghai"
    kimi_proxy: str = ""
    # PEM file of CA certificates trusted for Kimi and its object storage besides the system's (a TLS-inspecting
    # proxy's own CA); empty trusts the system's only. Verification is never turned off.
    kimi_ca_file: str = ""
    # Append the shape of every envelope of Kimi's Chat streams (no text, ids or tokens) to this JSONL file, for a
    # bug report (upstream/trace.py); empty records nothing. Off by default: it costs a write per envelope.
    kimi_trace_file: str = ""
    connect_timeout_s: float = 15.0
    # Longest silence tolerated from a running upstream stream before it is treated as dead.
    stream_idle_timeout_s: float = 120.0
    # Refresh access tokens this long before their JWT expiry.
    token_refresh_margin_s: float = 60.0
    # Lifetime assumed for an access token whose expiry cannot be read.
    token_default_ttl_s: float = 300.0
    models_cache_ttl_s: float = 600.0
    # A stream is written to at most once per this window; frames arriving faster are relayed together (0: every
    # read at once). The first content is never delayed, nor is a stream slower than one frame per window.
    # Ordinary token streams are slower than this and are never delayed; see docs/benchmarks.md.
    relay_coalesce_ms: float = 25.0
    # Delete the upstream chat after answering unless the client asked to keep it.
    auto_delete: bool = True
    # Automatic continuation: an answered chat is kept this long after its last turn, so a client resending the
    # history continues it; then the sweeper deletes it. 0 deletes every chat right after its answer.
    conversation_ttl_s: float = 1800.0
    # How often idle and orphaned chats are looked for.
    sweep_interval_s: float = 30.0
    # A chat the sweeper fails to delete is tried again after `cleanup_retry_s`, at most `cleanup_attempts` times
    # in all, then forgotten (its token is dead or was never real: nobody could delete it). Ten minutes of retries
    # outlast a passing Kimi outage.
    cleanup_attempts: int = 10
    cleanup_retry_s: float = 60.0
    # Open client connections at most; 0: half of what the open-file limit leaves (each stream also holds one to
    # Kimi). When full, the connection idle longest is closed to make room; with every one busy, 503.
    max_connections: int = 0
    # A new connection must have sent its first request head within this (slow-trickling clients are closed).
    request_head_timeout_s: float = 10.0
    # An idle keep-alive connection is closed after this. Longer than nginx's 60 s upstream keep-alive, so the
    # proxy, not the gateway, closes first and never sends a request into a closing connection.
    idle_connection_timeout_s: float = 75.0
    # The whole request body must arrive within this.
    request_body_timeout_s: float = 120.0
    # Largest request body accepted (base64 attachments make chat requests big).
    max_request_bytes: int = 100 * 1024 * 1024
    # Remove Kimi's citation markers (whole `\ue3a0cite…\ue3a8` and `🛠…🛠` sequences) from answer text.
    strip_citation_markers: bool = True
    # Show Kimi's citation markers (`web_search:1#N`) as `[N]`, numbered like the 【检索 N】 search lines, instead
    # of removing them. Off by default: `-silent` models and clients that hide the search lines would show
    # footnotes that point nowhere.
    citation_footnotes: bool = False
    # The Retry-After given when Kimi reports an overload (`block.exception`) and no other account could answer.
    # Kimi names no wait; a second is enough for a busy model and short enough for an SDK's automatic retry.
    overload_retry_after_s: float = 1.0
    # How usage is counted: "bpe" (a real BPE vocabulary, core/usage/tokenizer.py; ~4.5 MB) or "estimate" (by
    # character).
    usage_tokenizer: str = "bpe"
    # Server mode: Kimi tokens of the server's own accounts (comma-separated), and/or a file with one per line.
    kimi_tokens: str = ""
    kimi_tokens_file: str = ""
    # Gateway API keys for server mode (comma-separated; `kimi-free-api keys create` adds hashed ones).
    api_keys: str = ""
    # The admin console (/admin) and its JSON API (/admin/api/…) log in with this key; empty disables both.
    admin_key: str = ""
    # How often each instance reads the stored accounts again, so accounts added or changed by another instance's
    # admin console or by the CLI join its pool without a restart.
    account_sync_interval_s: float = 5.0
    # How long an admin console login lasts.
    admin_session_ttl_s: float = 12 * 3600.0
    # The request log (shown in the admin console): how many requests it keeps, and for how long. It is in the
    # SQLite file, or in Redis with REDIS_URL. 0 entries turns it off.
    request_log_max_entries: int = 10_000
    request_log_max_age_s: float = 7 * 24 * 3600.0
    # Keep each request's prompt in the log too. Off by default: prompts are the users' data.
    request_log_prompts: bool = False
    # GET /metrics in Prometheus' format. On by default: nothing runs per relayed chunk (README, "Metrics").
    metrics_enabled: bool = True
    # Bearer GET /metrics asks for; empty leaves it open (put it behind your own network rules then).
    metrics_key: str = ""
    # Whether clients may send their own Kimi tokens (seed mode): "auto" = yes unless the server has accounts.
    allow_client_tokens: str = "auto"
    data_dir: str = "data"
    # Several gateway instances behind one load balancer share pool limits and conversations through Redis.
    redis_url: str = ""
    max_in_flight_per_account: int = 1
    # Seed mode: client-sent tokens the pool tracks at most (each about 1 KB); the least recently used idle one is
    # forgotten past this. Tokens a request may carry are capped at 32 (api/auth.py).
    max_client_accounts: int = 10_000
    min_start_interval_s: float = 0.5
    # How long a request waits for a free account before 429.
    capacity_wait_s: float = 30.0
    failover_attempts: int = 3
    # Kimi's peak-hour refusal of free accounts (REASON_SERVER_OVERLOADED_FOR_FREE_USER) names no wait: the 503's
    # Retry-After. Failover stops on it, since every free account gets the same answer.
    free_tier_retry_after_s: float = 30.0
    # A model tried once when Kimi refuses free accounts (e.g. k2d6-chat, an Instant model); empty tries none.
    overload_fallback_model: str = ""
    # Server accounts' refresh tokens exchanged at once at start-up (then kept fresh by the prober); 0 leaves each
    # exchange to the first request needing it.
    token_warmup_concurrency: int = 8
    cooldown_rate_limited_s: float = 60.0
    cooldown_quota_s: float = 3600.0
    probe_interval_s: float = 300.0
    # SSE keep-alive comment interval while a stream waits or Kimi is silent.
    keepalive_s: float = 15.0
    # A non-streamed answer silent this long (waiting for an account, for Kimi's first words, or for the rest of a
    # long answer) gets its 200 and headers early, then a space after every further interval of silence, then its
    # JSON body, so that proxies with an idle limit (Cloudflare's 100 s) do not drop it. 0 (the default) turns it
    # off, because once the 200 is out a later failure can no longer change the status: it arrives as the error
    # object in a 200 body, which clients that look only at the status would take for an answer.
    whole_answer_keepalive_s: float = 0.0
    # Attachments (image_url / file parts, POST /v1/files): the largest one, how many per request.
    max_attachment_bytes: int = 100 * 1024 * 1024
    max_attachments: int = 10
    # Longest download of an attachment URL, and longest upload of one attachment to Kimi.
    attachment_transfer_timeout_s: float = 120.0
    # How long Kimi may take to parse an uploaded attachment.
    file_parse_timeout_s: float = 120.0
    # Let attachment URLs point at 127.0.0.0/8 and ::1. For local testing only; other private ranges stay refused.
    allow_loopback_fetch: bool = False
    # How files reach Kimi, and how the Chat request names them (upstream/files.py documents the variants).
    kimi_upload_flow: str = "direct"
    kimi_file_ref_style: str = "block"
    # Names clients hard-code, mapped to Kimi models (core/models/aliases.py): glob=model rules, first match wins,
    # or a JSON object. Claude Opus/Sonnet and OpenAI's reasoning models get thinking; Haiku and the small or older
    # GPT models the fast answer. Only model families that exist are mapped, so a made-up name still gets its 404.
    # Empty: no aliases.
    model_aliases: str = (
        "claude-*haiku*=kimi,claude-*=kimi-thinking,gpt-3.5*=kimi,gpt-4*=kimi,gpt-5*mini*=kimi,gpt-5*nano*=kimi,"
        "gpt-5*=kimi-thinking,chatgpt-*=kimi,o1*=kimi-thinking,o3*=kimi-thinking,o4*=kimi-thinking"
    )
    # The longest prompt sent as one Kimi message (Kimi's web chat takes about 200,000 characters); a longer one
    # sends its history as an uploaded file (core/conversation/oversize.py).
    max_prompt_chars: int = 200_000
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def legacy_refresh_url(self) -> str:
        return self.kimi_base_url.rstrip("/") + LEGACY_REFRESH_PATH

    @property
    def refresh_url(self) -> str:
        if self.kimi_refresh_url:
            return self.kimi_refresh_url
        if self.kimi_refresh_style == "rest":
            return self.legacy_refresh_url
        return auth_origin(self.kimi_base_url) + CONNECT_REFRESH_PATH

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @property
    def model_alias_rules(self) -> list[tuple[str, str]]:
        """MODEL_ALIASES as (pattern, model) rules, in order: a JSON object, or `pattern=model,pattern=model`."""
        text = self.model_aliases.strip()
        if text.startswith("{"):
            try:
                mapping = json.loads(text)
            except ValueError as exc:
                raise SettingsError(f"MODEL_ALIASES is not valid JSON: {exc}") from None
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise SettingsError('MODEL_ALIASES as JSON must be an object of strings, e.g. {"claude-*": "kimi"}')
            pairs = list(mapping.items())
        else:
            pairs = [(rule.partition("=")[0], rule.partition("=")[2]) for rule in text.split(",") if rule.strip()]
        rules = [(pattern.strip(), model.strip()) for pattern, model in pairs]
        for pattern, model in rules:
            if not pattern or not model:
                raise SettingsError(f"MODEL_ALIASES: the rule {pattern}={model} needs a pattern and a model name")
        return rules

    def server_tokens(self) -> list[str]:
        tokens = [t.strip() for t in self.kimi_tokens.split(",") if t.strip()]
        if self.kimi_tokens_file:
            try:
                lines = Path(self.kimi_tokens_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise SettingsError(f"KIMI_TOKENS_FILE: {exc.strerror}: {self.kimi_tokens_file}") from exc
            tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return list(dict.fromkeys(tokens))

    def with_overrides(self, **changes: Any) -> Settings:
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given).validated()

    def validated(self) -> Settings:
        if not 0 < self.port < 65536:
            raise SettingsError(f"PORT must be between 1 and 65535, got {self.port}")
        if not self.kimi_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"KIMI_BASE_URL must be an http(s) URL, got {self.kimi_base_url!r}")
        if self.kimi_refresh_style not in ("rest", "connect"):
            raise SettingsError("KIMI_REFRESH_STYLE must be 'rest' or 'connect'")
        if self.kimi_append_mode not in ("delta", "cumulative"):
            raise SettingsError("KIMI_APPEND_MODE must be 'delta' or 'cumulative'")
        if self.kimi_upload_flow not in ("direct", "presign"):
            raise SettingsError("KIMI_UPLOAD_FLOW must be 'direct' or 'presign'")
        if self.kimi_file_ref_style not in ("block", "refs"):
            raise SettingsError("KIMI_FILE_REF_STYLE must be 'block' or 'refs'")
        if self.max_prompt_chars < 1000:
            raise SettingsError(f"MAX_PROMPT_CHARS must be at least 1000, got {self.max_prompt_chars}")
        if self.max_attachment_bytes < 1 or self.max_attachments < 0:
            raise SettingsError("MAX_ATTACHMENT_BYTES must be positive and MAX_ATTACHMENTS not negative")
        if self.usage_tokenizer not in ("bpe", "estimate"):
            raise SettingsError("USAGE_TOKENIZER must be 'bpe' or 'estimate'")
        if self.allow_client_tokens not in ("auto", "true", "false"):
            raise SettingsError("ALLOW_CLIENT_TOKENS must be auto, true or false")
        if self.max_connections < 0:
            raise SettingsError("MAX_CONNECTIONS must not be negative (0: derived from the open-file limit)")
        if self.max_client_accounts < 1:
            raise SettingsError("MAX_CLIENT_ACCOUNTS must be at least 1")
        if self.max_in_flight_per_account < 1 or self.failover_attempts < 1 or self.cleanup_attempts < 1:
            raise SettingsError("MAX_IN_FLIGHT_PER_ACCOUNT, FAILOVER_ATTEMPTS and CLEANUP_ATTEMPTS must be at least 1")
        if problem := proxy_url_problem(self.kimi_proxy):
            raise SettingsError(f"KIMI_PROXY: {problem}")
        if problem := ca_file_problem(self.kimi_ca_file):
            raise SettingsError(f"KIMI_CA_FILE: {problem}")
        self.model_alias_rules  # noqa: B018 (raises SettingsError for a malformed map)
        if not self.overload_retry_after_s >= 0:  # also refuses NaN
            raise SettingsError("OVERLOAD_RETRY_AFTER_S must not be negative")
        if not self.whole_answer_keepalive_s >= 0:  # also refuses NaN
            raise SettingsError("WHOLE_ANSWER_KEEPALIVE_S must not be negative (0 turns it off)")
        if self.token_warmup_concurrency < 0:
            raise SettingsError("TOKEN_WARMUP_CONCURRENCY must not be negative")
        for key in self.api_key_list:
            if key.startswith("eyJ") or len(key) < 16:
                raise SettingsError("API_KEYS entries must be at least 16 characters and must not be Kimi tokens")
        if self.request_log_max_entries < 0:
            raise SettingsError("REQUEST_LOG_MAX_ENTRIES must not be negative (0 turns the request log off)")
        for name in (
            "admin_session_ttl_s",
            "account_sync_interval_s",
            "request_log_max_age_s",
            "connect_timeout_s",
            "stream_idle_timeout_s",
            "token_default_ttl_s",
            "keepalive_s",
            "probe_interval_s",
            "attachment_transfer_timeout_s",
            "file_parse_timeout_s",
            "cleanup_retry_s",
            "free_tier_retry_after_s",
            "request_head_timeout_s",
            "idle_connection_timeout_s",
            "request_body_timeout_s",
        ):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise SettingsError(f"{name.upper()} must be positive")
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            try:
                if kind is bool:
                    values[f.name] = _env_bool(raw, f.name.upper())
                elif kind is int:
                    values[f.name] = int(raw)
                elif kind is float:
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise SettingsError(f"{f.name.upper()}: {exc}") from exc
        return cls(**values).validated()
