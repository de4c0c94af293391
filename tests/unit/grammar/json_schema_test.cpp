#include "kiln/grammar/json_schema.h"

#include <gtest/gtest.h>

#include <string>

#include "earley_reference.h"
#include "kiln/grammar/json_value.h"

namespace kiln::grammar {
namespace {

using testing::recognize;

Grammar compile_ok(std::string_view schema, JsonSchemaOptions options = {}) {
  Result<Grammar> g = json_schema_grammar(schema, options);
  EXPECT_TRUE(g.is_ok()) << schema << ": " << g.status().to_string();
  if (!g.is_ok()) return Grammar{};
  return std::move(*g);
}

bool accepts(const Grammar& g, std::string_view text) { return recognize(g, text).complete; }

std::string refusal(std::string_view schema) {
  Result<Grammar> g = json_schema_grammar(schema, {});
  EXPECT_FALSE(g.is_ok()) << schema;
  if (g.is_ok()) return "";
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  return g.status().message();
}

TEST(JsonValue, ReadsAndWritesCanonically) {
  auto v = parse_json(R"( {"b": [1, 2.50, true, null], "a": "x\"\u00e9\n\/"} )", 10);
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(canonical_json(*v), "{\"b\":[1,2.50,true,null],\"a\":\"x\\\"\xC3\xA9\\n/\"}");
  EXPECT_FALSE(parse_json("{\"a\":1,\"a\":2}", 10).is_ok());
  EXPECT_FALSE(parse_json("[[[[1]]]]", 3).is_ok());
  EXPECT_FALSE(parse_json("\"\\ud800\"", 3).is_ok());
  EXPECT_FALSE(parse_json("01", 3).is_ok());
  Decimal a, b;
  ASSERT_TRUE(parse_decimal("1.50e1", &a));
  ASSERT_TRUE(parse_decimal("15", &b));
  EXPECT_EQ(compare_decimal(a, b), 0);
  ASSERT_TRUE(parse_decimal("-0.001", &b));
  EXPECT_EQ(compare_decimal(b, a), -1);
}

TEST(JsonSchema, Primitives) {
  Grammar g = compile_ok(R"({"type": ["integer", "null"]})");
  EXPECT_TRUE(accepts(g, "12"));
  EXPECT_TRUE(accepts(g, "-3"));
  EXPECT_TRUE(accepts(g, "null"));
  EXPECT_FALSE(accepts(g, "1.5"));
  EXPECT_FALSE(accepts(g, "012"));
  EXPECT_FALSE(accepts(g, "\"1\""));
  Grammar s = compile_ok(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_TRUE(accepts(s, R"("ab")"));
  EXPECT_TRUE(accepts(s, R"("\u00e9\n")"));    // escapes count as one character
  EXPECT_TRUE(accepts(s, R"("\ud83d\ude00x")"));  // a surrogate pair is one
  EXPECT_FALSE(accepts(s, R"("a")"));
  EXPECT_FALSE(accepts(s, R"("abcd")"));
  EXPECT_FALSE(accepts(s, R"("\ud83d")"));
  Grammar b = compile_ok(R"({"type": "boolean"})");
  EXPECT_TRUE(accepts(b, "false"));
  EXPECT_FALSE(accepts(b, "1"));
}

TEST(JsonSchema, NumberRanges) {
  Grammar g = compile_ok(R"({"type": "integer", "minimum": -15, "exclusiveMaximum": 120})");
  for (int v = -30; v <= 130; ++v) {
    EXPECT_EQ(accepts(g, std::to_string(v)), v >= -15 && v < 120) << v;
  }
  Grammar n = compile_ok(R"({"type": "number", "exclusiveMinimum": 0, "maximum": 1})");
  EXPECT_TRUE(accepts(n, "0.5"));
  EXPECT_TRUE(accepts(n, "1"));
  EXPECT_TRUE(accepts(n, "1.000"));
  EXPECT_TRUE(accepts(n, "0.0001"));
  EXPECT_FALSE(accepts(n, "0"));
  EXPECT_FALSE(accepts(n, "0.000"));
  EXPECT_FALSE(accepts(n, "1.01"));
  EXPECT_FALSE(accepts(n, "-0.5"));
  Grammar m = compile_ok(R"({"type": "integer", "multipleOf": 5, "minimum": 0})");
  EXPECT_TRUE(accepts(m, "0"));
  EXPECT_TRUE(accepts(m, "1235"));
  EXPECT_FALSE(accepts(m, "1236"));
  EXPECT_FALSE(accepts(m, "-5"));
  Grammar cents = compile_ok(R"({"type": "number", "multipleOf": 0.01})");
  EXPECT_TRUE(accepts(cents, "12.34"));
  EXPECT_FALSE(accepts(cents, "12.345"));
  EXPECT_NE(refusal(R"({"type": "number", "minimum": 0.5})").find("minimum"), std::string::npos);
  EXPECT_NE(refusal(R"({"type": "integer", "multipleOf": 7})").find("multipleOf"), std::string::npos);
}

TEST(JsonSchema, PropertiesInDeclaredOrder) {
  const char* schema = R"({"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"},
      "c": {"type": "boolean"}}, "required": ["a"], "additionalProperties": false})";
  Grammar g = compile_ok(schema);
  EXPECT_TRUE(accepts(g, R"({"a":"x"})"));
  EXPECT_TRUE(accepts(g, R"({"b":1,"a":"x"})"));
  EXPECT_TRUE(accepts(g, R"({"b":1,"a":"x","c":true})"));
  EXPECT_TRUE(accepts(g, R"({"a":"x","c":false})"));
  EXPECT_FALSE(accepts(g, R"({"a":"x","b":1})"));  // out of order
  EXPECT_FALSE(accepts(g, R"({"b":1})"));          // required missing
  EXPECT_FALSE(accepts(g, R"({"a":"x","d":1})"));  // not allowed
  EXPECT_FALSE(accepts(g, R"({})"));
  EXPECT_TRUE(recognize(g, R"({"b":1,)").viable);
  EXPECT_FALSE(recognize(g, R"({"b":1,"b)").viable);
}

