"""A fake of the Kimi web upstream (G3 Connect-RPC), for tests, benchmarks and the demo mode.

It imports nothing from the gateway, so the two sides of the wire cannot share a misunderstanding.
"""

from kimi_free_api.emulator.config import EmulatorConfig, InvalidSetting
from kimi_free_api.emulator.faults import Fault
from kimi_free_api.emulator.server import Emulator, run
from kimi_free_api.emulator.state import Account

__all__ = ["Account", "Emulator", "EmulatorConfig", "Fault", "InvalidSetting", "run"]
