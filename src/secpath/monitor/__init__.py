"""What IPsec is doing: statistics (the guide's IP Security Monitor
counters), Prometheus metrics, the negotiation log, and key export."""
