#!/usr/bin/env python3
"""Checks what the cortex-m firmware printed under qemu (see src/main.rs).

Usage: check_output.py OUTPUT_FILE [--remote-write] [--protobuf]

Accepts both builds of the firmware: with the `http` feature the output holds raw HTTP/1.1
exchanges (parsed here with http.client), without it the bodies between markers. Either way
it checks the status codes, content types, the readiness bodies byte for byte, and the
/metrics exposition in both formats with the reference parsers of prometheus_client (0.0.4
text and OpenMetrics), against the values the firmware's fixed workload must produce. With
--protobuf, also a third /metrics in Prometheus' protobuf format, decoded by the reference
protobuf library; with --remote-write, the remote write requests (snappy, then protobuf).
Exits 1 on any mismatch.
"""

import http.client
import io
import math
import re
import sys

import snappy
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

PID = 1
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
JSON = "application/json"
PLAIN = "text/plain; charset=utf-8"

COUNTERS = [
    "fw_packets_received",
    "fw_packets_sent",
    "fw_crc_errors",
    "fw_retries",
    "fw_watchdog_kicks",
    "fw_adc_samples",
    "fw_i2c_errors",
    "fw_uart_overruns",
    "fw_flash_writes",
    "fw_config_reloads",
]
COMPONENTS = ["auth", "node", "sensor", "uplink"]
LOOP = ([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025], [0.0003, 0.0007, 0.0007, 0.0012, 0.004, 0.03])
PAYLOAD = ([16.0, 32.0, 64.0, 128.0, 256.0], [12.0, 40.0, 64.0, 200.0, 512.0])

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def le(bound):
    return "+Inf" if bound == float("inf") else repr(float(bound))


def histogram(name, bounds, observations):
    """Expected samples of a histogram: cumulative buckets, sum, count."""
    out = {}
    for bound in bounds + [float("inf")]:
        out[(name + "_bucket", (("le", le(bound)),))] = float(sum(1 for o in observations if o <= bound))
    out[(name + "_sum", ())] = sum(observations)
    out[(name + "_count", ())] = float(len(observations))
    return out


def sensor_of(found):
    """The run-time sensor name the firmware labelled its readings with (`cpu-` + its CPUID)."""
    names = {dict(labels).get("sensor") for (name, labels) in found if name == "fw_sensor_readings_total"}
    names.discard(None)
    check(len(names) == 1, f"one sensor name in the readings: {names}")
    name = names.pop() if names else ""
    check(re.fullmatch(r"cpu-[0-9a-f]{8}", name) is not None, f"sensor name made at run time: {name!r}")
    return name


def expected_samples(scrapes, sensor, native=False):
    """Every sample the exposition must hold, after `scrapes` scrapes (this one included);
    `native`: the protobuf build's native histogram too (its text form: `+Inf`, sum, count)."""
    out = {
        ("process_state", ()): 0.0,
        ("process_state_transitions_total", ()): 7.0,  # 4 x starting->ok, uplink ok->degraded->recovering->ok
        ("promhttp_metric_handler_requests_total", (("code", "200"),)): float(scrapes),
        ("promhttp_metric_handler_requests_total", (("code", "500"),)): 0.0,
        ("promhttp_metric_handler_requests_total", (("code", "503"),)): 0.0,
        ("promhttp_metric_handler_requests_in_flight", ()): 1.0,
    }
    for c in COMPONENTS:
        out[("diag_component_state", (("component", c),))] = 0.0
    for i, name in enumerate(COUNTERS):
        out[(name + "_total", ())] = float((i + 1) * 3)
    out.update(histogram("fw_loop_seconds", *LOOP))
    out.update(histogram("fw_payload_bytes", *PAYLOAD))
    for channel in (0, 1):
        out[("fw_sensor_readings_total", (("channel", str(channel)), ("sensor", sensor)))] = 5.0 + channel
    if native:
        out.update(histogram("fw_settle_seconds", [], settle_values(sensor)))
    return out


