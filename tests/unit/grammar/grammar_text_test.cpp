#include "kiln/grammar/grammar_text.h"

#include <gtest/gtest.h>

#include "kiln/grammar/limits.h"
#include "unit/grammar/grammar_reference.h"

namespace kiln::grammar {
namespace {

Grammar must_parse(std::string_view text) {
  auto g = grammar_from_text(text);
  EXPECT_TRUE(g.is_ok()) << g.status().to_string();
  return g.is_ok() ? std::move(g).value() : Grammar();
}

std::string error_of(std::string_view text) {
  auto g = grammar_from_text(text);
  return g.is_ok() ? "" : g.status().message();
}

void expect_language(const Grammar& g, const std::vector<std::string>& yes, const std::vector<std::string>& no) {
  for (const auto& s : yes) EXPECT_TRUE(reference::accepts(g, s)) << "should accept: " << s << "\n" << g.to_string();
  for (const auto& s : no) EXPECT_FALSE(reference::accepts(g, s)) << "should reject: " << s << "\n" << g.to_string();
}

// No terminal matches the empty string (nullable pieces become optional rules).
void expect_no_empty_terminal(const Grammar& g) {
  for (const Terminal& t : g.terminals) EXPECT_FALSE(reference::full_match(g.regexes, t.regex, "")) << t.name;
}

// In the manner of llama.cpp's grammars/json.gbnf.
constexpr std::string_view kJsonGbnf = R"g(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)g";

TEST(Gbnf, Json) {
  Grammar g = must_parse(kJsonGbnf);
  expect_no_empty_terminal(g);
  expect_language(g, {"{}", "{\"a\": 1}", "{ \"a\":[1, -2.5e3 ,{\"b\":null}]}", "{\"s\":\"x\\u00e9\\n\"}\n  "},
                  {"", "[]", "{", "{\"a\" 1}", "{\"a\":01}", "{\"s\":\"\\q\"}", "{\"a\":1,}", "{\"s\":\"\x01\"}"});
  // Regular rules (strings, numbers, whitespace) are inlined into single terminals.
  for (const Rule& r : g.rules) EXPECT_TRUE(r.name != "string" && r.name != "number" && r.name != "ws") << r.name;
}

TEST(Gbnf, ArithmeticListChessAndIdentifiers) {
  Grammar arith = must_parse(R"g(
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)g");
  expect_language(arith, {"a+b=c\n", "(x1 *2)/y = 3\n1=1\n"}, {"a+b=c", "a+=c\n", "(a=b\n"});

  Grammar list = must_parse(R"g(root ::= item+
# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n")g");
  expect_language(list, {"- a\n", "- one\n- two\n"}, {"", "- \n", "-a\n", "- a"});

  Grammar chess = must_parse(R"g(
root   ::= (
    # it must start with the characters "1. " followed by a sequence
    "1. " move " " move "\n"
    ([1-9] [0-9]? ". " move " " move "\n")+
)
move   ::= (pawn | nonpawn | castle) [+#]?
pawn   ::= ([a-h] "x")? [a-h] [1-8] ("=" [QRBN])?
nonpawn ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
castle ::= "O-O" "-O"?
)g");
  expect_language(chess, {"1. e4 e5\n2. Nf3 Nc6\n", "1. d4 d5\n12. O-O-O exd8=Q+\n"},
                  {"1. e4 e5\n", "1. e9 e5\n2. a3 a4\n", "1. e4\n2. a3 a4\n"});

  Grammar c_ident = must_parse(R"g(root ::= ident ("," ident){2,3}
ident ::= [a-zA-Z_] [a-zA-Z_0-9]*)g");
  expect_language(c_ident, {"a,b,c", "_x,y1,z,w"}, {"a,b", "a,b,c,d,e", "1a,b,c"});
}

TEST(Gbnf, RepetitionOfRules) {
  // Repetition of a rule that is not regular goes through helper rules.
  Grammar g = must_parse(R"g(root ::= p{2,3} | "x" p{0,} | "y" p{1} | "z" p{0,2}
p ::= "(" p* ")")g");
  expect_language(g, {"()()", "()(())()", "x", "x()()()", "y(())", "z", "z()()"},
                  {"()", "()()()()", "y", "y()()", "z()()()"});
  Grammar dot = must_parse(R"g(root ::= . "-" .{2} "." [^a-c]?)g");
  expect_language(dot, {"\xE2\x82\xAC-ab.", "x-\n\n.d"}, {"x-ab.a", "x-a.", "-ab."});
}

TEST(Gbnf, PartsThatMatchEmpty) {
  Grammar ws = must_parse("root ::= ws\nws ::= [ ]*");
  expect_no_empty_terminal(ws);
  expect_language(ws, {"", "   "}, {"x"});
  Grammar mid = must_parse("root ::= \"a\" (\"b\"? | r) \"c\"\nr ::= \"(\" r? \")\"");
  expect_no_empty_terminal(mid);
  expect_language(mid, {"ac", "abc", "a(())c"}, {"abbc", "a(c"});
}

TEST(Gbnf, Errors) {
  EXPECT_EQ(error_of("root ::= foo"), "grammar: line 1 column 10: 'foo' is not defined");
  EXPECT_EQ(error_of("rot ::= \"a\""), "grammar: there is no start rule 'root'");
  EXPECT_EQ(error_of("root ::= \"a\"\nroot ::= \"b\""), "grammar: line 2 column 1: 'root' is defined twice");
  EXPECT_EQ(error_of("root ::= \"a\n\""), "grammar: line 1 column 10: an unterminated string literal");
  EXPECT_EQ(error_of("root ::= [a"), "grammar: line 1 column 10: an unterminated character class");
  EXPECT_EQ(error_of("root ::= (\"a\""), "grammar: line 1 column 10: an unterminated group");
  EXPECT_EQ(error_of("root ::= \"a\"{3,1}"), "grammar: line 1 column 13: a repetition range out of order");
  EXPECT_EQ(error_of("root ::= \"a\"{10001}"), "grammar: line 1 column 14: a repeat count over 10000");
  EXPECT_EQ(error_of("root ::= \"a\"**"),
            "grammar: line 1 column 14: a repetition of a repetition (put the inner one in parentheses)");
  EXPECT_EQ(error_of("root ::= <[1000]>"), "grammar: line 1 column 10: token references (<...>, !<...>) are not supported");
  EXPECT_EQ(error_of("root ::= \"\\q\""), "grammar: line 1 column 11: an unknown escape '\\q'");
  EXPECT_EQ(error_of("root ::= [z-a]"), "grammar: line 1 column 10: a character range out of order");
  EXPECT_EQ(error_of("root ::= []"), "grammar: line 1 column 10: 'root' matches no string");
  EXPECT_EQ(error_of("root = \"a\" ::="), "grammar: line 1 column 6: '::=' expected after 'root'");
  std::string deep = "root ::= " + std::string(limits::kMaxNesting + 1, '(') + "\"a\"" +
                     std::string(limits::kMaxNesting + 1, ')');
  EXPECT_EQ(error_of(deep), "grammar: line 1 column 74: groups nested deeper than 64");
  // Helper rules and symbols are bounded whatever the text asks.
  std::string many = "root ::= p{0,10000}\np ::= \"(\" p \")\" | \"\"\n";
  for (int i = 0; i < 30; ++i) many += "q" + std::to_string(i) + " ::= (p p){0,10000}\n";
  EXPECT_EQ(error_of(many), "grammar: more than 50000 rules");
}

constexpr std::string_view kJsonLark = R"g(
// A JSON grammar as Lark's documentation writes it.
?start: value

?value: object
      | array
      | string
      | SIGNED_NUMBER      -> number
      | "true"             -> true
      | "false"            -> false
      | "null"             -> null

array  : "[" [value ("," value)*] "]"
object : "{" [pair ("," pair)*] "}"
pair   : string ":" value

string : ESCAPED_STRING

%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
)g";

TEST(Lark, JsonWithIgnoredWhitespace) {
  Grammar g = must_parse(kJsonLark);
  expect_no_empty_terminal(g);
  expect_language(g, {"{}", " { \"a\" : [1, -2.5e3 , {\"b\":null} ] } ", "[true,false]", "\"x\\\"y\"", "-1"},
                  {"", "{", "{\"a\" 1}", "[1,]", "\"a\"b\"", "tr ue", "- 1"});
}

TEST(Lark, TerminalsRulesAndOperators) {
  Grammar g = must_parse(R"g(
start: sum
?sum: product | sum ADD_OP product
?product.2: atom (MUL_OP atom)*
atom: NUMBER | NAME | "(" sum ")" | "-" atom -> neg
ADD_OP: "+" | "-"
MUL_OP: /[*\/]/
NAME: /[a-z_]\w*/i
NUMBER: DIGIT+ ("." DIGIT+)?
%import common (DIGIT)
)g");
  expect_language(g, {"1+2*x", "(Ab_1-2.5)/-y", "--3"}, {"1+", "1 + 2", "2.", "1**2"});

  Grammar opt = must_parse("start: \"a\"~2 [\"b\"] \"c\"~1..2 \"x\"i (\"y\" | \"z\")*\n");
  expect_language(opt, {"aacX", "aabccxyzy"}, {"acx", "aabcccx"});

  Grammar ranges = must_parse("start: (\"a\"..\"c\")+ WORD\n%import common.WORD -> WORD\n");
  expect_language(ranges, {"abcXyz", "ab"}, {"a", "abd1", "dX"});
}

TEST(Lark, ContinuationLinesAndComments) {
  Grammar g = must_parse(R"g(start: "a"   // first
     | "b" (
         "c"
         | "d")
     // a comment between alternatives
     | "e"
other: "z"
)g");
  expect_language(g, {"a", "bc", "bd", "e"}, {"z", "b"});
}

TEST(Lark, Errors) {
  EXPECT_EQ(error_of("start: foo\n"), "grammar: line 1 column 8: 'foo' is not defined");
  EXPECT_EQ(error_of("begin: \"a\"\n"), "grammar: there is no start rule 'start'");
  EXPECT_EQ(error_of("start: A\nA: A \"x\"\n"),
            "grammar: line 2 column 1: terminal 'A' refers to itself (terminals must be regular)");
  EXPECT_EQ(error_of("start: A\nA: b\nb: \"x\"\n"), "grammar: line 2 column 4: 'b' is a rule: a terminal can use only terminals");
  EXPECT_EQ(error_of("start: /a(?=b)/\n"),
            "grammar: line 1 column 8: regex: lookahead (?= / (?! is not supported at offset 1");
  EXPECT_EQ(error_of("start: /^a/\n"), "grammar: line 1 column 8: anchors (^, $) in a regex literal");
  EXPECT_EQ(error_of("start: /a/x\n"), "grammar: line 1 column 11: the regex flag 'x' is not supported (i, m, s and u are)");
  EXPECT_EQ(error_of("start: A\n%import common.NOPE -> A\n"),
            "grammar: common.NOPE is not one of the common terminals kiln has");
  EXPECT_EQ(error_of("start: A\n%import other.A\n"), "grammar: line 2 column 1: %import of 'other' (only common.X can be imported)");
  EXPECT_EQ(error_of("start: \"a\"\n%declare X\n"), "grammar: line 2 column 1: %declare is not supported (only %import and %ignore are)");
  EXPECT_EQ(error_of("start{x}: x\n"), "grammar: line 1 column 6: rule templates are not supported");
  EXPECT_EQ(error_of("start: \"ab\"..\"c\"\n"), "grammar: line 1 column 8: a range needs one-character literals");
  EXPECT_EQ(error_of("start: (\"a\"\n"), "grammar: line 1 column 8: ')' expected");
  EXPECT_EQ(error_of("start: \"a\" )\n"), "grammar: line 1 column 12: unexpected ')'");
  EXPECT_EQ(error_of(""), "grammar: no rules");
}

}  // namespace
}  // namespace kiln::grammar
