"""Mutual TLS between two Flask services, over real TLS sockets, with a CA made on the fly.

What it shows:

- a small private PKI built with ``cryptography``: a CA (``BasicConstraints ca=True``, key usage
  ``keyCertSign``), a server certificate for the inventory service (subject alternative names
  ``localhost`` and ``127.0.0.1``, extended key usage ``serverAuth``) and client certificates
  for the orders and reports services (``clientAuth``, the service's identity as a SPIFFE-style
  URI in the subject alternative name); every certificate lives an hour;
- the inventory service served by werkzeug's ``make_server(..., ssl_context=ctx)`` with an
  ``ssl.SSLContext`` that requires a client certificate (``verify_mode = CERT_REQUIRED``) signed
  by the CA; it reads the caller's certificate from ``request.environ["SSL_CLIENT_CERT"]``, the
  PEM that werkzeug 3.1 puts there (the name nginx and Apache use), and authorizes by identity:
  the orders service may reserve stock, the reports service, although authenticated, gets ``403``;
- the orders service, another Flask app, calling the inventory service with ``requests`` and
  ``cert=(certificate, key)`` plus ``verify=ca.pem``: both sides prove who they are;
- the handshakes that fail, with OpenSSL's reason on the side that refused: no client
  certificate, a client certificate from another CA, a server certificate offered as a client
  certificate (wrong extended key usage), and a client that does not trust the service's CA;
- one trap of ``requests``: ``REQUESTS_CA_BUNDLE`` in the environment overrides a Session's
  ``verify``, so the CA and the client certificate are passed with every request.

Run it (about 1 second, no servers needed):

    python Day-46-Authentication/examples/05_mtls_services.py

The keys and certificates are written to a temporary directory (``ssl`` and ``requests`` read
files), readable only by you, and deleted at the end. What mTLS proves is *which workload* is at
the other end of the connection, not which user it acts for; a service mesh (Istio, Linkerd) does
exactly this in its sidecars, with certificates it rotates every day or so.
"""

import datetime
import ipaddress
import logging
import os
import queue
import re
import ssl
import sys
import tempfile
import threading
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

TRUST_DOMAIN = "spiffe://shop.test"
ALLOWED_TO_RESERVE = {f"{TRUST_DOMAIN}/orders-service"}
USAGE_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


# --8<-- [start:pki]
def key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,  # a leaf signs the TLS handshake
        key_cert_sign=signs_certificates,  # a CA signs certificates
        crl_sign=signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


