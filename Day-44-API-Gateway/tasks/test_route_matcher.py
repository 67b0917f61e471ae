"""Tests of task `route-matcher`: longest prefix on segment boundaries, method filters, rewrite, 404 vs 405.

Run: pytest Day-44-API-Gateway/tasks/test_route_matcher.py

Which clause of the stub's contract each test guards:

=========================================================  =================================================
clause                                                     tests
=========================================================  =================================================
prefixes match whole path segments; paths case-sensitive   a_prefix_matches_whole_path_segments
a trailing slash on a prefix is ignored                    a_trailing_slash_on_the_prefix_changes_nothing,
                                                           equal_prefixes_the_first_declared_wins
"/" matches every path (and loses to any longer prefix)    the_root_prefix_matches_everything,
                                                           the_root_prefix_is_the_last_resort
methods: a set compared in upper case, or None for any     methods_filter_routes
a route matches when prefix covers AND method accepted     the_same_prefix_can_split_by_method,
                                                           a_method_mismatch_falls_back_to_a_shorter_route...
longest prefix wins whatever the declared order            the_longest_prefix_wins_whatever_the_order
equal prefixes: the first declared wins                    equal_prefixes_the_first_declared_wins
no match but a covering prefix: MethodNotAllowed with the  methods_filter_routes, 405_lists_the_methods_of_
sorted upper-case methods of every covering route          every_route_covering_the_path
nothing covers: RouteNotFound (404)                        no_covering_route_is_404_not_405,
                                                           an_empty_table_finds_nothing
rewrite None keeps the path; a string replaces the         rewrite_replaces_the_matched_prefix (11 cases),
prefix, one "/" at the join, "/" for an empty result       rewrite_replaces_only_the_prefix
Match(route, path)                                         the_match_carries_the_winning_route
Router(routes) takes any iterable of routes                a_router_built_from_a_generator_keeps_its_routes
=========================================================  =================================================
"""

import pytest

from lab import load_task

rm = load_task(__file__, "route_matcher")
Route = rm.Route


def outcome(router, method, path):
    """What the router makes of a request, in words: 'users -> /users/42', '404' or '405 GET, PUT'."""
    try:
        match = router.match(method, path)
    except rm.MethodNotAllowed as exc:
        return f"405 {', '.join(exc.allowed)}"
    except rm.RouteNotFound:
        return "404"
    return f"{match.route.upstream} -> {match.path}"


@pytest.mark.parametrize("path, expected", [
    ("/users", "users -> /users"),
    ("/users/", "users -> /users/"),
    ("/users/42", "users -> /users/42"),
    ("/users/42/orders", "users -> /users/42/orders"),
    ("/usersX", "404"),
    ("/users-admin", "404"),
    ("/user", "404"),
    ("/Users/42", "404"),
])
def test_a_prefix_matches_whole_path_segments(path, expected):
    router = rm.Router([Route("/users", "users")])
    got = outcome(router, "GET", path)
    assert got == expected, (
        f"with the one route /users, GET {path} should give {expected!r}, got {got!r}: a prefix matches "
        "the path itself or the path followed by '/', never a longer segment (/usersX), and case counts")


def test_a_trailing_slash_on_the_prefix_changes_nothing():
    router = rm.Router([Route("/users/", "users")])
    got = [outcome(router, "GET", p) for p in ("/users", "/users/42", "/usersX")]
    assert got == ["users -> /users", "users -> /users/42", "404"], \
        f"the prefix '/users/' is the prefix '/users': /users, /users/42, /usersX gave {got}"


def test_the_root_prefix_matches_everything():
    router = rm.Router([Route("/", "web")])
    got = [outcome(router, "GET", p) for p in ("/", "/index.html", "/a/b")]
    assert got == ["web -> /", "web -> /index.html", "web -> /a/b"], \
        f"the prefix '/' covers every path: /, /index.html, /a/b gave {got}"


def test_the_root_prefix_is_the_last_resort():
    router = rm.Router([Route("/", "web"), Route("/api", "api", methods={"GET"})])
    got = [outcome(router, m, p) for m, p in (("GET", "/api/x"), ("GET", "/apix"), ("POST", "/api/x"))]
    assert got == ["api -> /api/x", "web -> /apix", "web -> /api/x"], (
        f"routes '/' (any method) and '/api' (GET): GET /api/x goes to the longer /api, GET /apix is not under "
        f"/api so it falls to '/', and POST /api/x, which /api does not accept, falls back to '/'; got {got}")


def test_a_router_built_from_a_generator_keeps_its_routes():
    router = rm.Router(Route(prefix, prefix.strip("/")) for prefix in ("/users", "/orders"))
    got = [outcome(router, "GET", p) for p in ("/users/1", "/orders/2", "/users/3")]
    assert got == ["users -> /users/1", "orders -> /orders/2", "users -> /users/3"], (
        f"Router(routes) takes any iterable, a generator too, and must still know its routes on every call "
        f"(make a list of them once); three look-ups gave {got}")


@pytest.mark.parametrize("order", ["short first", "long first"])
def test_the_longest_prefix_wins_whatever_the_order(order):
    routes = [Route("/api", "monolith"), Route("/api/users", "users"), Route("/api/users/reports", "reports")]
    if order == "long first":
        routes.reverse()
    router = rm.Router(routes)
    cases = {"/api/users/reports/7": "reports -> /api/users/reports/7",
             "/api/users/7": "users -> /api/users/7",
             "/api/users/reportsX": "users -> /api/users/reportsX",
             "/api/usersX": "monolith -> /api/usersX",
             "/api/orders": "monolith -> /api/orders"}
    for path, expected in cases.items():
        got = outcome(router, "GET", path)
        assert got == expected, (f"routes /api, /api/users, /api/users/reports declared {order}: GET {path} "
                                 f"should go to the longest prefix that matches, {expected!r}; got {got!r}")


