"""apigw-access-auditor: prove that an API Gateway REST API answers to one IAM role and nobody else."""

from __future__ import annotations

__version__ = "0.1.0"
