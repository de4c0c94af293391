#!/usr/bin/env python3
"""Writes kiln's tokenizer parity corpus: tests/fixtures/tokenizers/corpus.jsonl.

Deterministic (seeded, stdlib only): running it again gives the same file byte for byte. Each line
is {"text": ...}. The corpus covers what breaks tokenizers: many scripts, emoji with ZWJ sequences
and skin tones, whitespace runs (including the Unicode spaces the split regexes disagree about),
code, long numbers, text that spells special tokens, lone combining marks, NFC-sensitive text and
a few long documents, plus seeded random strings over mixed character classes.

usage: tools/make_tokenizer_corpus.py [OUT]
"""
import json
import random
import sys
from pathlib import Path

SEED = 20240611

PHRASES = [
    # English, with contractions and casing that the split regexes treat specially
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we've seen what'd happen.",
    "DON'T SHOUT! She's RIGHT, it'S true and IT'LL pass.",
    "Hello, world! How are you doing today?",
    "kiln serves many models from one process.",
    "Mr. O'Neil paid $1,234.56 on 2024-03-15 at 10:45 p.m.",
    # Western European
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la gare ? Il faut qu'on parte à l'heure.",
    "Die Straße ist naß, aber die Größe stimmt überhaupt nicht.",
    "Fußgänger müssen über die Brücke gehen.",
    "¿Dónde está la biblioteca? ¡Qué día tan bonito!",
    "El niño comió piñas y jalapeños en la mañana.",
    "A saudade é uma palavra difícil de traduzir, não é?",
    "Questo è un esempio di testo in italiano, perché no?",
    "Het weer is vandaag erg mooi in Amsterdam.",
    "Jag älskar att läsa böcker på söndagar.",
    "Þetta er íslenska með ð og þ.",
    # Central and Eastern European
    "Zażółć gęślą jaźń, powiedział Łukasz.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép működik.",
    "Şu an İstanbul'da yağmur yağıyor, ılık bir gün.",
    "Românește: știință și țară.",
    # Cyrillic and Greek
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Привет, мир! Как дела? Всё хорошо.",
    "Україна: ґанок, їжак, єнот.",
    "Здравей, свят! Това е български текст.",
    "Γειά σου Κόσμε! Η γλώσσα μου είναι ελληνική.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    # Middle East and Caucasus
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "اللغة العربية جميلة جدا، أليس كذلك؟",
    "שלום עולם! מה שלומך היום?",
    "سلام دنیا! حال شما چطور است؟",
    "Բարեւ աշխարհ, սա հայերեն է։",
    "გამარჯობა მსოფლიო, ეს ქართულია.",
    # South and Southeast Asia
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी में लिखा गया वाक्य।",
    "হ্যালো বিশ্ব! আপনি কেমন আছেন?",
    "வணக்கம் உலகம்! எப்படி இருக்கிறீர்கள்?",
    "నమస్కారం ప్రపంచం",
    "ನಮಸ್ಕಾರ ಜಗತ್ತು",
    "ഹലോ ലോകം, സുഖമാണോ?",
    "ਸਤਿ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨਿਆ",
    "સ્વાગત છે ગુજરાતી",
    "ආයුබෝවන් ලෝකය",
    "สวัสดีชาวโลก วันนี้อากาศดีมาก",
    "ສະບາຍດີ ໂລກ",
    "សួស្តី ពិភពលោក",
    "မင်္ဂလာပါ ကမ္ဘာ",
    "Xin chào thế giới! Tiếng Việt có nhiều dấu.",
    "Halo dunia, apa kabar hari ini?",
    "Kumusta ka, mundo?",
    # East Asia
    "你好，世界！今天天气很好。",
    "我们在北京吃了烤鸭，然后去看了长城。",
    "這是繁體中文的句子，請問你懂嗎？",
    "こんにちは世界！今日はいい天気ですね。",
    "カタカナとひらがなと漢字を混ぜて書きます。",
    "東京タワーはとても高いです。",
    "안녕하세요 세계! 오늘 날씨가 좋네요.",
    "한국어 문장은 띄어쓰기를 사용합니다.",
    "Сайн байна уу, дэлхий",
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",
    "བཀྲ་ཤིས་བདེ་ལེགས།",
    # Africa and elsewhere
    "ሰላም ለዓለም",
    "Habari ya dunia? Ninafurahi kukuona.",
    "Sannu duniya, ya kake?",
    "ⵜⴰⵎⴰⵣⵉⵖⵜ ⴷ ⵜⵓⵜⵍⴰⵢⵜ",
    "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "ᐃᓄᒃᑎᑐᑦ ᑎᑎᕋᐅᓯᖅ",
    # Symbols and mathematics
    "∀x ∈ ℝ: x² ≥ 0, and ∑ᵢ aᵢ ≤ ∞.",
    "E = mc², ∫₀¹ f(x) dx ≈ 0.5, α β γ δ.",
    "© 2024 kiln™ — “quoted” ‘text’ … « guillemets » ‹ › „low“",
    "Prices: €12.50, £9.99, ¥1000, ₹500, ₩3000, ₿0.001",
    "→ ← ↑ ↓ ⇒ ⇔ ✓ ✗ ★ ☆ ♠ ♥ ♦ ♣",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉 𝐁𝐨𝐥𝐝",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"hello\\n\");\n    return 0;\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum=${add(2, 3)}`);\n",
    "{\"name\": \"kiln\", \"version\": [0, 1, 0], \"ok\": true, \"ratio\": 0.75}",
    "<div class=\"box\"><p>Hello &amp; welcome</p><br/></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "if [ -f \"$HOME/.bashrc\" ]; then\n  source ~/.bashrc\nfi\necho $PATH | tr ':' '\\n'",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "    \n\t\t  indented  \n\n\n   more  \t \n",
    "x=1;y=2;z=x+y;print(z)#comment",
    "matrix = [[1, 2, 3],\n          [4, 5, 6]]\n",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}, {2, \"b\"}};",
    "// TODO(kiln): handle the ‘smart quotes’ and emoji 🚀 in comments\n",
    "key: value\nlist:\n  - one\n  - two\n",
    "regex = r\"^\\s*(\\d+)\\.(\\d+)$\"",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root attr='1'/>",
    "async function f() { await Promise.all([a(), b()]); }",
    "    return self.__dict__.get('__name__', None)",
    "a += b; a -= c; a *= d; a /= e; a %= f; a <<= 2; a >>= 3;",
]

SPECIAL_STRINGS = [
    "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>", "<mask>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_5|>", "<|python_tag|>", "<|eom_id|>",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<|vision_start|>", "<|fim_prefix|>", "<|fim_middle|>",
    "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<unused0>", "<unused17>", "[multimodal]",
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜tool▁calls▁begin｜>",
    "<|startoftext|>", "<|return|>", "<|channel|>", "<|message|>", "<|start|>", "<|end|>", "<|call|>",
    "<|constrain|>",
]

SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2002", "\u2003", "\u2009", "\u200a",
          "\u3000", "\u0085", "\u2028", "\u2029", "\u000b", "\u000c", "\u1680", "\u202f", "\u205f",
          "\u200b", "\ufeff", "\u180e"]

