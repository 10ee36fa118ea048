"""tunix-rt client: generated tunixrt.v1 stubs and a thin typed SDK."""
