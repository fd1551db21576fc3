"""Email jobs: Redis/arq in distributed mode, the service's own database otherwise."""
