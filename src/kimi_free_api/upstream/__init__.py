"""Adapters that speak Kimi's wire protocols and translate them into core events."""
