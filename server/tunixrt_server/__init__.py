"""tunix-rt server: gRPC services, SQL storage and the Tunix training worker."""
