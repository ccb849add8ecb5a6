"""Every route of the OpenAI- and Anthropic-facing surfaces, in one table."""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.api import metrics, misc
from kimi_free_api.api.admin.routes import add_admin_routes
from kimi_free_api.api.anthropic import messages as anthropic_messages
from kimi_free_api.api.anthropic import models as anthropic_models
from kimi_free_api.api.anthropic.models import for_anthropic_clients as for_anthropic
from kimi_free_api.api.errors import add_common_headers, error_middleware
from kimi_free_api.api.metering import request_log_middleware
from kimi_free_api.api.openai import chat, files, models, responses

# Clients are told to use a base URL ending in /v1, but people paste the bare host too.
_PREFIXES = ("/v1", "")


def add_routes(app: web.Application) -> None:
    # Outside the error middleware: the log sees the status of the error body it made.
    app.middlewares.append(request_log_middleware)
    app.middlewares.append(error_middleware)
    app.on_response_prepare.append(add_common_headers)
    router = app.router
    for prefix in _PREFIXES:
        router.add_post(f"{prefix}/chat/completions", chat.chat_completions)
        router.add_post(f"{prefix}/responses", responses.create_response)
        router.add_get(prefix + "/responses/{response_id}", responses.get_response)
        router.add_delete(prefix + "/responses/{response_id}", responses.delete_response)
        router.add_get(f"{prefix}/models", for_anthropic(anthropic_models.list_models, models.list_models))
        router.add_get(prefix + "/models/{model:.+}", for_anthropic(anthropic_models.get_model, models.get_model))
        router.add_post(f"{prefix}/messages", anthropic_messages.create_message)
        router.add_post(f"{prefix}/messages/count_tokens", anthropic_messages.count_tokens)
        router.add_post(f"{prefix}/files", files.upload_file)
        router.add_get(f"{prefix}/files", files.list_files)
        router.add_get(prefix + "/files/{file_id}", files.retrieve_file)
        router.add_get(prefix + "/files/{file_id}/content", files.file_content)
        router.add_delete(prefix + "/files/{file_id}", files.delete_file)
    router.add_post("/token/check", misc.token_check)
    router.add_get("/ping", misc.ping)
    router.add_get("/healthz", misc.healthz)
    router.add_get("/", misc.welcome)
    add_admin_routes(router)
    router.add_get("/metrics", metrics.scrape)