def samples(families):
    out = {}
    for family in families:
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            check(key not in out, f"duplicate sample {key}")
            out[key] = s.value
    return out


def same(a, b):
    if a.keys() != b.keys():
        return False
    return all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(b[k])) for k in a)


def write_request_class():
    """prometheus.WriteRequest (remote write 1.0's types.proto, the fields 1.0 uses), built with
    the reference protobuf library from a descriptor rather than generated code."""
    f = descriptor_pb2.FileDescriptorProto(name="remote.proto", package="prometheus", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name, fields):
        m = f.message_type.add(name=name)
        for number, (fname, ftype, label, type_name) in enumerate(fields, 1):
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    message("Label", [("name", T.TYPE_STRING, T.LABEL_OPTIONAL, None), ("value", T.TYPE_STRING, T.LABEL_OPTIONAL, None)])
    message("Sample", [("value", T.TYPE_DOUBLE, T.LABEL_OPTIONAL, None), ("timestamp", T.TYPE_INT64, T.LABEL_OPTIONAL, None)])
    message("TimeSeries", [("labels", T.TYPE_MESSAGE, T.LABEL_REPEATED, ".prometheus.Label"),
                           ("samples", T.TYPE_MESSAGE, T.LABEL_REPEATED, ".prometheus.Sample")])
    message("WriteRequest", [("timeseries", T.TYPE_MESSAGE, T.LABEL_REPEATED, ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


def metric_family_class():
    """io.prometheus.client.MetricFamily (client_model's metrics.proto, the fields diag writes
    for counters, gauges, untyped, classic and native histograms), built from a descriptor."""
    f = descriptor_pb2.FileDescriptorProto(name="metrics.proto", package="io.prometheus.client", syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name, fields):
        m = f.message_type.add(name=name)
        for number, fname, ftype, repeated, type_name in fields:
            label = T.LABEL_REPEATED if repeated else T.LABEL_OPTIONAL
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = ".io.prometheus.client." + type_name

    message("LabelPair", [(1, "name", T.TYPE_STRING, False, None), (2, "value", T.TYPE_STRING, False, None)])
    message("Gauge", [(1, "value", T.TYPE_DOUBLE, False, None)])
    message("Counter", [(1, "value", T.TYPE_DOUBLE, False, None)])
    message("Untyped", [(1, "value", T.TYPE_DOUBLE, False, None)])
    message("Bucket", [(1, "cumulative_count", T.TYPE_UINT64, False, None), (2, "upper_bound", T.TYPE_DOUBLE, False, None)])
    message("BucketSpan", [(1, "offset", T.TYPE_SINT32, False, None), (2, "length", T.TYPE_UINT32, False, None)])
    message("Histogram", [(1, "sample_count", T.TYPE_UINT64, False, None), (2, "sample_sum", T.TYPE_DOUBLE, False, None),
                          (3, "bucket", T.TYPE_MESSAGE, True, "Bucket"), (5, "schema", T.TYPE_SINT32, False, None),
                          (6, "zero_threshold", T.TYPE_DOUBLE, False, None), (7, "zero_count", T.TYPE_UINT64, False, None),
                          (9, "negative_span", T.TYPE_MESSAGE, True, "BucketSpan"),
                          (10, "negative_delta", T.TYPE_SINT64, True, None),
                          (12, "positive_span", T.TYPE_MESSAGE, True, "BucketSpan"),
                          (13, "positive_delta", T.TYPE_SINT64, True, None)])
    message("Metric", [(1, "label", T.TYPE_MESSAGE, True, "LabelPair"), (2, "gauge", T.TYPE_MESSAGE, False, "Gauge"),
                       (3, "counter", T.TYPE_MESSAGE, False, "Counter"), (5, "untyped", T.TYPE_MESSAGE, False, "Untyped"),
                       (7, "histogram", T.TYPE_MESSAGE, False, "Histogram")])
    message("MetricFamily", [(1, "name", T.TYPE_STRING, False, None), (2, "help", T.TYPE_STRING, False, None),
                             (3, "type", T.TYPE_INT32, False, None), (4, "metric", T.TYPE_MESSAGE, True, "Metric")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))


def native_buckets(spans, deltas):
    """{key: count} of a native histogram's spans and delta-encoded counts."""
    out, key, count, i = {}, 0, 0, 0
    for n, span in enumerate(spans):
        key = span.offset if n == 0 else key + span.offset
        for _ in range(span.length):
            count += deltas[i]
            i += 1
            out[key] = count
            key += 1
    check(i == len(deltas), f"{len(deltas)} deltas for {i} buckets")
    return out


def native_key(v, schema):
    """Prometheus' bucket of v > 0 at `schema`: the k with 2^((k-1)/2^s) < v <= 2^(k/2^s)."""
    k = math.ceil(math.log2(v) * 2**schema)
    while 2 ** ((k - 1) / 2**schema) >= v:
        k -= 1
    while 2 ** (k / 2**schema) < v:
        k += 1
    return k


def settle_values(sensor):
    """The values the firmware observed in fw_settle_seconds, from its CPU id (the sensor name)."""
    cpuid = int(sensor[4:], 16) if re.fullmatch(r"cpu-[0-9a-f]{8}", sensor) else 0
    base = 1.0 + (cpuid % 97) / 100.0
    return [0.0] + [base * 0.001 * k for k in range(1, 6)]


def protobuf_samples(body, natives=None):
    """Decodes a delimited MetricFamily stream into samples keyed like the text parser's: a
    histogram's buckets (cumulative, `+Inf` from sample_count), `_sum` and `_count`; a native
    histogram's fields go into `natives[name]`."""
    MetricFamily = metric_family_class()
    COUNTER, GAUGE, UNTYPED, HISTOGRAM = 0, 1, 3, 4
    out, at, names = {}, 0, []
    while at < len(body):
        size, shift = 0, 0
        while True:
            b = body[at]
            at += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        family = MetricFamily()
        family.ParseFromString(body[at:at + size])
        at += size
        names.append(family.name)
        for m in family.metric:
            labels = tuple(sorted((l.name, l.value) for l in m.label))

            def put(name, value, extra=()):
                key = (name, tuple(sorted(labels + extra)))
                check(key not in out, f"duplicate sample {key}")
                out[key] = float(value)

            if family.type == COUNTER:
                put(family.name, m.counter.value)
            elif family.type == GAUGE:
                put(family.name, m.gauge.value)
            elif family.type == UNTYPED:
                put(family.name, m.untyped.value)
            elif family.type == HISTOGRAM:
                h = m.histogram
                if h.HasField("schema") and natives is not None:
                    natives[family.name] = {
                        "schema": h.schema, "zero_threshold": h.zero_threshold, "zero_count": h.zero_count,
                        "count": h.sample_count, "sum": h.sample_sum,
                        "positive": native_buckets(h.positive_span, h.positive_delta),
                        "negative": native_buckets(h.negative_span, h.negative_delta),
                    }
                for b in h.bucket:
                    put(family.name + "_bucket", b.cumulative_count, (("le", le(b.upper_bound)),))
                put(family.name + "_bucket", h.sample_count, (("le", "+Inf"),))
                put(family.name + "_sum", h.sample_sum)
                put(family.name + "_count", h.sample_count)
            else:
                check(False, f"{family.name}: unexpected type {family.type}")
    check(len(names) == len(set(names)), f"each family once: {names}")
    return out


def remote_write_samples(hex_requests):
    """Decodes the firmware's remote write requests (snappy, then protobuf) into samples keyed
    like the exposition's, checking the external labels, the timestamp and the label order."""
    WriteRequest = write_request_class()
    out = {}
    for h in hex_requests:
        body = snappy.uncompress(bytes.fromhex(h.decode()))
        check(len(body) <= 512, f"a request fits the firmware's 512-byte buffer: {len(body)}")
        request = WriteRequest()
        request.ParseFromString(body)
        check(len(request.timeseries) > 0, "no empty request")
        for ts in request.timeseries:
            names = [l.name for l in ts.labels]
            check(names == sorted(names), f"labels sorted: {names}")
            labels = {l.name: l.value for l in ts.labels}
            check(labels.pop("job", None) == "firmware" and labels.pop("instance", None) == "lm3s6965",
                  f"external labels on every series: {names}")
            name = labels.pop("__name__")
            check(len(ts.samples) == 1 and ts.samples[0].timestamp == 1_700_000_000_000, f"one sample at the push time: {name}")
            key = (name, tuple(sorted(labels.items())))
            check(key not in out, f"series sent once: {key}")
            out[key] = ts.samples[0].value
    return out


class Stream(io.BytesIO):
    """The bytes of one connection; http.client closes its file after each body, this stays open."""

    def makefile(self, *args, **kwargs):
        return self

    def close(self):
        pass


def http_responses(data, count):
    stream = Stream(data)
    out = []
    for _ in range(count):
        response = http.client.HTTPResponse(stream)
        response.begin()
        body = response.read()
        is_protobuf = response.getheader("Content-Type") == PROTOBUF
        out.append((response.status, response.getheader("Content-Type"), body if is_protobuf else body.decode(), response))
    check(stream.read() == b"", "nothing after the last response")
    return out


def parse_http(raw, protobuf):
    m = re.fullmatch(rb"=== connection 1 ===\n(.*)=== connection 2 ===\n(.*)=== end ===\n", raw, re.S)
    check(m is not None, "output framed as connection 1, connection 2, end")
    if m is None:
        return {}
    first = http_responses(m.group(1), 1)
    second = http_responses(m.group(2), 5 if protobuf else 4)
    for _, _, _, response in first + second:
        check(response.getheader("Cache-Control") == "no-store", "Cache-Control: no-store")
        check(response.getheader("X-Content-Type-Options") == "nosniff", "X-Content-Type-Options: nosniff")
    check(second[0][3].getheader("Transfer-Encoding") == "chunked", "/metrics streamed chunked")
    check(second[0][3].getheader("Content-Encoding") is None, "/metrics not gzipped")
    check(second[-1][3].getheader("Connection") == "close", "last response closes")
    names = ["readyz-starting", "metrics-text", "metrics-openmetrics"] + (["metrics-protobuf"] if protobuf else [])
    names += ["readyz-verbose", "readyz"]
    return {n: r[:3] for n, r in zip(names, first + second)}


def parse_bodies(raw):
    out = {}
    pattern = re.compile(rb"=== body (\S+) (\d+) ([^\n]*) ===\n(.*?)\n=== end body ===\n", re.S)
    end = 0
    for m in pattern.finditer(raw):
        check(m.start() == end, "bodies follow each other")
        end = m.end()
        out[m.group(1).decode()] = (int(m.group(2)), m.group(3).decode(), m.group(4).decode())
    check(raw[end:] == b"=== end ===\n", "output ends with the end marker")
    return out


def main():
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    stack = re.search(rb"\nstack (\d+) of (\d+)\n?$", raw)
    check(stack is not None, "stack report at the end")
    if stack:
        print(f"stack used: {int(stack.group(1))} of {int(stack.group(2))} bytes")
        raw = raw[: stack.start() + 1]
    check(b"error:" not in raw, "firmware reported no error")
    pushed = re.findall(rb"=== remote-write ([0-9a-f]+) ===\n", raw)
    raw = re.sub(rb"=== remote-write [0-9a-f]+ ===\n", b"", raw)

    protobuf = "--protobuf" in sys.argv
    responses = parse_http(raw, protobuf) if raw.startswith(b"=== connection 1") else parse_bodies(raw)
    expect = {
        "readyz-starting": (400, JSON, f'{{"status":"process is starting and hasn\'t joined the cluster yet","pid":{PID}}}'),
        "readyz-verbose": (200, PLAIN, "".join(f"[+]{c} ok\n" for c in COMPONENTS) + "readyz check passed\n"),
        "readyz": (200, JSON, f'{{"status":"ok","pid":{PID}}}'),
    }
    for name, want in expect.items():
        got = responses.get(name)
        check(got == want, f"{name}: got {got!r}, want {want!r}")

    text = responses.get("metrics-text", (0, "", ""))
    check(text[:2] == (200, TEXT), f"metrics-text status and type: {text[:2]}")
    om = responses.get("metrics-openmetrics", (0, "", ""))
    check(om[:2] == (200, OPENMETRICS), f"metrics-openmetrics status and type: {om[:2]}")
    check(om[2].endswith("# EOF\n"), "OpenMetrics ends with # EOF")

    try:
        text_samples = samples(parse_text(text[2]))
    except Exception as e:  # the parser's own error is the report
        check(False, f"0.0.4 parser rejected the exposition: {e}")
        text_samples = {}
    try:
        om_samples = samples(parse_openmetrics(om[2]))
    except Exception as e:
        check(False, f"OpenMetrics parser rejected the exposition: {e}")
        om_samples = {}
    sensor = sensor_of(text_samples)
    want_text, want_om = expected_samples(1, sensor, protobuf), expected_samples(2, sensor, protobuf)
    check(same(text_samples, want_text), f"0.0.4 samples: {sorted(set(text_samples.items()) ^ set(want_text.items()))}")
    check(same(om_samples, want_om), f"OpenMetrics samples: {sorted(set(om_samples.items()) ^ set(want_om.items()))}")
    # The two formats agree on everything but the scrape counter.
    key = ("promhttp_metric_handler_requests_total", (("code", "200"),))
    check(same({k: v for k, v in text_samples.items() if k != key}, {k: v for k, v in om_samples.items() if k != key}),
          "0.0.4 and OpenMetrics values agree")
    check(len(text_samples) == len(want_text) == 39 + (3 if protobuf else 0), f"{len(text_samples)} samples")

    if protobuf:
        pb = responses.get("metrics-protobuf", (0, "", b""))
        check(pb[:2] == (200, PROTOBUF), f"metrics-protobuf status and type: {pb[:2]}")
        natives = {}
        try:
            pb_samples = protobuf_samples(pb[2], natives)
        except Exception as e:  # the decoder's own error is the report
            check(False, f"protobuf decoder rejected the exposition: {e}")
            pb_samples = {}
        want_pb = expected_samples(3, sensor, True)
        values = settle_values(sensor)
        positive = {}
        for v in values[1:]:
            positive[native_key(v, 3)] = positive.get(native_key(v, 3), 0) + 1
        want_native = {"schema": 3, "zero_threshold": 2.0**-128, "zero_count": 1, "count": len(values),
                       "sum": sum(values), "positive": positive, "negative": {}}
        got_native = natives.get("fw_settle_seconds")
        check(got_native == want_native, f"native histogram: got {got_native}, want {want_native}")
        if got_native == want_native:
            print(f"native histogram: schema 3, {len(values)} observations, buckets {sorted(positive.items())} checked")
        check(same(pb_samples, want_pb), f"protobuf samples: {sorted(set(pb_samples.items()) ^ set(want_pb.items()))}")
        print(f"protobuf: {len(pb_samples)} samples decoded and checked")

    if pushed:
        # Remote write carries the registry's series (the built-in families are the HTTP
        # service's): exactly the exposition's values for those.
        got = remote_write_samples(pushed)
        builtin = ("process_state", "diag_component_state", "promhttp_metric_handler")
        want = {k: v for k, v in want_text.items() if not k[0].startswith(builtin)}
        check(len(pushed) > 1, f"the push took several requests: {len(pushed)}")
        check(same(got, want), f"remote write samples: {sorted(set(got.items()) ^ set(want.items()))}")
        print(f"remote write: {len(pushed)} requests, {len(got)} series decoded and checked")
    elif "--remote-write" in sys.argv:
        check(False, "no remote write requests in the output")

    print(f"cortex-m firmware output: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
