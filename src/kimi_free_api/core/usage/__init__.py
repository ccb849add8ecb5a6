"""Token usage: the numbers reported to clients and the counters behind them (a BPE vocabulary or an estimate)."""
