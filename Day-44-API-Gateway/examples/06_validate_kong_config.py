"""Check kong/kong.yml and kong/docker-compose.kong.yml offline, before Kong or Docker ever sees them.

What it shows:

- the shape of a Kong 3.x DB-less declarative configuration: ``_format_version``, services (one
  upstream URL each) with their routes, plugins (global or scoped to a service, route or consumer)
  and consumers with their credentials;
- the mistakes worth catching before deployment: a route whose service does not exist, two
  entities with one name, two routes claiming the same path and method (one of them can never
  match), a service URL that does not parse, a plugin field Kong would refuse or accepts only as
  deprecated (rate-limiting's ``redis_host``, which Kong 3.6 replaced with ``redis.host``), rate
  limits that contradict each other, the ``cluster`` rate-limiting policy (which needs a
  database), a JWT secret too short for its algorithm;
- the compose file validated against the Compose Specification's JSON schema, which
  check-jsonschema ships (``--builtin-schema vendor.compose-spec``), plus what Kong DB-less needs
  from it: ``KONG_DATABASE=off`` and ``KONG_DECLARATIVE_CONFIG`` naming the mounted kong.yml;
- that the checks can fail: three broken copies of kong.yml, each caught.

Run it (a second, no servers needed):

    python Day-44-API-Gateway/examples/06_validate_kong_config.py

This is a course's own subset of Kong's rules, for the plugins used here; Kong's schemas are the
authority: ``kong config parse kong.yml`` runs them (in the kong:3.9 image, for instance).
"""

import copy
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).parent / "kong"
# Kong requires the limits it is given to be non-decreasing in this order.
PERIODS = ["second", "minute", "hour", "day", "month", "year"]


# --8<-- [start:plugin_fields]
# The config fields of the plugins used here, from their schemas in Kong 3.9
# (kong/plugins/<name>/schema.lua and kong/tools/redis/schema.lua).
PLUGIN_FIELDS = {
    "correlation-id": {"header_name", "generator", "echo_downstream"},
    "jwt": set(
        "uri_param_names cookie_names header_names key_claim_name secret_is_base64 claims_to_verify"
        " anonymous run_on_preflight maximum_expiration realm".split()
    ),
    "rate-limiting": set(PERIODS)
    | set(
        "limit_by header_name path policy fault_tolerant redis hide_client_headers error_code error_message"
        " sync_rate".split()
    ),
}
REDIS_FIELDS = set("host port timeout username password database ssl ssl_verify server_name".split())
# What jwt_secrets.algorithm accepts in Kong 3.7 and later.
JWT_ALGORITHMS = set("HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512 PS256 PS384 PS512 EdDSA".split())
# --8<-- [end:plugin_fields]


def service_problems(services: list[dict]) -> list[str]:
    problems = []
    for service in services:
        url = urlsplit(service.get("url", ""))
        if url.scheme not in {"http", "https"} or not url.hostname:
            problems.append(
                f"service {service.get('name')!r}: url {service.get('url')!r} is not http(s)://host[:port][/path]"
            )
        try:
            url.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
        except ValueError:
            problems.append(
                f"service {service.get('name')!r}: url {service.get('url')!r} has an invalid port"
            )
    return problems


# --8<-- [start:structure]
def routes_of(config: dict) -> list[tuple[str | None, dict]]:
    """Every route with the name of its service: nested under a service, or top-level with ``service:``."""
    nested = [
        (service.get("name"), route)
        for service in config.get("services", [])
        for route in service.get("routes", [])
    ]
    top_level = []
    for route in config.get("routes", []):
        reference = route.get("service")
        top_level.append((reference.get("name") if isinstance(reference, dict) else reference, route))
    return nested + top_level


def plugins_of(config: dict) -> list[tuple[str, dict]]:
    """Every plugin with its scope: global, or the service, route or consumer it is nested under."""
    found = [("global", plugin) for plugin in config.get("plugins", [])]
    for kind, entities in (
        ("service", config.get("services", [])),
        ("consumer", config.get("consumers", [])),
    ):
        for entity in entities:
            found += [
                (f"{kind} {entity.get('name') or entity.get('username')}", p)
                for p in entity.get("plugins", [])
            ]
    for _, route in routes_of(config):
        found += [(f"route {route.get('name')}", plugin) for plugin in route.get("plugins", [])]
    return found


def duplicates(names: list) -> list:
    return sorted({name for name in names if names.count(name) > 1})


