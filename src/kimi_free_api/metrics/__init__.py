"""What the gateway counts for `/metrics` (Prometheus' text format)."""
