"""A user of the Day 48 system, talking to its gateway only: what the end-to-end tests, the
acceptance suite and the load test drive the system with."""

from __future__ import annotations

import secrets
import uuid

import requests


class GatewayClient:
    """A user of the system, talking to the gateway only."""

    def __init__(self, gateway: str, email: str | None = None):
        self.gateway = gateway
        self.http = requests.Session()
        self.email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        self.password = secrets.token_urlsafe(16)
        self.token = ""
        self.refresh_token = ""

    def url(self, path: str) -> str:
        return f"{self.gateway}/api{path}"

    def register(self, name: str = "Test User") -> requests.Response:
        return self.http.post(self.url("/users"), json={"email": self.email, "password": self.password,
                                                          "name": name}, timeout=10)

    def login(self) -> requests.Response:
        response = self.http.post(self.url("/auth/login"), json={"email": self.email, "password": self.password},
                                  timeout=10)
        if response.status_code == 200:
            self.token, self.refresh_token = response.json()["access_token"], response.json()["refresh_token"]
        return response

    def signed_up(self) -> GatewayClient:
        assert self.register().status_code == 201
        assert self.login().status_code == 200
        return self

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url(path), headers={**self.auth, **kwargs.pop("headers", {})}, timeout=10,
                             **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.http.post(self.url(path), json=json, headers={**self.auth, **kwargs.pop("headers", {})},
                              timeout=10, **kwargs)

    def order(self, lines, key: str | None = None) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.post("/orders", json={"lines": lines}, headers=headers)

    def products(self) -> list[dict]:
        return self.http.get(self.url("/products"), timeout=10).json()["items"]


def is_problem(response: requests.Response, status: int) -> bool:
    """The response is an RFC 9457 problem with this status."""
    return (response.status_code == status
            and response.headers.get("Content-Type", "").startswith("application/problem+json")
            and response.json().get("status") == status)