def structure_problems(config: dict) -> list[str]:
    problems = []
    if config.get("_format_version") != "3.0":
        problems.append(f'_format_version is {config.get("_format_version")!r}; Kong 3.x reads "3.0"')
    services = config.get("services", [])
    service_names = [service.get("name") for service in services]
    problems += [f"two services are named {name!r}" for name in duplicates(service_names)]
    problems += service_problems(services)

    routes = routes_of(config)
    problems += [
        f"two routes are named {name!r}" for name in duplicates([route.get("name") for _, route in routes])
    ]
    for service_name, route in routes:
        if service_name not in service_names:
            problems.append(
                f"route {route.get('name')!r} points to service {service_name!r}, which is not defined"
            )
        for path in route.get("paths", []):
            if not path.startswith(("/", "~")):
                problems.append(
                    f"route {route.get('name')!r}: path {path!r} must start with / (or ~ for a regex)"
                )
    # A path with a method claimed twice: one of the two routes can never match it.
    claims = [
        (path, method)
        for _, r in routes
        for path in r.get("paths", [])
        for method in r.get("methods") or ["*"]
    ]
    problems += [f"two routes claim {method} {path}" for path, method in duplicates(claims)]

    consumers = [consumer.get("username") for consumer in config.get("consumers", [])]
    problems += [f"two consumers are named {name!r}" for name in duplicates(consumers)]
    scoped = [(scope, plugin.get("name")) for scope, plugin in plugins_of(config)]
    problems += [f"plugin {name!r} is configured twice on {scope}" for scope, name in duplicates(scoped)]
    return problems
    # --8<-- [end:structure]


# --8<-- [start:plugin_checks]
def plugin_problems(scope: str, plugin: dict) -> list[str]:
    name, config = plugin.get("name"), plugin.get("config") or {}
    where = f"plugin {name!r} ({scope})"
    if name not in PLUGIN_FIELDS:
        return [f"{where}: not one this validator knows ({', '.join(sorted(PLUGIN_FIELDS))})"]
    # rate-limiting's flat redis_host, redis_port, ...: deprecated shorthands for redis.host, redis.port, ...
    shorthands = {field for field in config if name == "rate-limiting" and field.startswith("redis_")}
    unknown = config.keys() - PLUGIN_FIELDS[name] - shorthands
    problems = [f"{where}: unknown field config.{field}" for field in sorted(unknown)]
    problems += [
        f"{where}: config.{field} is deprecated since Kong 3.6 and goes in 4.0: "
        f"write config.redis.{field.removeprefix('redis_')}"
        for field in sorted(shorthands)
    ]
    if name == "rate-limiting":
        limits = [(period, config[period]) for period in PERIODS if period in config]
        if not limits:
            problems.append(f"{where}: set at least one of {', '.join(PERIODS)}")
        problems += [
            f"{where}: {longer}={more} is lower than {shorter}={fewer}"
            for (shorter, fewer), (longer, more) in zip(limits, limits[1:], strict=False)
            if more < fewer
        ]
        policy = config.get("policy", "local")
        if policy not in {"local", "redis"}:
            problems.append(
                f"{where}: policy {policy!r}: DB-less Kong offers local or redis (cluster needs a database)"
            )
        redis = config.get("redis") or {}
        problems += [
            f"{where}: unknown field config.redis.{field}" for field in sorted(redis.keys() - REDIS_FIELDS)
        ]
        if policy == "redis" and not (redis.get("host") or config.get("redis_host")):
            problems.append(f"{where}: policy redis needs config.redis.host")
    if name == "jwt":
        claims = set(config.get("claims_to_verify") or [])
        if claims - {"exp", "nbf"}:
            problems.append(
                f"{where}: claims_to_verify takes exp and nbf only, not {sorted(claims - {'exp', 'nbf'})}"
            )
        if config.get("maximum_expiration", 0) > 0 and "exp" not in claims:
            problems.append(f"{where}: maximum_expiration needs exp in claims_to_verify")
    return problems


