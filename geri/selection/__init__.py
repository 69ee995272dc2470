"""Which model answers: the efficiency score, the selector, the load balancer, health checks
and discovery of models on the LAN. It reads the registry and the store; the engine asks it."""
