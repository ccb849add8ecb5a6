"""Guided output: tools and JSON output a request declares, the text protocol that asks Kimi for them, and checking
the answer (JSON Schema) with one repair round."""
