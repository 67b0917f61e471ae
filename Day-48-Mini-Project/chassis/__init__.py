"""The shared microservice chassis of the Day 48 system: configuration, problem+json errors, JSON
logs, RED metrics, health checks, and events through a transactional outbox and an idempotent
consumer. Each service imports the modules it needs; nothing here opens a connection on import.
"""
