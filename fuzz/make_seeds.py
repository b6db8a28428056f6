#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/.

connection/: realistic server byte streams for fuzz_connection, each prefixed
with the harness's two flag bytes (see fuzz_connection.cc). The client's
three requests use streams 1, 3 and 5.
decompress/, decompress_br/, decompress_zstd/: see DECOMPRESS_SEEDS below.
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


# Python's standard library has neither brotli nor zstd: these streams were
# made once with libbrotlienc 1.0.9 (quality 5, lgwin 22, and quality 11,
# lgwin 24) and libzstd 1.5.4 (level 3), from TEXT and from 3000000 zeros.
BR_TEXT = (
    b"\x1b\x8f\x01\x00\x04\xca\x6d\xa9\x1e\x7d\x18\x8c\x55\x5f\x2c\xb2\xe0\x0b"
    b"\x32\xd8\x80\x03\xf7\x30\xd2\x44\x64\x00\x18\x26\x72\x82\xad\xe0\x7e\x77"
    b"\x1f\xcb\xc6\x7a\x55\x5c\x69\x62\x7d\x07\xcf\x6c\xc5\xc9\xc8\xe3\x86\x88"
    b"\x63\x34\x28")
BR_ZEROS = (
    b"\x9b\xbf\xc6\x2d\x00\x24\x00\xe2\xb1\x40\xf2\x7c\x5b\x00")
BR_TEXT_Q11 = (
    b"\x1f\x8f\x01\xe8\x15\xa1\xd2\xa1\xdc\x96\xea\xd1\x97\x16\xb3\x2f\x06\xe1"
    b"\x05\x27\xc8\x5a\x10\x68\x28\x22\x4c\x09\x84\x65\x0d\xcf\x56\x5d\x79\xec"
    b"\xcd\x7c\xdd\x5c\x69\x50\xfa\x15\x74\xb0\x39\xd6\x49\x83\xc6\x10")
ZSTD_TEXT = (
    b"\x28\xb5\x2f\xfd\x60\x90\x00\xcd\x01\x00\xe4\x02\x68\x32\x70\x6f\x6f\x6c"
    b"\x20\x66\x75\x7a\x7a\x20\x73\x65\x65\x64\x20\x74\x65\x78\x74\x2c\x20\x72"
    b"\x65\x70\x65\x61\x74\x6f\x20\x63\x6f\x6d\x70\x72\x65\x73\x73\x20\x77\x65"
    b"\x6c\x6c\x2e\x20\x02\x00\xb7\xaa\xd2\x95\xac\xd3\x09")
ZSTD_TEXT_NO_SIZE_CHECKSUM = (
    b"\x28\xb5\x2f\xfd\x04\x00\xcd\x01\x00\xe4\x02\x68\x32\x70\x6f\x6f\x6c\x20"
    b"\x66\x75\x7a\x7a\x20\x73\x65\x65\x64\x20\x74\x65\x78\x74\x2c\x20\x72\x65"
    b"\x70\x65\x61\x74\x6f\x20\x63\x6f\x6d\x70\x72\x65\x73\x73\x20\x77\x65\x6c"
    b"\x6c\x2e\x20\x02\x00\xb7\xaa\xd2\x95\xac\xd3\x09\x60\xe4\xf0\x28")
ZSTD_ZEROS = (
    b"\x28\xb5\x2f\xfd\x80\x58\xc0\xc6\x2d\x00\x54\x00\x00\x10\x00\x00\x01\x00"
    b"\xfb\xff\x39\xc0\x02\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02"
    b"\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10"
    b"\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02"
    b"\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10"
    b"\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x02\x00\x10\x00\x03"
    b"\x36\x0e\x00")


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
    "br_gzip_chain": b"br, gzip\\x" + gzip.compress(BR_TEXT, mtime=0) +
    LIMITS_TAIL,
    "zstd_deflate_chain": b"zstd,deflate\\x" + zlib.compress(ZSTD_TEXT) +
    LIMITS_TAIL,
}


def zstd_raw_frame(data, window_log):
    """A zstd frame of one raw block, with no content size: the window
    descriptor alone says how much memory it asks for (RFC 8878 3.1.1.1.2)."""
    assert len(data) < 1 << 21
    return struct.pack("<IBB", 0xFD2FB528, 0x00, (window_log - 10) << 3) + \
        struct.pack("<I", 1 | len(data) << 3)[:3] + data


def zstd_skippable(data, variant=0):
    return struct.pack("<II", 0x184D2A50 + variant, len(data)) + data


# decompress_br/ and decompress_zstd/: as decompress/ without the
# content-encoding value (the target fixes it).
DECOMPRESS_BR_SEEDS = {
    "text": BR_TEXT + LIMITS_TAIL,
    "text_q11_lgwin24": BR_TEXT_Q11 + LIMITS_TAIL,
    "bomb": BR_ZEROS + LIMITS_TAIL,
    "truncated": BR_TEXT[:30] + LIMITS_TAIL,
    "trailing_garbage": BR_TEXT + b"junk" + LIMITS_TAIL,
}
DECOMPRESS_ZSTD_SEEDS = {
    "text": ZSTD_TEXT + LIMITS_TAIL,
    "no_size_checksum": ZSTD_TEXT_NO_SIZE_CHECKSUM + LIMITS_TAIL,
    "frames_and_skippable": zstd_skippable(b"meta") + ZSTD_TEXT +
    zstd_skippable(b"", 15) + ZSTD_TEXT_NO_SIZE_CHECKSUM + LIMITS_TAIL,
    "bomb": ZSTD_ZEROS + LIMITS_TAIL,
    "window_8mib": zstd_raw_frame(TEXT, 23) + LIMITS_TAIL,
    "window_16mib_refused": zstd_raw_frame(TEXT, 24) + LIMITS_TAIL,
    "trailing_garbage": ZSTD_TEXT + b"junk" + LIMITS_TAIL,
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
    write("decompress_br", DECOMPRESS_BR_SEEDS)
    write("decompress_zstd", DECOMPRESS_ZSTD_SEEDS)