COMBINING = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030a", "\u0323", "\u0327", "\u0331",
             "\u0345", "\u05b4", "\u064b", "\u0951", "\u093c", "\u0e48", "\u20d7", "\u3099", "\u309a",
             "\u1ab0", "\ufe20"]

EMOJI = ["😀", "😂", "🥲", "❤️", "👍", "🎉", "🚀", "🔥", "🤖", "🧠", "🐍", "🌍", "☕", "✨", "💯",
         "🙈", "🫠", "🦀", "⭐", "🍕"]
SKIN = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
ZWJ = "\u200d"
ZWJ_SEQUENCES = [
    "👨\u200d👩\u200d👧\u200d👦", "👩\u200d❤️\u200d💋\u200d👨", "🏳️\u200d🌈", "🏴\u200d☠️",
    "👩🏽\u200d💻", "🧑🏿\u200d🚀", "👨🏻\u200d🦰", "🤝🏼", "👋🏾", "🧔🏻\u200d♂️",
    "🇫🇷", "🇯🇵", "🇺🇸🇩🇪", "#️⃣", "1️⃣", "©️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]

NFC_CASES = [
    "e\u0301", "E\u0301\u0323", "a\u0323\u0302", "o\u0302\u0323", "\u212b", "\u2126", "\u00c5",
    "A\u030a", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af", "\uf900\uf901", "\u0958",
    "\u2000", "\u1e9b\u0323", "\u0344", "\u0f73", "\ufb01", "\u2460", "\uff21\uff22", "x\u0308\u0304",
    "\u0041\u0301\u0301\u0301", "\u03d3", "\u1fee", "\u3071\u3099", "\u304b\u3099", "\u30ab\u3099",
    "\u0d4a", "\u0dda", "\u1b3b\u1b35", "ᄀᄀᄀ각ᆨᆨ",
]

RANDOM_CLASSES = [
    ("ascii_lower", 12, [(0x61, 0x7A)]),
    ("ascii_upper", 4, [(0x41, 0x5A)]),
    ("digit", 5, [(0x30, 0x39)]),
    ("ascii_punct", 5, [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)]),
    ("space", 6, None),
    ("latin_ext", 3, [(0xC0, 0x24F)]),
    ("greek_cyrillic", 3, [(0x391, 0x3C9), (0x410, 0x44F)]),
    ("arabic_hebrew", 2, [(0x5D0, 0x5EA), (0x621, 0x64A)]),
    ("indic", 2, [(0x905, 0x939), (0x985, 0x9B9)]),
    ("thai", 1, [(0xE01, 0xE3A)]),
    ("cjk", 4, [(0x4E00, 0x9FA5)]),
    ("kana", 2, [(0x3041, 0x3096), (0x30A1, 0x30FA)]),
    ("hangul", 2, [(0xAC00, 0xD7A3)]),
    ("combining", 2, None),
    ("emoji", 3, None),
    ("symbols", 2, [(0x2190, 0x21FF), (0x2200, 0x22FF), (0x2600, 0x26FF)]),
    ("fullwidth", 1, [(0xFF01, 0xFF5E)]),
    ("special", 1, None),
    ("control", 1, [(0x01, 0x08), (0x0E, 0x1F), (0x7F, 0x9F)]),
]


