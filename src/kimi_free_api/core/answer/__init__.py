"""One answer's life: starting it with failover, reading it, cutting it (stop, max_tokens), citing its sources,
and cleaning up after it."""
