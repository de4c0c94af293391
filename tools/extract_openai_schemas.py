#!/usr/bin/env python3
"""Writes tests/fixtures/openai-schemas.json: the response schemas of OpenAI's published OpenAPI
description that kiln's answers are validated against (tests/integration/openai_schema_test.mjs),
with every schema they reference, verbatim (the Responses API's object, stream events, input item
list and webhook events included).

Usage: python3 tools/extract_openai_schemas.py ../shared/data/openai-openapi-f85dbe2.json.xz
(the spec is github.com/openai/openai-openapi at commit f85dbe2, MIT licence).
"""
import json
import lzma
import pathlib
import sys

ROOTS = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateCompletionResponse",
         "CreateEmbeddingResponse", "ListModelsResponse", "Model", "ErrorResponse",
         "Response", "ResponseStreamEvent", "ResponseItemList", "WebhookResponseCompleted", "WebhookResponseFailed",
         "WebhookResponseCancelled", "WebhookResponseIncomplete"]
PREFIX = "#/components/schemas/"


def main(spec_path):
    opener = lzma.open if spec_path.endswith(".xz") else open
    with opener(spec_path, "rt", encoding="utf-8") as f:
        schemas = json.load(f)["components"]["schemas"]
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(PREFIX):
                    name = value[len(PREFIX):]
                    if name not in seen:
                        seen.add(name)
                        walk(schemas[name])
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for root in ROOTS:
        seen.add(root)
        walk(schemas[root])
    out = {"source": "github.com/openai/openai-openapi f85dbe2 (MIT), components.schemas",
           "schemas": {name: schemas[name] for name in sorted(seen)}}
    target = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "openai-schemas.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{target}: {len(seen)} schemas")


if __name__ == "__main__":
    main(sys.argv[1])
