"""Where findings go: their life (lifecycle.py), the suppressions that mute them (suppression.py), the formats
they are written in (formats.py) and the sinks that take a run's outcome (sinks.py)."""
