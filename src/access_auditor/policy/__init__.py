"""The pure core: policy documents, the access evaluator and the drift analysis. No I/O in this package."""