TEST(JsonSchema, AdditionalPropertiesNeverRepeatDeclaredNames) {
  Grammar g = compile_ok(R"({"type": "object", "properties": {"id": {"type": "integer"}},
      "additionalProperties": {"type": "string"}})");
  EXPECT_TRUE(accepts(g, R"({"id":1,"name":"x"})"));
  EXPECT_TRUE(accepts(g, R"({"name":"x","i":"y","idx":"z"})"));
  EXPECT_FALSE(accepts(g, R"({"id":"x"})"));  // "id" must be an integer, even when skipped in order
  EXPECT_FALSE(accepts(g, R"({"id":1,"id":2})"));
  EXPECT_FALSE(accepts(g, R"({"name":1})"));
  Grammar open = compile_ok(R"({"type": "object"})");
  EXPECT_TRUE(accepts(open, R"({"x":[1,{"y":null}],"z":"\u0041"})"));
  JsonSchemaOptions strict;
  strict.default_additional_properties = false;
  Grammar closed = compile_ok(R"({"type": "object", "properties": {"a": {}}})", strict);
  EXPECT_TRUE(accepts(closed, R"({"a":[]})"));
  EXPECT_FALSE(accepts(closed, R"({"b":1})"));
}

TEST(JsonSchema, Whitespace) {
  const char* schema = R"({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}})";
  Grammar compact = compile_ok(schema);
  EXPECT_TRUE(accepts(compact, R"({"a":[1,2]})"));
  EXPECT_FALSE(accepts(compact, R"({"a": [1, 2]})"));
  JsonSchemaOptions flexible;
  flexible.compact_whitespace = false;
  flexible.max_whitespace = 4;
  Grammar loose = compile_ok(schema, flexible);
  EXPECT_TRUE(accepts(loose, "{ \"a\" : [ 1 ,\n 2 ] }"));
  EXPECT_FALSE(accepts(loose, "{\"a\":      [1]}"));
}

