"""Broadcast frames under Daphne (ADR 0018): the same bytes on the wire, fewer layers per socket.

Daphne's WebSocket protocol is driven over an in-memory transport: the handshake goes through
Daphne and autobahn as on a real socket, and ``transport.value()`` is what the client would read.
"""

import functools

from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from portal import realtime


class _Server:
    """The parts of Daphne's ``Server`` its WebSocket protocol uses."""

    root_path = ""
    proxy_forwarded_address_header = None

    def __init__(self) -> None:
        self.connected: list = []
        self.received: list[dict] = []

    def protocol_connected(self, protocol) -> None:
        self.connected.append(protocol)

    def protocol_disconnected(self, protocol) -> None:
        self.connected.remove(protocol)

    def create_application(self, protocol, scope):
        return self  # the application's queue

    def put_nowait(self, message: dict) -> None:
        self.received.append(message)

    def log_action(self, protocol, action, details) -> None:
        pass


def _open_socket():
    realtime.install_daphne_frame_writes()
    server = _Server()
    factory = WebSocketFactory(server, server="test")
    factory.setProtocolOptions(allowNullOrigin=True, maxMessagePayloadSize=1024)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    protocol._raw_query_string = b""  # as Daphne's HTTP protocol hands over an upgrade
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
    protocol.makeConnection(transport)
    protocol.dataReceived(
        b"GET /ws/ HTTP/1.1\r\nHost: testserver\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    protocol.handle_reply({"type": "websocket.accept"})  # what the application's accept() sends
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    transport.clear()
    # What Daphne passes every application as ``send``.
    send = functools.partial(Server.handle_reply.__get__(server), protocol)
    return server, protocol, transport, send


def _broadcast(text: str) -> dict:
    return {"type": "websocket.send", "text": text, realtime.SHARED_FRAME: realtime.SharedFrame(text)}


def test_a_broadcast_frame_is_written_straight_to_an_open_daphne_socket():
    _, _, transport, send = _open_socket()
    write = realtime.shared_frame_writer(send)
    assert write is not None

    assert write(_broadcast("hello")) is True
    assert transport.value() == b"\x81\x05hello"  # one unmasked text frame: what the client reads
    # The same shared frame to a second socket: the same bytes, framed once.
    _, _, other_transport, other_send = _open_socket()
    message = _broadcast("héllo")
    assert write(message) and realtime.shared_frame_writer(other_send)(message)
    assert other_transport.value() == b"\x81\x06h\xc3\xa9llo"


def test_what_cannot_go_straight_to_the_socket_is_left_to_the_usual_path():
    _, protocol, transport, send = _open_socket()
    write = realtime.shared_frame_writer(send)

    # Not a broadcast, or bigger than the server allows (Daphne closes such a socket itself):
    # nothing written, and the consumer sends it through Daphne as before.
    assert write({"type": "websocket.send", "text": "plain"}) is False
    assert write(_broadcast("x" * 2000)) is False
    assert transport.value() == b""

    # A socket that is closing gets nothing more.
    protocol.handle_reply({"type": "websocket.close", "code": 1000})
    closing = transport.value()
    assert closing == b"\x88\x02\x03\xe8"  # the close frame, code 1000
    assert write(_broadcast("late")) is False
    assert transport.value() == closing


def test_only_daphnes_own_send_gets_a_writer():
    async def send(message):  # a test communicator's, another server's, or a wrapping middleware's
        pass

    _, protocol, _, daphne_send = _open_socket()
    assert realtime.shared_frame_writer(send) is None
    assert realtime.shared_frame_writer(functools.partial(send)) is None
    assert realtime.shared_frame_writer(functools.partial(print, protocol)) is None
    assert realtime.shared_frame_writer(daphne_send) is not None
