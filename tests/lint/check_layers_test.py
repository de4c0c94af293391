#!/usr/bin/env python3
"""scripts/check-layers on small trees: each breach of the layer order is reported, a clean tree passes."""
import pathlib
import subprocess
import sys
import tempfile

CHECK = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check-layers"

CASES = {
    # file -> (contents, expected substring or None for clean)
    "clean": ({"serve/a.cpp": '#include "kiln/runtime/engine.h"\n#include "kiln/core/log.h"\n'}, None),
    "upward": ({"runtime/a.cpp": '#include "kiln/serve/scheduler.h"\n'}, "runtime/ includes kiln/serve/scheduler.h"),
    "backend to models": ({"runtime/backend/cuda/x.cu": '#include "kiln/runtime/models/llama.h"\n'}, "backends hold kernels"),
    "backend to engine": ({"runtime/backend/cpu/x.cpp": '#include "kiln/runtime/cpu_engine.h"\n'}, "backends hold kernels"),
    "backend to backend": ({"runtime/backend/cpu/x.cpp": '#include "kiln/runtime/backend/cuda/gemm.h"\n'}, "one backend"),
    "cuda header": ({"runtime/x.h": "#include <cuda_runtime.h>\n"}, "CUDA header"),
    "json header": ({"serve/x.h": "#include <nlohmann/json.hpp>\n"}, "JSON types stay in http/"),
    "unknown folder": ({"widgets/x.cpp": "\n"}, "not a layer"),
    "private json header": ({"model/x_internal.h": "#include <nlohmann/json.hpp>\n",
                             "model/x.cpp": '#include "kiln/model/x_internal.h"\n'}, None),
    "private header elsewhere": ({"model/x_internal.h": "\n", "text/y.cpp": '#include "kiln/model/x_internal.h"\n'},
                                 "is private to the .cpp files of model/"),
    "private header in a header": ({"model/x_internal.h": "\n", "model/y.h": '#include "kiln/model/x_internal.h"\n'},
                                   "is private to the .cpp files of model/"),
}


def run(files: dict) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            p = pathlib.Path(tmp, "src", "kiln", rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return subprocess.run([sys.executable, str(CHECK), tmp], capture_output=True, text=True)


def main() -> int:
    failed = 0
    for name, (files, expected) in CASES.items():
        r = run(files)
        ok = (r.returncode == 0) if expected is None else (r.returncode == 1 and expected in r.stdout)
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
        if not ok:
            print(r.stdout, r.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
