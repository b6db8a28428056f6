#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/.

connection/: realistic server byte streams for fuzz_connection, each prefixed
with the harness's two flag bytes (see fuzz_connection.cc). The client's
three requests use streams 1, 3 and 5.
decompress/: see DECOMPRESS_SEEDS below.
url_headers/: FuzzedDataProvider inputs for fuzz_url_headers: strings that
end at a backslash followed by another character.

Run from anywhere; it rewrites the seed files it owns and nothing else.
"""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20

# flag byte 0 bits
PREPEND_SETTINGS, BIG_BODY, TIGHT_LIMITS, RESET_SECOND, DRAIN = 1, 2, 4, 8, 0x80
# flag byte 1 bits
PAUSE_DATA, UPLOAD_WAIT, ABORT_HEADERS, ABORT_DATA, NO_DECODE = \
    1, 2, 4, 8, 0x10


def chunk(n):  # bits 4-6: 1, 2, 7, 16, 64, 256, 1024, all
    return {1: 0, 2: 1, 7: 2, 16: 3, 64: 4, 256: 5, 1024: 6, 0: 7}[n] << 4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def settings(**kv):
    ids = {"header_table_size": 1, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5,
           "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(
        struct.pack(">HI", ids[k], v) for k, v in kv.items()))


def lit(name, value, indexing=False):
    # Literal header field with a new name, no Huffman coding.
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return bytes([0x40 if indexing else 0x00, len(name)]) + name + \
        bytes([len(value)]) + value


STATUS = {200: b"\x88", 204: b"\x89", 206: b"\x8a", 304: b"\x8b",
          400: b"\x8c", 404: b"\x8d", 500: b"\x8e"}


def status(code):
    if code in STATUS:
        return STATUS[code]
    return b"\x08\x03" + str(code).encode()  # literal, indexed name :status


def response(stream, body=b"hello", code=200, extra=b"", pieces=1):
    block = status(code) + lit("content-type", "text/plain") + extra
    out = frame(HEADERS, END_HEADERS | (0 if body else END_STREAM), stream,
                block)
    if body:
        step = -(-len(body) // pieces)
        parts = [body[i:i + step] for i in range(0, len(body), step)]
        for i, part in enumerate(parts):
            out += frame(DATA, END_STREAM if i == len(parts) - 1 else 0,
                         stream, part)
    return out


def encoded(stream, coding, body, pieces=1):
    return response(stream, body, extra=lit("content-encoding", coding),
                    pieces=pieces)


def raw_deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


TEXT = b"h2pool fuzz seed text, repeated to compress well. " * 8


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def goaway(last, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def rst(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def window_update(stream, inc):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", inc))


# Connection seeds below are written with one flag byte; F1 adds the second.
F1 = {
    "gzip_bodies": PAUSE_DATA,
    "gzip_truncated": 0,
    "gzip_bomb_tight_limits": 0,
    "upload_wait_flow_control": UPLOAD_WAIT,
    "streamed_abort": ABORT_DATA,
    "headers_abort": ABORT_HEADERS,
    "no_decode_passthrough": NO_DECODE,
}

CONNECTION_SEEDS = {
    "ok_three_responses": bytes([chunk(0)]) + settings(
        max_concurrent_streams=100) + SETTINGS_ACK + response(1) +
    response(3, b"x" * 11) + response(5, b"y" * 300),
    "ok_byte_by_byte": bytes([chunk(1)]) + settings() + SETTINGS_ACK +
    response(1) + response(3) + response(5),
    "goaway_no_error": bytes([chunk(0) | PREPEND_SETTINGS]) + SETTINGS_ACK +
    response(1) + goaway(1, 0, b"bye"),
    "goaway_protocol_error": bytes([chunk(16) | PREPEND_SETTINGS]) +
    goaway(0, 1, b"you broke it"),
    "rst_stream": bytes([chunk(0) | PREPEND_SETTINGS]) + SETTINGS_ACK +
    rst(3, 7) + rst(1, 8) + response(5, b""),
    "ping": bytes([chunk(16) | PREPEND_SETTINGS]) +
    frame(PING, 0, 0, b"12345678") + frame(PING, ACK, 0, b"\0" * 8) +
    response(1) + response(3) + response(5),
    "flow_control_big_body": bytes([chunk(0) | PREPEND_SETTINGS | BIG_BODY]) +
    SETTINGS_ACK + window_update(0, 100000) + window_update(5, 100000) +
    response(1) + response(3) + response(5),
    "small_window_settings": bytes([chunk(64)]) + settings(
        initial_window_size=10, max_frame_size=16384,
        max_concurrent_streams=1, header_table_size=0) + SETTINGS_ACK +
    response(1) + window_update(3, 100) + response(3),
    "interim_continuation_trailers": bytes([chunk(0)]) + settings() +
    frame(HEADERS, END_HEADERS, 1, status(100)) +
    frame(HEADERS, 0, 1, status(200)) +
    frame(CONTINUATION, END_HEADERS, 1, lit("x-part", "two", True) + b"\xbe") +
    frame(DATA, 0, 1, b"body") +
    frame(HEADERS, END_HEADERS | END_STREAM, 1, lit("grpc-status", "0")) +
    response(3) + response(5),
    "tight_limits": bytes([chunk(0) | PREPEND_SETTINGS | TIGHT_LIMITS]) +
    response(1, b"z" * 200, extra=b"".join(
        lit("x-h%d" % i, "v" * 40) for i in range(10))) + response(3),
    "cancel_and_drain": bytes([chunk(7) | PREPEND_SETTINGS | RESET_SECOND |
                               DRAIN]) + SETTINGS_ACK + response(1) +
    response(3) + response(5, b"late"),
    "padded_priority": bytes([chunk(0) | PREPEND_SETTINGS]) +
    frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1,
          b"\x03" + struct.pack(">IB", 0, 15) + status(404) + b"\0\0\0") +
    frame(DATA, END_STREAM | PADDED, 1, b"\x02abc\0\0") + response(3, code=204,
                                                                   body=b""),
    "content_length_mismatch": bytes([chunk(0) | PREPEND_SETTINGS]) +
    response(1, b"short", extra=lit("content-length", "100")) +
    response(3, b"ok"),
    "headers_on_idle_stream": bytes([chunk(0) | PREPEND_SETTINGS]) +
    response(7) + response(2) + frame(DATA, 0, 9, b"nope"),
    "gzip_bodies": bytes([chunk(64) | PREPEND_SETTINGS]) +
    encoded(1, "gzip", gzip.compress(TEXT, mtime=0)) +
    encoded(3, "deflate", zlib.compress(TEXT), pieces=3) +
    encoded(5, "gzip, deflate", raw_deflate(gzip.compress(TEXT, mtime=0))),
    "gzip_truncated": bytes([chunk(0) | PREPEND_SETTINGS]) +
    encoded(1, "x-gzip", gzip.compress(TEXT, mtime=0)[:40]) +
    encoded(3, "identity, gzip", gzip.compress(TEXT, mtime=0) + b"trail") +
    encoded(5, "br", b"not brotli"),
    "gzip_bomb_tight_limits": bytes([chunk(0) | PREPEND_SETTINGS |
                                     TIGHT_LIMITS]) +
    encoded(1, "gzip", gzip.compress(b"\0" * 200000, mtime=0)),
    "upload_wait_flow_control": bytes([chunk(16) | PREPEND_SETTINGS |
                                       BIG_BODY]) +
    SETTINGS_ACK + window_update(0, 70000) + window_update(5, 70000) +
    response(1) + response(3) + response(5),
    "streamed_abort": bytes([chunk(0) | PREPEND_SETTINGS]) +
    response(3, TEXT, pieces=4) + response(1) + response(5),
    "headers_abort": bytes([chunk(0) | PREPEND_SETTINGS]) +
    response(3, TEXT, pieces=2) + response(1),
    "no_decode_passthrough": bytes([chunk(0) | PREPEND_SETTINGS]) +
    encoded(1, "gzip", gzip.compress(TEXT, mtime=0)) + response(3),
}
CONNECTION_SEEDS = {name: data[:1] + bytes([F1.get(name, 0)]) + data[1:]
                    for name, data in CONNECTION_SEEDS.items()}

URL_HEADER_SEEDS = {
    "simple": b"http://example.com/a?b=c\\xGET\\xaccept\\x*/*\\x",
    # Header pairs take their NULL-pointer flags from the end of the input,
    # so the last value loses its final characters: keep "host" out of it.
    "ipv6_port": b"https://[2001:DB8::1]:8443/p#frag\\xPOST\\xHost"
                 b"\\xexample.org:99\\xContent-Length\\x5\\x",
    "bad_scheme": b"ftp://x/\\xGE T\\xte\\xgzip\\x",
    "pseudo": b"http://user@host/\\x\\x:path\\x/\\xconnection\\xclose\\x",
    "query_only": b"HTTP://Example.COM:080?x\\xOPTIONS\\xte\\xtrailers\\x"
                  b"x-a\\x v \\x",
    "backslash": b"http://h/a\\\\b\\xM\\\\\\xname\\xval\\\\ue\\x",
}


# decompress/: FuzzedDataProvider inputs for fuzz_decompress: the
# content-encoding value, then the body; the limits, the pause rate and the
# chunk sizes come from the bytes at the end (FuzzedDataProvider takes
# integers from the back).
LIMITS_TAIL = bytes([0x10, 0x00, 0x80, 0x03, 0x02, 0x01, 0x7f, 0x00, 0x00,
                     0x40, 0x00, 0x10, 0x00, 0x00])
DECOMPRESS_SEEDS = {
    "gzip": b"gzip\\x" + gzip.compress(TEXT, mtime=0) + LIMITS_TAIL,
    "deflate_zlib": b"deflate\\x" + zlib.compress(TEXT) + LIMITS_TAIL,
    "deflate_raw": b"Deflate\\x" + raw_deflate(TEXT) + LIMITS_TAIL,
    "chain": b"gzip, identity ,deflate\\x" +
    raw_deflate(gzip.compress(TEXT, mtime=0)) + LIMITS_TAIL,
    "two_gzip_members": b"x-gzip\\x" + gzip.compress(b"a" * 100, mtime=0) +
    gzip.compress(b"b" * 100, mtime=0) + LIMITS_TAIL,
    "bomb": b"gzip\\x" + gzip.compress(b"\0" * 3000000, mtime=0) +
    LIMITS_TAIL,
}

# Through a proxy (flag byte 1 bit 6; bit 7: SOCKS5): the proxy's reply, then
# the origin's bytes.
THROUGH_PROXY, SOCKS5 = 0x40, 0x80
ORIGIN = settings() + SETTINGS_ACK + response(1) + response(3) + response(5)
CONNECTION_SEEDS.update({
    "proxy_connect_ok": bytes([chunk(16), THROUGH_PROXY]) +
    b"HTTP/1.1 200 Connection established\r\n\r\n" + ORIGIN,
    "proxy_connect_ok_bytewise": bytes([chunk(1), THROUGH_PROXY]) +
    b"HTTP/1.0 200 OK\r\nVia: fuzz\r\n\r\n" + ORIGIN,
    "proxy_connect_407": bytes([chunk(7), THROUGH_PROXY]) +
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b"Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
    "proxy_connect_garbage": bytes([chunk(0), THROUGH_PROXY]) +
    b"SSH-2.0-x\r\n\r\n",
    "proxy_socks_ok": bytes([chunk(7), THROUGH_PROXY | SOCKS5]) +
    b"\x05\x02\x01\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x0c\x38" + ORIGIN,
    "proxy_socks_name_reply": bytes([chunk(2), THROUGH_PROXY | SOCKS5]) +
    b"\x05\x02\x01\x00\x05\x00\x00\x03\x04abcd\x0c\x38" + ORIGIN,
    "proxy_socks_refused": bytes([chunk(0), THROUGH_PROXY | SOCKS5]) +
    b"\x05\x02\x01\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00",
    "proxy_socks_auth_rejected": bytes([chunk(0), THROUGH_PROXY | SOCKS5]) +
    b"\x05\x02\x01\x01",
})


def write(dirname, seeds):
    path = os.path.join(HERE, "corpus", dirname)
    os.makedirs(path, exist_ok=True)
    for name, data in seeds.items():
        assert len(data) < 4096, name
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("connection", CONNECTION_SEEDS)
    write("url_headers", URL_HEADER_SEEDS)
    write("decompress", DECOMPRESS_SEEDS)
