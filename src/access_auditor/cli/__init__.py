"""The ``access-auditor`` command line."""
