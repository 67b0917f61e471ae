import pytest
from api_gateway.routing_table import RouteNotFound, RoutingTable, UnsafePath, check_path

TABLE = RoutingTable()


@pytest.mark.parametrize(("path", "service", "upstream_path"), [
    ("/api/orders", "orders-service", "/orders"),
    ("/api/orders/", "orders-service", "/orders/"),
    ("/api/orders/0123abcd/cancel", "orders-service", "/orders/0123abcd/cancel"),
    ("/api/products", "orders-service", "/products"),
    ("/api/users", "users-service", "/users"),
    ("/api/users/me", "users-service", "/users/me"),
    ("/api/auth/login", "users-service", "/auth/login"),
    ("/api/notifications", "notifications-service", "/notifications"),
])
def test_a_prefix_routes_its_paths_to_its_upstream_without_the_api_prefix(path, service, upstream_path):
    match = TABLE.match(path)
    assert (match.route.service, match.upstream_path) == (service, upstream_path), \
        f"{path} should go to {service} as {upstream_path}, went to {match.route.service} as {match.upstream_path}"


@pytest.mark.parametrize("path", ["/api/ordersx", "/api/orders-admin", "/api/user", "/api/usersme", "/api",
                                  "/api/", "/api/authx/login", "/api/.well-known/jwks.json", "/orders"])
def test_prefixes_match_whole_segments_only(path):
    with pytest.raises(RouteNotFound):
        TABLE.match(path)


def test_the_longest_prefix_wins_whatever_the_declared_order():
    from api_gateway.routing_table import Route

    table = RoutingTable([Route("/api/orders", "orders-service"), Route("/api/orders/stats", "stats-service")])
    assert table.match("/api/orders/stats/today").route.service == "stats-service"
    assert table.match("/api/orders/statsx").route.service == "orders-service"


@pytest.mark.parametrize(("method", "path", "public"), [
    ("POST", "/api/auth/login", True),
    ("POST", "/api/auth/refresh", True),
    ("GET", "/api/auth/anything", True),
    ("POST", "/api/users", True),
    ("GET", "/api/users", False),
    ("POST", "/api/users/", False),
    ("POST", "/api/users/me", False),
    ("GET", "/api/users/me", False),
    ("GET", "/api/users/0123", False),
    ("GET", "/api/products", True),
    ("HEAD", "/api/products", True),
    ("GET", "/api/products/sku-1", True),
    ("POST", "/api/products", False),
    ("DELETE", "/api/products", False),
    ("GET", "/api/orders", False),
    ("POST", "/api/orders", False),
    ("GET", "/api/notifications", False),
])
def test_which_requests_need_no_token(method, path, public):
    route = TABLE.match(path).route
    assert route.is_public(method, path) is public, \
        f"{method} {path} should be {'public' if public else 'protected'}"


def test_upstream_paths_are_percent_encoded_again():
    assert TABLE.match("/api/orders/a b/é").upstream_path == "/orders/a%20b/%C3%A9"
    assert TABLE.match("/api/orders/100%").upstream_path == "/orders/100%25"


@pytest.mark.parametrize(("decoded", "raw"), [
    ("/api/users/../orders", "/api/users/../orders"),
    ("/api/users/../orders", "/api/users/%2e%2e/orders"),
    ("/api/orders/./x", "/api/orders/./x"),
    ("/api/orders/a/b", "/api/orders/a%2Fb"),
    ("/api/orders/a/b", "/api/orders/a%2fb"),
    ("/api/orders/a\\b", "/api/orders/a%5Cb"),
    ("/api/orders/\x00", "/api/orders/%00"),
    ("/api/orders/\ufffd", "/api/orders/%ff"),
])
def test_paths_that_could_mean_something_else_upstream_are_refused(decoded, raw):
    with pytest.raises(UnsafePath):
        check_path(decoded, raw)


def test_ordinary_paths_pass_the_check():
    check_path("/api/orders/0123?x=..", "/api/orders/0123?x=%2F..")  # the query is not the path
    check_path("/api/orders/é", "/api/orders/%C3%A9")
    check_path("/api/orders/a..b", None)
