"""Wheel build hook: compile the request path with mypyc (the list is in src/mcp_bastion/native.py).

MCP_BASTION_COMPILE chooses:
  auto (default)  compile; if that fails (no C compiler, say), warn and build a pure-Python wheel
  1               compile, and fail the build if that fails (CI and the bench use this)
  0               pure Python: no compiler, no mypy in the build environment

Editable installs are never compiled: a compiled module would shadow the source being edited.
The compiled wheel still carries every .py file, so tracebacks and `inspect` keep working.
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODE_VARIABLE = "MCP_BASTION_COMPILE"
MODES = ("auto", "1", "0")
# mypyc's output depends on its version: pinned, and equal to the `test` extra's mypy.
BUILD_REQUIREMENTS = ["mypy==2.4.1", "setuptools>=70", "types-PyYAML"]


def compile_mode() -> str:
    mode = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


class NativeBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        if compile_mode() == "0":
            return []
        # mypyc type-checks what it compiles, so the imported libraries must be present too.
        return [*BUILD_REQUIREMENTS, *self.metadata.core.dependencies]

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        mode = compile_mode()
        if mode == "0":
            return
        root = Path(self.root).resolve()
        # Scratch space outside the output directory (`python -m build` writes to dist/, which
        # must hold wheels only); kept until the wheel is written, removed in finalize().
        self._scratch = tempfile.TemporaryDirectory(prefix="mcp-bastion-native-")
        try:
            built = compile_native(root, Path(self._scratch.name))
        except (Exception, SystemExit) as exc:  # mypyc reports type errors with sys.exit()
            self._cleanup()
            if mode == "1":
                raise
            # pip shows a build's output only with -v: `mcp-bastion --version` tells afterwards.
            reason = f"{type(exc).__name__}: {exc}"
            reason = reason if len(reason) <= 240 else reason[:240] + " ..."  # compiler commands run long
            self.app.display_warning(
                f"mcp-bastion: compiling the request path failed ({reason}); building a pure-Python "
                f"wheel, which works the same and costs more CPU per call. Set {MODE_VARIABLE}=1 "
                f"to make this an error, or {MODE_VARIABLE}=0 to skip compiling."
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path, wheel_path in built:
            build_data["force_include"][str(path)] = wheel_path
        self.app.display_info(f"mcp-bastion: compiled {len(built) - 1} modules with mypyc")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            scratch.cleanup()
            self._scratch = None


def compile_native(root: Path, work: Path) -> list[tuple[Path, str]]:
    """Compile the modules named in native.COMPILED; return (built file, path in the wheel)."""
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    source = root / "src"
    listed = runpy.run_path(str(source / "mcp_bastion" / "native.py"))["COMPILED"]
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in listed]
    work = work.resolve()
    cwd = os.getcwd()
    os.chdir(source)  # mypyc names modules after their paths relative to the working directory
    try:
        # Types, not the project's strictness: `mypy --strict` runs in scripts/test; here a
        # newer dependency that trips a strict-only check (an unused ignore) must not fail an
        # install. Libraries without stubs are typed as Any, which compiles to generic calls.
        extensions = mypycify(
            ["--ignore-missing-imports", f"--cache-dir={work / 'mypy-cache'}", *paths],
            opt_level="3",
            group_name="mcp_bastion",
            target_dir=str(work / "c"),
        )
        command = build_ext(Distribution({"name": "mcp-bastion", "ext_modules": extensions}))
        command.build_lib = str(work / "lib")
        command.build_temp = str(work / "temp")
        command.parallel = os.cpu_count() or 1
        command.ensure_finalized()
        command.run()
    finally:
        os.chdir(cwd)
    built = [(path, path.relative_to(work / "lib").as_posix()) for path in (work / "lib").rglob("*.so")]
    built += [(path, path.relative_to(work / "lib").as_posix()) for path in (work / "lib").rglob("*.pyd")]
    if len(built) != len(listed) + 1:  # one extension per module, plus the shared library
        raise RuntimeError(f"expected {len(listed) + 1} extension modules, built {len(built)}")
    print(f"mcp-bastion: built {len(built)} extension modules for {sys.implementation.name}", file=sys.stderr)
    return built
