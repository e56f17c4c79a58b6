"""The aiohttp transport over real sockets: what each failure reads as to the senders (sent or
not), timeouts, TLS verification, and an answer as httpx gives it."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from connectors.whatsapp.onprem.client import _NOT_SENT
from connectors.whatsapp.transport import AiohttpTransport

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n"
    b'{"messages": [{"id": "gBEGmsg-1"}]}\n'
)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


@asynccontextmanager
async def _server(serve: Serve, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1/messages"
    finally:
        server.close()
        await server.wait_closed()


def _client(timeout: httpx.Timeout | None = None, **transport: object) -> httpx.AsyncClient:
    options: dict[str, object] = {"max_connections": 4, **transport}
    return httpx.AsyncClient(
        transport=AiohttpTransport(**options),  # type: ignore[arg-type]
        timeout=timeout or httpx.Timeout(5.0),
    )


def _answering(received: list[bytes]) -> Serve:
    """A server that keeps each request it reads and answers it with ANSWER."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await _read_request(reader))
        writer.write(ANSWER)
        await writer.drain()

    return serve


def test_an_answer_reads_as_httpx_gives_it() -> None:
    received: list[bytes] = []

    async def run() -> httpx.Response:
        async with _server(_answering(received)) as url, _client() as http:
            return await http.post(url, json={"to": "491511"}, headers={"D360-API-KEY": "k"})

    response = asyncio.run(run())
    assert response.status_code == 201
    assert response.json() == {"messages": [{"id": "gBEGmsg-1"}]}
    assert response.headers["content-type"] == "application/json"
    [request] = received
    assert request.startswith(b"POST /v1/messages HTTP/1.1\r\n")
    assert b"\r\nd360-api-key: k\r\n" in request.lower()
    assert request.endswith(b'{"to":"491511"}')


def test_credentials_in_the_url_go_as_basic_auth_never_in_the_request_line() -> None:
    received: list[bytes] = []

    async def run() -> httpx.Response:
        async with _server(_answering(received)) as url, _client() as http:
            with_user = url.replace("http://", "http://etl:s3cret@")
            return await http.post(with_user, json={}, headers={"D360-API-KEY": "k"})

    assert asyncio.run(run()).status_code == 201
    [request] = received
    assert request.startswith(b"POST /v1/messages HTTP/1.1\r\n") and b"s3cret" not in request
    assert b"\r\nauthorization: basic zxrsonmzy3jlda==\r\n" in request.lower()


def test_a_refused_connection_is_an_error_before_the_request_was_written() -> None:
    async def run() -> None:
        async with _server(lambda r, w: asyncio.sleep(0)) as url:
            pass  # closed: nobody listens on the port now
        async with _client() as http:
            await http.post(url, json={})

    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(run())
    assert isinstance(caught.value, _NOT_SENT)


def test_a_connection_dropped_after_the_request_is_not_read_as_unsent() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async def run() -> None:
        async with _server(serve) as url, _client() as http:
            await http.post(url, json={})

    with pytest.raises(httpx.TransportError) as caught:
        asyncio.run(run())
    assert not isinstance(caught.value, _NOT_SENT)
    assert isinstance(caught.value, httpx.RemoteProtocolError)


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await reader.read()  # until the client gives up and closes

    async def run() -> None:
        async with _server(serve) as url, _client(httpx.Timeout(5.0, read=0.2)) as http:
            await http.post(url, json={})

    with pytest.raises(httpx.ReadTimeout) as caught:
        asyncio.run(run())
    assert not isinstance(caught.value, _NOT_SENT)


def test_waiting_too_long_for_a_free_connection_is_an_error_before_the_request_was_written() -> (
    None
):
    arrived, release = asyncio.Event(), asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        arrived.set()
        await release.wait()
        writer.write(ANSWER)
        await writer.drain()

    async def run() -> None:
        async with _server(serve) as url:
            timeout = httpx.Timeout(5.0, pool=0.2)
            async with _client(timeout, max_connections=1) as http:
                first = asyncio.ensure_future(http.post(url, json={}))
                await arrived.wait()  # the only connection is busy
                try:
                    await http.post(url, json={})
                finally:
                    release.set()
                    assert (await first).status_code == 201

    with pytest.raises(httpx.ConnectTimeout) as caught:
        asyncio.run(run())
    assert isinstance(caught.value, _NOT_SENT)


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 that no CA signed."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


@pytest.mark.parametrize("verify", [True, False])
def test_tls_verification_refuses_an_unknown_certificate_unless_turned_off(
    tmp_path: Path, verify: bool
) -> None:
    tls = _self_signed(tmp_path)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the client refused the certificate
        writer.write(ANSWER)
        await writer.drain()

    async def run() -> int:
        async with _server(serve, tls) as url, _client(verify=verify) as http:
            return (await http.post(url, json={})).status_code

    if verify:
        with pytest.raises(httpx.ConnectError) as caught:
            asyncio.run(run())
        assert isinstance(caught.value, _NOT_SENT)
    else:
        assert asyncio.run(run()) == 201