TEST(JsonSchema, ArraysAndTuples) {
  Grammar g = compile_ok(R"({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2})");
  EXPECT_TRUE(accepts(g, R"(["a"])"));
  EXPECT_TRUE(accepts(g, R"(["a","b"])"));
  EXPECT_FALSE(accepts(g, R"([])"));
  EXPECT_FALSE(accepts(g, R"(["a","b","c"])"));
  Grammar t = compile_ok(R"({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "object"}],
      "items": false, "minItems": 1})");
  EXPECT_TRUE(accepts(t, R"([1])"));
  EXPECT_TRUE(accepts(t, R"([1,{}])"));
  EXPECT_FALSE(accepts(t, R"([1,{},2])"));
  EXPECT_FALSE(accepts(t, R"([{}])"));
  EXPECT_FALSE(accepts(t, R"([])"));
}

TEST(JsonSchema, EnumConstAnyOfRefs) {
  Grammar e = compile_ok(R"({"enum": ["a\"b", 1, null, {"k": [true]}]})");
  EXPECT_TRUE(accepts(e, R"("a\"b")"));
  EXPECT_TRUE(accepts(e, R"({"k":[true]})"));
  EXPECT_TRUE(accepts(e, "null"));
  EXPECT_FALSE(accepts(e, "2"));
  Grammar r = compile_ok(R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
      "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["v", "next"],
      "additionalProperties": false}}, "$ref": "#/$defs/node"})");
  EXPECT_TRUE(accepts(r, R"({"v":1,"next":{"v":2,"next":null}})"));
  EXPECT_FALSE(accepts(r, R"({"v":1,"next":{"v":2}})"));
  Grammar one = compile_ok(R"({"oneOf": [{"type": "string"}, {"type": "integer"}]})");
  EXPECT_TRUE(accepts(one, "3"));
  Grammar tagged = compile_ok(R"({"oneOf": [
      {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
      {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]}]})");
  EXPECT_TRUE(accepts(tagged, R"({"kind":"b"})"));
  EXPECT_NE(refusal(R"({"oneOf": [{"type": "number"}, {"type": "integer"}]})").find("'oneOf'"), std::string::npos);
  Grammar exclusive = compile_ok(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
      "oneOf": [{"required": ["a"]}, {"required": ["b"]}]})");
  EXPECT_TRUE(accepts(exclusive, R"({"a":1})"));
  EXPECT_TRUE(accepts(exclusive, R"({"b":1,"c":2})"));
  EXPECT_FALSE(accepts(exclusive, R"({"a":1,"b":2})"));
  EXPECT_FALSE(accepts(exclusive, R"({})"));
}

TEST(JsonSchema, AllOfMerges) {
  Grammar g = compile_ok(R"({"$defs": {"base": {"type": "object", "properties": {"id": {"type": "integer"}},
      "required": ["id"]}}, "allOf": [{"$ref": "#/$defs/base"}, {"properties": {"name": {"type": "string",
      "maxLength": 3}}, "required": ["name"]}]})");
  EXPECT_TRUE(accepts(g, R"({"id":1,"name":"abc"})"));
  EXPECT_TRUE(accepts(g, R"({"id":1,"name":"a","x":1})"));
  EXPECT_FALSE(accepts(g, R"({"id":1})"));
  EXPECT_FALSE(accepts(g, R"({"id":1,"name":"abcd"})"));
  EXPECT_FALSE(accepts(g, R"({"name":"a","id":1})"));
  // additionalProperties beside allOf sees no properties of its own (JSON Schema's rule): the
  // required names are forbidden, so nothing is valid, and kiln says so.
  EXPECT_NE(refusal(R"({"type": "object", "allOf": [{"properties": {"id": {}}, "required": ["id"]}],
      "additionalProperties": false})").find("accepts no value"), std::string::npos);
}

