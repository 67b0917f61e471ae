"""The api-gateway of the Day 48 system: routing, JWT at the edge, rate limits, discovery, breakers."""
