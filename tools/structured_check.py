#!/usr/bin/env python3
"""Checks structured outputs end to end against a running kiln server (the GPU machine has no
Node, so this is the CUDA counterpart of tests/integration/structured_outputs_test.mjs).

usage: structured_check.py URL MODEL [ROUNDS]

Sends chat requests under a bounded JSON Schema (n=4, temperature 1.5, streamed and not, several
seeds) and checks that every choice finishes with "stop", parses, and validates. Validation uses
the `jsonschema` package when it is installed, and always a small validator written from the
schema's keywords, so the check does not rely on kiln's own code. Prints one line per request and
a summary; exits 1 on any failure."""
import json
import sys
import urllib.request

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "kind": {"enum": ["a", "b", None, 3]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
        "score": {"type": "integer", "minimum": -5, "maximum": 99},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "kind", "tags", "score"],
    "additionalProperties": False,
}


def check(v):
    """The schema's keywords, checked directly. Returns an error string or None."""
    if not isinstance(v, dict):
        return "not an object"
    extra = set(v) - set(SCHEMA["properties"])
    if extra:
        return "extra properties %s" % sorted(extra)
    for k in SCHEMA["required"]:
        if k not in v:
            return "missing %s" % k
    if not isinstance(v["name"], str) or len(v["name"]) > 12:
        return "bad name"
    if v["kind"] not in ["a", "b", None, 3] or isinstance(v["kind"], bool):
        return "bad kind"
    t = v["tags"]
    if not isinstance(t, list) or len(t) > 3 or any(not isinstance(x, str) or len(x) > 6 for x in t):
        return "bad tags"
    s = v["score"]
    if not isinstance(s, int) or isinstance(s, bool) or not -5 <= s <= 99:
        return "bad score"
    if "ok" in v and not isinstance(v["ok"], bool):
        return "bad ok"
    return None


def post(url, body, stream):
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        if not stream:
            j = json.load(r)
            return [(c["message"]["content"], c["finish_reason"]) for c in j["choices"]]
        text, finish = {}, {}
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            for c in ev.get("choices", []):
                i = c["index"]
                text[i] = text.get(i, "") + (c.get("delta", {}).get("content") or "")
                if c.get("finish_reason"):
                    finish[i] = c["finish_reason"]
        return [(text[i], finish.get(i)) for i in sorted(text)]


def main():
    url, model = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    try:
        import jsonschema  # optional second validator
    except ImportError:
        jsonschema = None
    failures = checked = 0
    for seed in range(rounds):
        for stream in (False, True):
            body = {"model": model, "messages": [{"role": "user", "content": "Describe item %d." % seed}],
                    "n": 4, "temperature": 1.5, "seed": seed, "max_tokens": 400, "stream": stream,
                    "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "item", "schema": SCHEMA, "strict": True}}}
            for text, finish in post(url, body, stream):
                checked += 1
                err = None
                if finish != "stop":
                    err = "finish_reason %s" % finish
                else:
                    try:
                        v = json.loads(text)
                        err = check(v)
                        if err is None and jsonschema is not None:
                            jsonschema.validate(v, SCHEMA)
                    except Exception as e:  # noqa: BLE001 - any parse or validation error is a failure
                        err = str(e)
                if err:
                    failures += 1
                    print("FAIL seed=%d stream=%s: %s: %r" % (seed, stream, err, text[:200]))
    print("structured_check: %d choices, %d failures, jsonschema package: %s" %
          (checked, failures, "yes" if jsonschema else "no"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
