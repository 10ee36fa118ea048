"""Training: the supervisor (in the server) and the worker process (Tunix/JAX)."""