class CertificateAuthority:
    """A private CA: a key pair and a self-signed certificate that says it may sign others."""

    def __init__(self, name: str, lifetime: datetime.timedelta = datetime.timedelta(hours=1)):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.lifetime = lifetime
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(subject, self.key.public_key())
            .issuer_name(subject)  # self-signed: issuer and subject are the same
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(signs_certificates=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(self, subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))  # a little clock skew
            .not_valid_after(now + self.lifetime)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    def issue(
        self, common_name: str, names: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf certificate: for a server (SERVER_AUTH) or for a client (CLIENT_AUTH)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shop.test"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        certificate = (
            self._builder(subject, key.public_key())
            .issuer_name(self.certificate.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            # Clients check the host name against these names, never against the common name.
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate, key


def write_pem(directory: Path, name: str, certificate: x509.Certificate, key=None) -> tuple[str, str]:
    """Write ``name.pem`` (and ``name.key``, readable only by its owner); return their paths."""
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
            file.write(pem)
    return str(cert_path), str(key_path)
    # --8<-- [end:pki]


# --8<-- [start:server_context]
def mutual_tls_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """A server context that refuses any client without a certificate signed by ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)  # who this service is
    context.load_verify_locations(cafile=ca)  # whom it believes about its clients
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate, no connection
    return context
    # --8<-- [end:server_context]


# --8<-- [start:caller_identity]
def caller_identity() -> tuple[str, str]:
    """The verified client certificate's SPIFFE-style URI and common name.

    werkzeug 3.1 puts the peer certificate in the WSGI environ as PEM under SSL_CLIENT_CERT (the
    name nginx's $ssl_client_cert and Apache's mod_ssl use); the TLS socket itself is
    environ["werkzeug.socket"], whose getpeercert() gives the same certificate as a dict.
    Behind a proxy that terminates TLS, the proxy forwards it in a header that it must overwrite.
    """
    certificate = x509.load_pem_x509_certificate(request.environ["SSL_CLIENT_CERT"].encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return (uris[0] if uris else ""), str(common_name)


def create_inventory_service() -> Flask:
    app = Flask("inventory-service")

    @app.get("/whoami")
    def whoami() -> Response:
        uri, common_name = caller_identity()
        tls = request.environ["werkzeug.socket"]
        return jsonify(uri=uri, common_name=common_name, tls=tls.version(), cipher=tls.cipher()[0])

    @app.post("/reservations")
    def reserve() -> Response:
        uri, _ = caller_identity()
        if uri not in ALLOWED_TO_RESERVE:  # authenticated is not authorized
            response = jsonify(
                type="about:blank", title="Forbidden", status=403, detail=f"{uri} may not reserve stock."
            )
            response.status_code, response.content_type = 403, "application/problem+json"
            return response
        return jsonify(reserved=request.get_json()["sku"], for_caller=uri), 201

    return app
    # --8<-- [end:caller_identity]


# --8<-- [start:client]
def create_orders_service(inventory_url: str, cert: str, key: str, ca: str) -> Flask:
    app = Flask("orders-service")
    inventory = requests.Session()
    # Per request, not as Session.cert/.verify: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the
    # environment would override a Session's verify (psf/requests#3829), and the call would fail.
    tls = {
        "cert": (cert, key),  # who this service is, to the inventory service
        "verify": ca,  # the only CA it believes about servers (not the system's public CAs)
    }

    @app.post("/orders")
    def place_order() -> Response:
        sku = (request.get_json(silent=True) or {}).get("sku", "")
        try:
            answer = inventory.post(f"{inventory_url}/reservations", json={"sku": sku}, timeout=5, **tls)
        except requests.RequestException as error:  # a refused handshake lands here, as SSLError
            return jsonify(order="not created", error=type(error).__name__), 502
        return jsonify(order="created", inventory=answer.json()), 201 if answer.status_code == 201 else 502

    return app
    # --8<-- [end:client]


class BackgroundServer:
    """Serves a WSGI app from a thread (werkzeug's threaded server); port 0: the OS picks a free one."""

    def __init__(self, app: Flask, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        self._server = make_server(host, 0, app, threaded=True, ssl_context=ssl_context)
        # werkzeug's server does the TLS handshake in accept(), and socketserver drops a failure
        # silently; keep the reason, which only the server knows, for the demo to print.
        self.handshake_failures: queue.Queue[str] = queue.Queue()
        accept = self._server.get_request

        def get_request():
            try:
                return accept()
            except ssl.SSLError as error:
                self.handshake_failures.put(tls_reason(error))
                raise

        self._server.get_request = get_request
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class Checks:
    """Collects what the demo expected to see, and says which expectations failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"    FAILED: {what}")


def tls_reason(error: Exception) -> str:
    """The OpenSSL reason inside requests' wrapped exception, e.g. '[SSL: ...] tlsv13 alert ...'."""
    found = re.search(r"\[SSL: [A-Z0-9_]+\][^(']*", str(error))
    if found:
        return found.group(0).strip()
    if "EOF" in str(error):
        # In TLS 1.3 the server checks the client's certificate after the client has finished its
        # half of the handshake; the client may read the server's alert, or only the closed socket.
        return "EOF: the server closed the connection during the handshake"
    return str(error)[:120]


def demo(
    inventory: BackgroundServer, orders: str, pki: dict[str, tuple[str, str]], ca_pem: str, checks: Checks
) -> None:
    print("\n1. Orders service -> inventory service, both with certificates")
    r = requests.post(f"{orders}/orders", json={"sku": "mug-1"}, timeout=5)
    print(f"  POST {orders}/orders -> {r.status_code} {r.json()}")
    checks.expect(r.status_code == 201, "the orders service reserved stock over mTLS")
    r = requests.get(f"{inventory.url}/whoami", cert=pki["orders-service"], verify=ca_pem, timeout=5)
    print(f"  GET /whoami as orders-service -> {r.status_code} {r.json()}")
    checks.expect(
        r.json()["uri"] == f"{TRUST_DOMAIN}/orders-service", "the inventory service knows its caller"
    )

    print("\n2. Authenticated is not authorized")
    r = requests.post(
        f"{inventory.url}/reservations",
        json={"sku": "mug-1"},
        cert=pki["reports-service"],
        verify=ca_pem,
        timeout=5,
    )
    print(f"  POST /reservations as reports-service -> {r.status_code} {r.json()['detail']}")
    checks.expect(r.status_code == 403, "reports-service gets 403")

    print("\n3. Handshakes that fail, and who refused")
    attempts = [
        ("no client certificate", {"verify": ca_pem}, "server", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        (
            "a certificate from another CA",
            {"cert": pki["impostor"], "verify": ca_pem},
            "server",
            "unable to get local issuer",
        ),
        (
            "the server's certificate as a client's",
            {"cert": pki["inventory"], "verify": ca_pem},
            "server",
            "unsuitable certificate purpose",
        ),
        (
            "client not trusting the service's CA",
            {"cert": pki["orders-service"], "verify": True},
            "client",
            "CERTIFICATE_VERIFY_FAILED",
        ),
    ]
    for label, options, refuser, reason in attempts:
        try:
            r = requests.get(f"{inventory.url}/whoami", timeout=5, **options)
            print(f"  {label:<40} -> {r.status_code}, let in!")
            checks.expect(False, f"{label}: refused")
            continue
        except requests.exceptions.SSLError as error:
            client_saw = tls_reason(error)
        try:
            server_saw = inventory.handshake_failures.get(timeout=2)
        except queue.Empty:
            server_saw = "nothing"
        said = server_saw if refuser == "server" else client_saw
        print(f"  {label:<40} -> SSLError; the {refuser} refused: {said}")
        checks.expect(reason in said, f"{label}: the {refuser} should refuse with {reason}")
    print("  (over TLS 1.3 the client sees the server's alert, or just the closed connection)")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="day46-mtls-") as workdir:
        directory = Path(workdir)
        ca = CertificateAuthority("shop.test internal CA")
        ca_pem, _ = write_pem(directory, "ca", ca.certificate)
        server = write_pem(
            directory,
            "inventory",
            *ca.issue(
                "inventory-service",
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                ExtendedKeyUsageOID.SERVER_AUTH,
            ),
        )
        clients = {
            name: write_pem(
                directory,
                name,
                *ca.issue(
                    name,
                    [x509.UniformResourceIdentifier(f"{TRUST_DOMAIN}/{name}")],
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                ),
            )
            for name in ("orders-service", "reports-service")
        }
        impostor_ca = CertificateAuthority("someone else's CA")
        clients["impostor"] = write_pem(
            directory,
            "impostor",
            *impostor_ca.issue(
                "orders-service",
                [x509.UniformResourceIdentifier(f"{TRUST_DOMAIN}/orders-service")],
                ExtendedKeyUsageOID.CLIENT_AUTH,
            ),
        )
        print(f"PKI in {directory}: {sorted(p.name for p in directory.iterdir())}")
        print(f"  {'CA:':<15} {ca.certificate.subject.rfc4514_string()}")
        for name in ("inventory", "orders-service"):
            cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            purposes = [USAGE_NAMES[oid] for oid in usage]
            print(
                f"  {name + ':':<15} {cert.subject.rfc4514_string()}, SAN {[str(n.value) for n in names]}, {purposes}"
            )

        inventory_app = create_inventory_service()
        with BackgroundServer(inventory_app, mutual_tls_context(*server, ca_pem)) as inventory:
            orders_app = create_orders_service(inventory.url, *clients["orders-service"], ca_pem)
            with BackgroundServer(orders_app) as orders:
                print(f"\nInventory service on {inventory.url} (mTLS), orders service on {orders.url}")
                demo(inventory, orders.url, {**clients, "inventory": server}, ca_pem, checks)
        print(f"\nDeleted {directory} with every key in it")

    checks.expect(not directory.exists(), "the keys are gone")
    if checks.failed:
        print(f"FAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}")
        return 1
    print(f"mTLS let in exactly the services it should: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