TEST(JsonSchema, RefusesWhatItCannotEnforce) {
  EXPECT_EQ(refusal(R"({"properties": {"a": {"dependentSchemas": {}}}})"),
            "unsupported JSON Schema keyword 'dependentSchemas' at /properties/a");
  EXPECT_EQ(refusal(R"({"not": {"minimum": 3}})"), "unsupported JSON Schema keyword 'not' at the root");
  EXPECT_NE(refusal(R"({"items": {"uniqueItems": true}})").find("'uniqueItems' at /items"), std::string::npos);
  EXPECT_NE(refusal(R"({"$ref": "other.json#/a"})").find("'$ref'"), std::string::npos);
  EXPECT_NE(refusal(R"({"$ref": "#/nowhere"})").find("points nowhere"), std::string::npos);
  EXPECT_NE(refusal(R"({"type": "string", "format": "idn-email"})").find("'format'"), std::string::npos);
  EXPECT_NE(refusal(R"({"type": "strin"})").find("unknown type"), std::string::npos);
  EXPECT_NE(refusal(R"({"type": "object", "required": ["a"], "properties": {"a": false}})").find("accepts no value"),
            std::string::npos);
  EXPECT_FALSE(json_schema_grammar("{", {}).is_ok());
  EXPECT_FALSE(json_schema_grammar(std::string(2'000'000, ' '), {}).is_ok());
  // Annotations and keywords of no JSON Schema vocabulary are not constraints: ignored.
  compile_ok(R"({"type": "string", "description": "d", "x-extension": 1, "examples": ["a"]})");
}

TEST(JsonSchema, NotMinPropertiesAndLengthWithPattern) {
  Grammar g = compile_ok(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"not": {}}},
      "minProperties": 1, "additionalProperties": false})");
  EXPECT_TRUE(accepts(g, R"({"a":1})"));
  EXPECT_FALSE(accepts(g, R"({})"));
  EXPECT_FALSE(accepts(g, R"({"a":1,"b":2})"));
  Grammar t = compile_ok(R"({"not": {"type": ["object", "array", "null"]}})");
  EXPECT_TRUE(accepts(t, R"("x")"));
  EXPECT_FALSE(accepts(t, R"({})"));
  Grammar ne = compile_ok(R"({"type": "string", "not": {"enum": ["ab", "a\""]}})");
  EXPECT_TRUE(accepts(ne, R"("a")"));
  EXPECT_TRUE(accepts(ne, R"("abc")"));
  EXPECT_FALSE(accepts(ne, R"("ab")"));
  EXPECT_FALSE(accepts(ne, R"("a\"")"));
  Grammar p = compile_ok(R"({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3})");
  EXPECT_TRUE(accepts(p, R"("abc")"));
  EXPECT_FALSE(accepts(p, R"("abcd")"));
  EXPECT_FALSE(accepts(p, R"("")"));
  // Two parts of varying length would have to share maxLength: only a subset could be written.
  EXPECT_EQ(refusal(R"({"type": "string", "format": "email", "maxLength": 20})"),
            "unsupported JSON Schema keyword 'maxLength' together with 'format' at the root");
  Grammar d = compile_ok(R"({"type": "string", "format": "date-time"})");
  EXPECT_TRUE(accepts(d, R"("2024-02-29T23:59:59.5+01:00")"));
  EXPECT_FALSE(accepts(d, R"("2023-02-29T23:59:59Z")"));
  Grammar q = compile_ok(R"({"type": "string", "pattern": "a\"b"})");  // the value has a quote
  EXPECT_TRUE(accepts(q, R"("xa\"b")"));
  EXPECT_FALSE(accepts(q, R"("xab")"));
}

TEST(JsonSchema, PatternPropertiesAlone) {
  Grammar g = compile_ok(R"({"type": "object", "patternProperties": {"^x-[a-z]+$": {"type": "integer"}},
      "additionalProperties": false})");
  EXPECT_TRUE(accepts(g, R"({"x-a":1,"x-bc":2})"));
  EXPECT_TRUE(accepts(g, R"({})"));
  EXPECT_FALSE(accepts(g, R"({"y":1})"));
  EXPECT_FALSE(accepts(g, R"({"x-a":"s"})"));
  EXPECT_NE(refusal(R"({"type": "object", "patternProperties": {"^x": {}}})").find("'patternProperties'"), std::string::npos);
}

TEST(JsonSchema, AnyObject) {
  Result<Grammar> g = json_object_grammar({});
  ASSERT_TRUE(g.is_ok());
  EXPECT_TRUE(accepts(*g, R"({"a":{"b":[1,2.5e3,"x",null,true]}})"));
  EXPECT_TRUE(accepts(*g, "{}"));
  EXPECT_FALSE(accepts(*g, "[]"));
  EXPECT_FALSE(accepts(*g, R"({"a":})"));
}

}  // namespace
}  // namespace kiln::grammar
