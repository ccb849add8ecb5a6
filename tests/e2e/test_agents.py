"""Real agent frameworks running tool loops through the gateway: the OpenAI Agents SDK (over /v1/responses and
over chat completions) and LangChain's `bind_tools`. Kimi's side of each loop is scripted in the emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI
from pydantic import BaseModel, SecretStr

from kimi_free_api.emulator import Account, Emulator
from tests.e2e.support import Gateway, openai_client

set_tracing_disabled(True)  # tracing would otherwise export to OpenAI

CALLS: list[dict[str, Any]] = []


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    CALLS.append({"city": city})
    return f"sunny, 21 °C in {city}"


def call(name: str, arguments: str) -> str:
    return f'<tool_call name="{name}">{arguments}</tool_call>'


def sent_texts(emulator: Emulator) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in emulator.state.chat_requests]


@pytest.fixture
async def agent_client(gateway: Gateway, account: Account) -> AsyncIterator[AsyncOpenAI]:
    # Created inside the test's running loop: the SDK's client must not outlive it.
    CALLS.clear()
    async with openai_client(gateway, account.refresh_token) as client:
        yield client


def weather_agent(model: Model) -> Agent[Any]:
    return Agent(name="weather", instructions="Answer with the help of your tools.", tools=[get_weather], model=model)


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_agents_sdk_two_step_tool_loop(agent_client: AsyncOpenAI, emulator: Emulator, api: str) -> None:
    emulator.script([call("get_weather", '{"city": "Paris"}'), "It is sunny and 21 °C in Paris."])
    model: Model = (
        OpenAIResponsesModel("kimi", agent_client)
        if api == "responses"
        else OpenAIChatCompletionsModel("kimi", agent_client)
    )
    result = await Runner.run(weather_agent(model), "What's the weather in Paris?")
    assert result.final_output == "It is sunny and 21 °C in Paris."
    assert CALLS == [{"city": "Paris"}]
    first, second = sent_texts(emulator)
    assert '"name":"get_weather"' in first and "The current weather in a city." in first
    assert "<system>\nAnswer with the help of your tools.\n</system>" in first
    assert "sunny, 21 °C in Paris" in second


async def test_agents_sdk_streamed_run_over_responses(agent_client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["Let me check. " + call("get_weather", '{"city": "Oslo"}'), "Oslo: sunny, 21 °C."])
    result = Runner.run_streamed(weather_agent(OpenAIResponsesModel("kimi", agent_client)), "Weather in Oslo?")
    kinds = [event.type async for event in result.stream_events()]
    assert "run_item_stream_event" in kinds
    assert result.final_output == "Oslo: sunny, 21 °C."
    assert CALLS == [{"city": "Oslo"}]


async def test_agents_sdk_structured_output(agent_client: AsyncOpenAI, emulator: Emulator) -> None:
    class Forecast(BaseModel):
        city: str
        temp_c: float

    emulator.script(['{"city": "Rome", "temp_c": 24}'])
    agent = Agent(name="forecast", output_type=Forecast, model=OpenAIResponsesModel("kimi", agent_client))
    result = await Runner.run(agent, "Forecast for Rome as JSON")
    assert result.final_output == Forecast(city="Rome", temp_c=24)


@tool
def lookup_weather(city: str) -> str:
    """Look up the current weather in a city."""
    return f"sunny in {city}"


def langchain_model(gateway: Gateway, account: Account) -> ChatOpenAI:
    return ChatOpenAI(
        model="kimi", base_url=gateway.url + "/v1", api_key=SecretStr(account.refresh_token), max_retries=0, timeout=30
    )


async def test_langchain_bind_tools_loop(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    emulator.script([call("lookup_weather", '{"city": "Paris"}'), "Paris is sunny."])
    model = langchain_model(gateway, account).bind_tools([lookup_weather])
    question = HumanMessage("Weather in Paris?")
    reply = await model.ainvoke([question])
    assert isinstance(reply, AIMessage)
    [tool_call] = reply.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("lookup_weather", {"city": "Paris"})
    result = await lookup_weather.ainvoke(tool_call["args"])
    final = await model.ainvoke([question, reply, ToolMessage(result, tool_call_id=tool_call["id"])])
    assert final.content == "Paris is sunny."
    assert "sunny in Paris" in sent_texts(emulator)[1]


async def test_langchain_streamed_tool_call_chunks(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    emulator.script([call("lookup_weather", '{"city": "Oslo"}') + call("lookup_weather", '{"city": "Rome"}')])
    model = langchain_model(gateway, account).bind_tools([lookup_weather])
    merged: Any = None
    async for chunk in model.astream("Weather in Oslo and Rome?"):
        merged = chunk if merged is None else merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [
        ("lookup_weather", {"city": "Oslo"}),
        ("lookup_weather", {"city": "Rome"}),
    ]


async def test_langchain_structured_output(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    class Person(BaseModel):
        name: str
        age: int

    emulator.script(['Sure:\n```json\n{"name": "Ann", "age": 31}\n```'])
    structured = langchain_model(gateway, account).with_structured_output(Person, method="json_schema")
    assert await structured.ainvoke("Ann is 31. Extract the person.") == Person(name="Ann", age=31)
    sent = json.dumps(sent_texts(emulator))
    assert "JSON Schema (Person)" in sent
