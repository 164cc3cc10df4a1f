"""The gRPC surface: the two servicers, API-key and admin-token auth, and domain error → status mapping."""
