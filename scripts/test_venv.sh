#!/bin/sh
# test_venv.sh - create or update the git-ignored virtualenv .venv-test with
# the Python tools the end-to-end tests use (tests/requirements.txt, all
# from PyPI), and print its python's path.  Idempotent: packages are
# installed only when the requirements file changed since the last run.
#
# llama-cpp-python compiles llama.cpp from source.  It is built without
# -march=native: some virtual machines (this project's among them) report
# AMX in CPUID and even grant the AMX permission request, yet trap on the
# first tile instruction, so a native build dies with SIGILL in its matrix
# products.  The portable AVX2/AVX-512 build is kept in a wheel cache of
# our own, keyed by those build flags, because pip's cache does not know
# about CMAKE_ARGS and would hand back a native wheel built earlier.
set -eu
cd "$(dirname "$0")/.."
VENV=.venv-test
REQ=tests/requirements.txt
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
    $PIP install --quiet --upgrade pip >&2
fi
if ! cmp -s "$REQ" "$VENV/.installed" 2>/dev/null; then
    # everything but llama-cpp-python first, from the requirements file
    grep -v '^llama-cpp-python' "$REQ" > "$VENV/.req-rest"
    $PIP install --quiet -r "$VENV/.req-rest" >&2
    llama=$(grep '^llama-cpp-python' "$REQ" || true)
    if [ -n "$llama" ]; then
        # "llama-cpp-python[server]==X": the wheel is built without the
        # extras, which are installed with it
        extras=$(printf '%s' "$llama" | sed -n 's/^llama-cpp-python\(\[[^]]*\]\).*/\1/p')
        spec=$(printf '%s' "$llama" | sed 's/\[[^]]*\]//')
        key=$(printf '%s %s' "$spec" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)
        CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lode-wheels
        WHEELS=$CACHE/$key
        mkdir -p "$CACHE"
        # one build at a time (checkouts of this repository share the
        # cache): the others wait for it and use its wheel
        exec 9>"$CACHE/.lock"
        flock 9
        if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
            echo "test_venv: building llama-cpp-python without -march=native (minutes)" >&2
            tmp=$(mktemp -d "$CACHE/build.XXXXXX")
            CMAKE_ARGS="$LLAMA_CMAKE_ARGS" $PIP wheel --quiet --no-deps \
                --no-cache-dir -w "$tmp" "$spec" >&2
            rm -rf "$WHEELS" && mv "$tmp" "$WHEELS"
        fi
        flock -u 9
        wheel=$(ls "$WHEELS"/llama_cpp_python-*.whl | head -n 1)
        # --force-reinstall: replace a native build installed earlier
        $PIP install --quiet --force-reinstall --no-deps "$wheel" >&2
        $PIP install --quiet "$wheel$extras" >&2
    fi
    cp "$REQ" "$VENV/.installed"
fi
echo "$PWD/$VENV/bin/python"
