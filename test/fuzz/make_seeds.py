#!/usr/bin/env python3
"""Writes the generated seeds of test/fuzz/corpus/ (the committed files are its output; run it
again only to change them): msgpack payloads for payload_json, taken from the Salt captures in
../shared/fixtures/salt/ and hand-packed for the corners of payload.c, and a few small stream
and ZeroMQ inputs using the harnesses' control bytes. No msgpack module needed.

usage: test/fuzz/make_seeds.py [FIXTURES_DIR]
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/fixtures/salt")


# ------------------------------------------------------------------ a minimal packer

def p_str(s, raw=None):
    b = s.encode() if raw is None else raw
    n = len(b)
    if n < 32:
        return bytes([0xa0 | n]) + b
    if n < 256:
        return b"\xd9" + bytes([n]) + b
    return b"\xda" + struct.pack(">H", n) + b


def p_bin(b):
    if len(b) < 256:
        return b"\xc4" + bytes([len(b)]) + b
    return b"\xc5" + struct.pack(">H", len(b)) + b


def p_int(v):
    if 0 <= v < 128:
        return bytes([v])
    if -32 <= v < 0:
        return struct.pack(">b", v)
    if v >= 0:
        return b"\xcf" + struct.pack(">Q", v)
    return b"\xd3" + struct.pack(">q", v)


def p_f64(x):
    return b"\xcb" + struct.pack(">d", x)


def p_f32(x):
    return b"\xca" + struct.pack(">f", x)


def p_ext(t, b):
    return b"\xc7" + bytes([len(b), t]) + b


def p_map(items):
    n = len(items)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(k + v for k, v in items)


def p_arr(items):
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(items)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ payloads from the captures

def stream_events(path):
    """(tag, payload) of every frame of a capture: {"head": {}, "body": bin} as Salt writes."""
    data = open(path, "rb").read()
    pos, out = 0, []
    while pos < len(data):
        assert data[pos:pos + 12] == b"\x82\xa4head\x80\xa4body", pos
        pos += 12
        kind = data[pos]
        width = {0xc4: 1, 0xc5: 2, 0xc6: 4}[kind]
        n = int.from_bytes(data[pos + 1:pos + 1 + width], "big")
        pos += 1 + width
        body = data[pos:pos + n]
        pos += n
        tag, payload = body.split(b"\n\n", 1)
        out.append((tag, payload))
    return out


def zmq_messages(path):
    data = open(path, "rb").read()
    pos, out = 0, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def main():
    events = stream_events(os.path.join(FIXTURES, "frames-3006.bin"))
    picks = {0: "presence", 1: "auth_pem", 5: "refresh_key_spaces", 7: "minion_start",
             11: "new_job", 12: "ret_test_ping", 18: "ret_state_apply", 24: "ret_unicode",
             27: "ret_hostile_sep_inside", 40: "ret_bin", 43: "ret_inventory_all_types",
             46: "ret_value_trimmed", 48: "runner_ret", 51: "custom_data_data_fun",
             53: "beacon", 54: "empty"}
    for i, name in picks.items():
        write("payload_json", "3006_%02d_%s.msgpack" % (i, name), events[i][1])
    for i, msg in enumerate(zmq_messages(os.path.join(FIXTURES, "frames-zmq-2015.bin"))):
        payload = msg.split(b"\n\n", 1)[1]
        if b"\xfc" in payload or b"\xb9\xb8" in payload or i in (0, 5):
            write("payload_json", "zmq2015_%02d.msgpack" % i, payload)

    # ---------------------------------------------------------- hand-packed corners
    deep = p_int(1)
    for _ in range(31):
        deep = p_map([(p_str("a"), deep)])
    write("payload_json", "depth_32.msgpack", p_map([(p_str("a"), deep)]))   # 32 maps: limit
    write("payload_json", "depth_33.msgpack", p_map([(p_str("b"), p_map([(p_str("a"), deep)]))]))
    write("payload_json", "odd_keys.msgpack", p_map([
        (p_int(1), p_str("one")), (p_int(-7), p_str("minus seven")),
        (p_int(2 ** 64 - 1), p_str("u64")), (b"\xc0", p_str("nil key")),
        (b"\xc3", p_str("true key")), (p_f64(1.5), p_str("float key")),
        (p_bin(b"\x00\xff"), p_str("bin key")), (p_str("", raw=b"\xff\xfe"), p_str("raw key")),
        (p_arr([p_int(1), p_str("x")]), p_str("array key")),
        (p_map([(p_str("k"), p_int(0))]), p_str("map key")),
        (p_ext(78, b"20251118T09:50:00.123456"), p_str("datetime key")),
        (p_ext(5, b"\x01\x02"), p_str("ext key")),
    ]))
    write("payload_json", "floats.msgpack", p_map([
        (p_str("f%d" % i), p_f64(x)) for i, x in enumerate([
            0.0, -0.0, 1.0, 2.0, 0.1, 1e-5, 1e-4, 1e15, 1e16, 1.7976931348623157e308,
            5e-324, 1e-300, 123456789.125, -2.5e-7])] + [
        (p_str("inf"), p_f64(float("inf"))), (p_str("-inf"), p_f64(float("-inf"))),
        (p_str("nan"), p_f64(float("nan"))), (p_str("f32"), p_f32(3.25)),
        (p_str("f32tiny"), p_f32(1e-40)),
    ]))
    write("payload_json", "strings.msgpack", p_map([
        (p_str("ctl"), p_str("\x00\x01\x1f\x7f\"\\\n\r\t\b\f/")),
        (p_str("utf8"), p_str("j\u00fcrgen \u2713 \U0001d11e \ud55c")),
        (p_str("overlong"), p_str("", raw=b"\xc0\xaf\xe0\x80\xaf")),
        (p_str("surrogate"), p_str("", raw=b"\xed\xa0\x80")),
        (p_str("above"), p_str("", raw=b"\xf4\x90\x80\x80")),
        (p_str("cut"), p_str("", raw=b"abc\xe2\x82")),
        (p_str("ext"), p_ext(78, b"2025-11-18")),
        (p_str("ext_bad"), p_ext(78, b"\xff\xfe")),
        (p_str("fixext"), b"\xd4\x01\x00"), (p_str("fixext16"), b"\xd8\x02" + bytes(16)),
        (p_str("ext16"), b"\xc8\x00\x03\x07abc"), (p_str("bin0"), b"\xc4\x00"),
        (p_str("str8"), b"\xd9\x00"), (p_str("str32"), b"\xdb\x00\x00\x00\x01x"),
        (p_str("ints"), p_arr([b"\xcc\xff", b"\xcd\xff\xff", b"\xce\xff\xff\xff\xff",
                               b"\xd0\x80", b"\xd1\x80\x00", b"\xd2\x80\x00\x00\x00",
                               p_int(-2 ** 63), p_int(2 ** 63)])),
        (p_str("nil"), b"\xc0"), (p_str("bools"), p_arr([b"\xc2", b"\xc3"])),
        (p_str("array32"), b"\xdd\x00\x00\x00\x01\x01"),
        (p_str("map32"), b"\xdf\x00\x00\x00\x01\xa1k\x01"),
    ]))
    write("payload_json", "lookup_paths.msgpack", p_map([
        (p_str("fun"), p_str("state.apply")), (p_str("jid"), p_str("20251118095000000600")),
        (p_str("arg"), p_arr([p_str("x"), p_map([(p_str("k"), p_int(1))])])),
        (p_str("return"), p_map([(p_int(1), p_str("a")), (p_int(-7), p_arr([p_int(0), p_int(1)])),
                                 (p_int(0), p_arr([p_int(5), p_int(6)]))])),
        (p_str("data"), p_map([(p_str("fun"), p_str("x")),
                               (p_str("data"), p_map([(p_str("fun"), p_str("deploy"))]))])),
    ]))
    write("payload_json", "not_a_map_array.msgpack", p_arr([p_int(1), p_str("two"), b"\xc0"]))
    write("payload_json", "not_a_map_scalar.msgpack", p_f64(2.0))
    write("payload_json", "huge_count.msgpack", b"\x81\xa1a\xdd\xff\xff\xff\xff")
    write("payload_json", "trailing.msgpack", b"\x80\x80")
    write("payload_json", "c1.msgpack", b"\x81\xa1a\xc1")

    # ---------------------------------------------------------- small streams
    def frame(tag, payload, body_kind=b"bin", head_first=True):
        body = tag + b"\n\n" + payload
        b = p_bin(body) if body_kind == b"bin" else p_str("", raw=body)
        pairs = [(p_str("head"), p_map([])), (p_str("body"), b)]
        return p_map(pairs if head_first else pairs[::-1])

    small = p_map([(p_str("fun"), p_str("test.ping")), (p_str("return"), b"\xc3")])
    write("salt_stream", "py2_body_first_raw.bin",
          frame(b"salt/job/1/ret/m", small, b"str", False) + frame(b"a", p_map([])))
    # control header: byte 0 not a map -> limits (bit 0: max_event_bytes 1024, bits 1-5:
    # max_depth), bytes 1-2: chunking seed
    big = frame(b"big", p_map([(p_str("x"), b"\xda\x08\x00" + b"y" * 2048)]))
    write("salt_stream", "ctl_oversize_then_good.bin",
          b"\x01\x12\x34" + frame(b"one", small) + big + frame(b"two", small))
    write("salt_stream", "ctl_depth2_garbage.bin",
          b"\x02\x00\x07" + frame(b"deep", p_map([(p_str("a"), p_map([(p_str("b"), p_map([]))]))]))
          + frame(b"ok", small) + b"\xc1garbage")

    # ---------------------------------------------------------- small ZeroMQ records
    def rec(msg, ctl=0):
        return struct.pack(">I", (ctl << 24) | len(msg)) + msg
    write("salt_zmq", "forms_and_limits.bin",
          rec(b"salt/auth|||||||||||" + small) + rec(b"app/deploy/started\n\n" + small) +
          rec(b"x" * 19 + b"\xde\x00\x00\n\n" + small) +
          rec(b"t\n\n" + p_map([(p_str("x"), b"\xda\x08\x00" + b"y" * 2048)]), 1) +
          rec(b"nested\n\n" + p_map([(p_str("a"), p_map([(p_str("b"), p_map([]))]))]), 2))


if __name__ == "__main__":
    main()
