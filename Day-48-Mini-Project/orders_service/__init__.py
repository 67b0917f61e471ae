"""orders-service of the Day 48 system: the catalogue, orders, and their side of the credit saga."""
