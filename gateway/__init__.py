"""The HTTP gateway: authentication, request validation, mapping to RPC,
error mapping, the OpenAPI document, health and metrics."""
