"""users-service of the Day 48 system: accounts, tokens (RS256 + rotating refresh tokens) and the credit ledger."""
