"""Model names and flags, and the upstream's published model catalog."""