def credential_problems(consumers: list[dict]) -> list[str]:
    problems = []
    keys = [secret.get("key") for consumer in consumers for secret in consumer.get("jwt_secrets", [])]
    problems += [f"two jwt_secrets have the key {key!r}" for key in duplicates(keys)]
    for consumer in consumers:
        for secret in consumer.get("jwt_secrets", []):
            where = f"consumer {consumer.get('username')!r}, jwt_secret {secret.get('key')!r}"
            algorithm = secret.get("algorithm", "HS256")
            if algorithm not in JWT_ALGORITHMS:
                problems.append(f"{where}: algorithm {algorithm!r} is not one Kong supports")
            elif algorithm.startswith("HS"):
                # RFC 7518, section 3.2: an HMAC key at least as long as the hash output.
                needed = int(algorithm[2:]) // 8
                if len(str(secret.get("secret", "")).encode()) < needed:
                    problems.append(f"{where}: an {algorithm} secret needs at least {needed} bytes")
            elif not secret.get("rsa_public_key"):
                problems.append(f"{where}: {algorithm} needs the public key in rsa_public_key")
    return problems


def kong_config_problems(config: dict) -> list[str]:
    problems = structure_problems(config)
    for scope, plugin in plugins_of(config):
        problems += plugin_problems(scope, plugin)
    return problems + credential_problems(config.get("consumers", []))
    # --8<-- [end:plugin_checks]


# --8<-- [start:compose_checks]
def compose_problems(path: Path) -> list[str]:
    """The compose file against the Compose Specification schema, then what Kong DB-less needs from it."""
    schema_check = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    if schema_check.returncode != 0:
        return [f"{path.name} breaks the compose-spec schema:\n{schema_check.stdout}{schema_check.stderr}"]
    kong = yaml.safe_load(path.read_text(encoding="utf-8"))["services"]["kong"]
    environment, problems = kong.get("environment", {}), []
    if environment.get("KONG_DATABASE") != "off":
        problems.append('KONG_DATABASE must be "off" (a quoted string: YAML reads a bare off as false)')
    mounts = {}
    for volume in kong.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = (path.parent / source).resolve()
    declarative = environment.get("KONG_DECLARATIVE_CONFIG")
    if declarative not in mounts:
        problems.append(f"KONG_DECLARATIVE_CONFIG={declarative} is not a path mounted into the container")
    elif not mounts[declarative].is_file():
        problems.append(f"{declarative} is mounted from {mounts[declarative]}, which does not exist")
    published = {str(port).rsplit(":", 1)[-1] for port in kong.get("ports", [])}
    problems += [
        f"container port {port} is not published" for port in ("8000", "8001") if port not in published
    ]
    return problems
    # --8<-- [end:compose_checks]


def broken_copies(config: dict) -> dict[str, dict]:
    """Three mistakes people make, each in its own copy of the configuration."""
    orphan = copy.deepcopy(config)
    orphan.setdefault("routes", []).append(
        {"name": "reviews", "paths": ["/api/reviews"], "service": {"name": "reviews"}}
    )
    flat_redis = copy.deepcopy(config)
    limiter = next(p for p in flat_redis["plugins"] if p["name"] == "rate-limiting")
    limiter["config"]["redis_host"] = limiter["config"].pop("redis")["host"]
    cluster = copy.deepcopy(config)
    cluster_limiter = next(p for p in cluster["plugins"] if p["name"] == "rate-limiting")
    cluster_limiter["config"].update(policy="cluster", hour=10)
    return {
        "a route to an undefined service": orphan,
        "redis_host instead of redis.host": flat_redis,
        "the cluster policy, and an hourly limit below the per-minute one": cluster,
    }


def main() -> int:
    config_path, compose_path = HERE / "kong.yml", HERE / "docker-compose.kong.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    problems = kong_config_problems(config)
    for problem in problems:
        print(f"  {config_path.name}: {problem}")
    compose = compose_problems(compose_path)
    for problem in compose:
        print(f"  {compose_path.name}: {problem}")

    print("The validator catches broken copies:")
    missed = []
    for mistake, broken in broken_copies(config).items():
        caught = kong_config_problems(broken)
        print(f"  {mistake}:" + "".join(f"\n      {problem}" for problem in caught))
        if not caught:
            missed.append(mistake)

    if problems or compose or missed:
        print(
            f"FAILED: {len(problems)} problems in kong.yml, {len(compose)} in the compose file, missed {missed}"
        )
        return 1
    print(f"{compose_path.name} is valid against the compose-spec schema and runs Kong DB-less on kong.yml")
    print(
        f"kong.yml is valid: {len(config['services'])} services, {len(routes_of(config))} routes, "
        f"{len(plugins_of(config))} plugins, {len(config.get('consumers', []))} consumer"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