def pick(rng, ranges):
    lo, hi = rng.choice(ranges)
    return chr(rng.randint(lo, hi))


def random_piece(rng):
    names = [c for c in RANDOM_CLASSES]
    weights = [c[1] for c in RANDOM_CLASSES]
    name, _, ranges = rng.choices(names, weights)[0]
    if name == "space":
        return rng.choice(SPACES) * rng.choice([1, 1, 1, 2, 3, 7])
    if name == "combining":
        return rng.choice(COMBINING)
    if name == "emoji":
        r = rng.random()
        if r < 0.5:
            return rng.choice(EMOJI)
        if r < 0.7:
            return rng.choice(EMOJI) + rng.choice(SKIN)
        return rng.choice(ZWJ_SEQUENCES)
    if name == "special":
        return rng.choice(SPECIAL_STRINGS)
    # letters come in runs so that words form
    return "".join(pick(rng, ranges) for _ in range(rng.choice([1, 1, 2, 3, 5, 8])))


def random_string(rng, max_pieces):
    return "".join(random_piece(rng) for _ in range(rng.randint(1, max_pieces)))


def long_document(rng, target_len):
    parts = []
    size = 0
    while size < target_len:
        r = rng.random()
        if r < 0.55:
            s = rng.choice(PHRASES)
        elif r < 0.7:
            s = rng.choice(CODE)
        elif r < 0.8:
            s = str(rng.randint(0, 10 ** rng.randint(1, 30)))
        elif r < 0.9:
            s = random_string(rng, 12)
        else:
            s = rng.choice(SPECIAL_STRINGS)
        parts.append(s)
        parts.append(rng.choice([" ", " ", " ", "\n", "\n\n", "  ", "\t", ""]))
        size += len(s) + 1
    return "".join(parts)


