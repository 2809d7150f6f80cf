"""The local AWS: moto's control plane plus an execute-api gateway that really checks SigV4, the method's
authorization type and the deployed resource policy. For `make demo` and the end-to-end tests; never part
of the Lambda package."""
