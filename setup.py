"""Build the oxpg._oxpg C extension against libpq.

Everything else (metadata, packages) lives in pyproject.toml.

Environment:
  OXPG_WERROR=1       add -Werror (CI and `make test`)
  OXPG_CFLAGS="..."   extra compiler (and linker) flags, e.g. "-O1 -g -fsanitize=address,undefined"
  OXPG_LDFLAGS="..."  extra linker-only flags
  PG_CONFIG=/path     the pg_config to ask, if not the one on PATH
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.modified import newer_group

ROOT = Path(__file__).resolve().parent
NOT_FOUND = (
    "oxpg: libpq not found: install libpq-dev (Debian/Ubuntu: apt-get install libpq-dev) "
    "or put pg_config on PATH"
)


def run(*cmd: str) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def find_libpq() -> tuple[str, str]:
    """(include dir, lib dir) of libpq; exits with one line when there is none."""
    pg_config = os.environ.get("PG_CONFIG", "pg_config")
    include, lib = run(pg_config, "--includedir"), run(pg_config, "--libdir")
    if not (include and lib):
        cflags, libs = run("pkg-config", "--cflags-only-I", "libpq"), run("pkg-config", "--libs-only-L", "libpq")
        if cflags is not None and libs is not None:
            # pkg-config prints nothing for directories the compiler searches anyway.
            include = next((f[2:] for f in shlex.split(cflags) if f.startswith("-I")), "/usr/include")
            lib = next((f[2:] for f in shlex.split(libs) if f.startswith("-L")), "/usr/lib")
    if not (include and lib and Path(include, "libpq-fe.h").is_file()):
        sys.exit(NOT_FOUND)
    return include, lib


def on_default_search_path(lib: str) -> bool:
    return lib.startswith(("/usr/lib", "/lib"))


def flags_file(flags: list[str], build_temp: str) -> str:
    """A file that changes exactly when the flags change.

    Added to the extension's `depends` at build time, it makes build_ext rebuild after
    e.g. turning OXPG_WERROR on, instead of keeping objects built without it. It lives
    beside the objects it vouches for: `make test-pg18` builds against another libpq in
    its own build_temp, and must not make the default build look stale.
    """
    path = Path(build_temp).resolve() / "oxpg-flags.txt"
    text = "\n".join(flags) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return os.path.relpath(path, ROOT)


class BuildExtIncremental(build_ext):
    """build_ext that recompiles only stale objects, several at a time.

    Stock build_ext recompiles every source, one after another, whenever anything
    changed: too slow for an edit-test loop over a few dozen C files. An object is
    stale when its source, any header or the flags file is newer than it. Objects
    persist in build/temp.* only with `setup.py build_ext --inplace` (what `make build`
    runs); pip builds in a fresh temporary directory and so compiles everything.
    """

    def build_extension(self, ext: Extension) -> None:
        compile_all = self.compiler.compile

        def compile_stale(
            sources: list[str], output_dir: str | None = None, depends: list[str] | None = None, **kwargs: Any
        ) -> list[str]:
            def compile_one(src: str) -> None:
                compile_all([src], output_dir=output_dir, depends=depends, **kwargs)

            objects: list[str] = self.compiler.object_filenames(sources, output_dir=output_dir)
            stale = [src for src, obj in zip(sources, objects) if newer_group([src, *(depends or [])], obj)]
            for obj in objects:  # made up front: concurrent mkdirs could race
                os.makedirs(os.path.dirname(obj) or ".", exist_ok=True)
            # gcc runs in a subprocess, so the threads do compile in parallel.
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                list(pool.map(compile_one, stale))  # list(): re-raises a failed compile
            return objects

        flags = [*ext.extra_compile_args, *ext.extra_link_args, *ext.include_dirs, *ext.library_dirs]
        ext.depends = [*ext.depends, flags_file(flags, self.build_temp)]
        self.compiler.compile = compile_stale
        try:
            super().build_extension(ext)
        finally:
            del self.compiler.compile  # back to the class's method


version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
pq_include, pq_lib = find_libpq()

# Relative paths: setuptools refuses absolute source paths in an editable/sdist build.
sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src" / "_oxpg").rglob("*.c"))
headers = sorted(str(p.relative_to(ROOT)) for d in ("include", "src/_oxpg") for p in (ROOT / d).rglob("*.h"))

compile_args = ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]
if os.environ.get("OXPG_WERROR") == "1":
    compile_args.append("-Werror")
# Extra flags go to the link too: -fsanitize=... is needed in both places.
extra = shlex.split(os.environ.get("OXPG_CFLAGS", ""))
compile_args += extra
link_args = extra + shlex.split(os.environ.get("OXPG_LDFLAGS", ""))

setup(
    cmdclass={"build_ext": BuildExtIncremental},
    ext_modules=[
        Extension(
            "oxpg._oxpg",
            sources=sources,
            depends=headers,
            include_dirs=["include", pq_include],
            library_dirs=[pq_lib],
            # A libpq outside the loader's default path (e.g. /usr/local/pgsql/lib)
            # must still be found when the module is imported.
            runtime_library_dirs=[] if on_default_search_path(pq_lib) else [pq_lib],
            libraries=["pq"],
            define_macros=[("OXPG_VERSION", f'"{version}"')],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ],
)
