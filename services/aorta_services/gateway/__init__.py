"""The gateway: the platform's only public door, a gRPC server speaking the Clara API."""
