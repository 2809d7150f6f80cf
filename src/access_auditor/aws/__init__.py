"""Adapters: the only code that calls AWS control planes. Each takes an optional botocore client."""