def test_equal_prefixes_the_first_declared_wins():
    router = rm.Router([Route("/api/orders", "orders-v1"), Route("/api/orders/", "orders-v2")])
    got = outcome(router, "GET", "/api/orders/1")
    assert got == "orders-v1 -> /api/orders/1", \
        f"two routes with the same prefix: the first declared wins, expected orders-v1, got {got!r}"


def test_methods_filter_routes():
    router = rm.Router([Route("/api/orders", "orders", methods={"GET", "POST"})])
    assert outcome(router, "GET", "/api/orders/1") == "orders -> /api/orders/1", "GET is among the route's methods"
    assert outcome(router, "post", "/api/orders") == "orders -> /api/orders", \
        "methods compare in upper case: 'post' is POST"
    got = outcome(router, "DELETE", "/api/orders/1")
    assert got == "405 GET, POST", (f"DELETE on a path the route covers, with methods GET and POST only: expected "
                                    f"'405 GET, POST' (405 Method Not Allowed, Allow: GET, POST), got {got!r}")


def test_the_same_prefix_can_split_by_method():
    # Reads and writes served by different services (CQRS): both rows have the same prefix.
    router = rm.Router([Route("/api/orders", "orders-read", methods={"GET"}),
                        Route("/api/orders", "orders-write", methods={"POST", "PUT"})])
    got = [outcome(router, m, "/api/orders/9") for m in ("GET", "POST", "PUT")]
    assert got == ["orders-read -> /api/orders/9", "orders-write -> /api/orders/9", "orders-write -> /api/orders/9"], \
        (f"a route matches when its prefix covers the path AND it accepts the method; for GET, POST, PUT "
         f"expected orders-read, orders-write, orders-write, got {got}")


def test_a_method_mismatch_falls_back_to_a_shorter_route_that_accepts_it():
    router = rm.Router([Route("/api/users", "users", methods={"GET"}), Route("/api", "monolith")])
    got = outcome(router, "DELETE", "/api/users/3")
    assert got == "monolith -> /api/users/3", (
        f"/api/users accepts only GET, /api accepts any method: DELETE /api/users/3 matches /api, "
        f"expected 'monolith -> /api/users/3', got {got!r}")


def test_405_lists_the_methods_of_every_route_covering_the_path():
    router = rm.Router([Route("/api/orders", "orders-read", methods={"GET"}),
                        Route("/api/orders", "orders-write", methods={"post", "PUT"}),
                        Route("/api/orders/archive", "archive", methods={"GET"}),
                        Route("/api/users", "users", methods={"PATCH"})])
    with pytest.raises(rm.MethodNotAllowed) as caught:
        router.match("DELETE", "/api/orders/1")
    allowed = tuple(caught.value.allowed)
    assert allowed == ("GET", "POST", "PUT"), (
        f"Allow lists the methods of the routes whose prefix covers /api/orders/1 (not /api/orders/archive, "
        f"not /api/users), sorted and upper-case: expected ('GET', 'POST', 'PUT'), got {allowed}")
    assert caught.value.status == 405, "MethodNotAllowed.status is 405"


def test_no_covering_route_is_404_not_405():
    router = rm.Router([Route("/api/orders", "orders", methods={"GET"})])
    with pytest.raises(rm.RouteNotFound) as caught:
        router.match("DELETE", "/api/payments/1")
    assert caught.value.status == 404, "RouteNotFound.status is 404"
    assert not isinstance(caught.value, rm.MethodNotAllowed)


def test_an_empty_table_finds_nothing():
    got = outcome(rm.Router([]), "GET", "/")
    assert got == "404", f"with no routes every request is 404, got {got!r}"


@pytest.mark.parametrize("prefix, rewrite, path, expected", [
    ("/api/users", "/users", "/api/users/42", "/users/42"),
    ("/api/users", "/users", "/api/users", "/users"),
    ("/api/users", "/users/", "/api/users/42", "/users/42"),
    ("/api/users", "", "/api/users/42", "/42"),
    ("/api/users", "", "/api/users", "/"),
    ("/api/users", "", "/api/users/", "/"),
    ("/api/users/", "", "/api/users/42/orders", "/42/orders"),
    ("/api/users", "/", "/api/users/42", "/42"),
    ("/api/users", "/v2/people", "/api/users/42", "/v2/people/42"),
    ("/api/users", None, "/api/users/42", "/api/users/42"),
    ("/", "/static", "/css/site.css", "/static/css/site.css"),
])
def test_rewrite_replaces_the_matched_prefix(prefix, rewrite, path, expected):
    router = rm.Router([Route(prefix, "users", rewrite=rewrite)])
    got = router.match("GET", path).path
    assert got == expected, (f"Route({prefix!r}, rewrite={rewrite!r}): {path} should be sent upstream as "
                             f"{expected!r}, got {got!r} (exactly one '/' at the join, '/' for an empty path)")


def test_rewrite_replaces_only_the_prefix():
    router = rm.Router([Route("/api", "api", rewrite="")])
    got = router.match("GET", "/api/v1/api/items").path
    assert got == "/v1/api/items", f"only the leading prefix is replaced: expected '/v1/api/items', got {got!r}"


def test_the_match_carries_the_winning_route():
    users = Route("/api/users", "http://users:5000", methods={"GET"}, rewrite="/users")
    router = rm.Router([Route("/api", "http://monolith:5000"), users])
    match = router.match("GET", "/api/users/1")
    assert match.route == users, f"Match.route should be the winning Route {users}, got {match.route}"
    assert match.path == "/users/1", f"Match.path should be the rewritten path '/users/1', got {match.path!r}"