def corpus():
    rng = random.Random(SEED)
    out = []
    add = out.append

    add("")
    for s in PHRASES:
        add(s)
        add(" " + s)
        add(s + "\n")
        add(s.upper())
        add(s.lower() + "  ")
    for s in CODE:
        add(s)
        add(s.replace("    ", "\t"))
    for i in range(1, 41):
        add(" " * i)
        add("a" + " " * i + "b")
    for ws in SPACES:
        add(ws)
        add("x" + ws + "y")
        add(ws * 3 + "word" + ws * 2)
        add("Hello" + ws + "world" + ws)
        add("1" + ws + "2")
    for seq in ["\n", "\r\n", "\t", "\n\n\n", " \n ", "\t\n\t", "\r", " \r\n\r\n "]:
        add("line one" + seq + "line two" + seq + "  line three")
    # numbers
    for n in range(1, 60):
        add("".join(rng.choice("0123456789") for _ in range(n)))
    for _ in range(60):
        d = rng.randint(1, 40)
        add("".join(rng.choice("0123456789") for _ in range(d)) + rng.choice([".", ",", " ", "e-", "-", "/"]) +
            "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))))
    for s in ["3.14159265358979323846264338327950288419716939937510", "-0.000001", "1e-10", "6.022e23",
              "1,000,000", "1 000 000", "0xDEADBEEF", "0b101010", "+1 (555) 123-4567", "2024-01-31T23:59:59Z",
              "١٢٣٤٥٦٧٨٩٠", "१२३४५६", "１２３４５", "Ⅻ ⅻ ½ ¾ ²³", "v1.2.3-rc.4+build.567", "127.0.0.1:8080",
              "abc123def4567ghi89012", "12abc34", "A1B2C3D4E5"]:
        add(s)
    # special-token spellings: alone, glued, spaced, nested, partial
    for sp in SPECIAL_STRINGS:
        add(sp)
        add("Hello" + sp + "world")
        add(" " + sp + " ")
        add(sp + sp)
        add("x " + sp + "\n" + sp[:-1])
        add(sp[1:] + sp[:3] + "a" + sp + "  " + sp)
    for _ in range(150):
        parts = [rng.choice(SPECIAL_STRINGS + PHRASES[:20] + [" ", "\n", "", "  "]) for _ in range(rng.randint(2, 8))]
        add("".join(parts))
    # emoji
    for e in EMOJI:
        add(e)
        add(e * 3)
        add("I like " + e + " a lot" + e)
        for t in SKIN[:2]:
            add(e + t)
    for z in ZWJ_SEQUENCES:
        add(z)
        add("family: " + z + " end")
        add(z + z + " " + z)
    for _ in range(80):
        add("".join(rng.choice(EMOJI + ZWJ_SEQUENCES + SKIN + [ZWJ, "\ufe0f", " ", "a"])
                    for _ in range(rng.randint(1, 12))))
    # combining marks and normalization-sensitive text
    for c in COMBINING:
        add(c)
        add(c + "abc")
        add(" " + c + c)
        add("x" + c + " y" + c + c + "z")
    for s in NFC_CASES:
        add(s)
        add("word" + s + "word " + s)
        add(s * 3)
    for _ in range(60):
        add("".join(rng.choice("aeouAEOUnc ") + "".join(rng.choice(COMBINING) for _ in range(rng.randint(0, 3)))
                    for _ in range(rng.randint(1, 10))))
    # contractions and their case-insensitive forms
    for s in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'ſ", "'x"]:
        add("it" + s)
        add(s + " ok")
        add("word " + s + "s")
    # mixed phrases
    for _ in range(250):
        k = rng.randint(2, 5)
        add(rng.choice(["", " ", "\n"]).join(rng.choice(PHRASES) for _ in range(k)))
    # random strings over mixed classes
    for _ in range(900):
        add(random_string(rng, rng.choice([3, 8, 20, 40])))
    # long runs: one long word, one long digit run, whitespace, CJK, emoji, SentencePiece-hostile runs
    add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12000)))
    add("".join(rng.choice("0123456789") for _ in range(6000)))
    add(" " * 3000 + "end")
    add("\n" * 500 + "\t" * 500)
    add("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(4000)))
    add("".join(rng.choice(EMOJI + ZWJ_SEQUENCES) for _ in range(800)))
    add("ab" * 4000)
    # long documents
    for target in [8000, 15000, 25000, 40000]:
        add(long_document(rng, target))
    return out


def main():
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizers/corpus.jsonl"
    lines = corpus()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        for s in lines:
            f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    print(f"{out_path}: {len(lines)} strings, {sum(len(s.encode()) for s in lines)} bytes of text")


if __name__ == "__main__":
    main()
