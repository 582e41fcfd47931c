"""hatch_build.py: when the wheel is compiled, and what happens when compiling fails.

The compile itself is exercised by every scripts/test run (scripts/build-native, then the whole
suite on its output); these tests pin the decisions around it with hatchling's own hook class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hatch_build
import pytest
from hatch_build import MODE_VARIABLE, NativeBuildHook, compile_mode
from hatchling.metadata.core import ProjectMetadata

ROOT = Path(__file__).resolve().parent.parent


class Messages:
    """Stands in for hatchling's Application: records what the hook tells the user."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.info: list[str] = []

    def display_warning(self, message: str = "", **_: Any) -> None:
        self.warnings.append(message)

    def display_info(self, message: str = "", **_: Any) -> None:
        self.info.append(message)


def hook(tmp_path: Path, messages: Messages, target: str = "wheel") -> NativeBuildHook:
    metadata = ProjectMetadata(str(ROOT), None)
    return NativeBuildHook(str(ROOT), {}, None, metadata, str(tmp_path), target, messages)  # type: ignore[arg-type]


def fresh_build_data() -> dict[str, Any]:
    return {"pure_python": True, "infer_tag": False, "force_include": {}}


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "auto"), ("", "auto"), ("AUTO", "auto"), (" 1 ", "1"), ("0", "0")]
)
def test_mode_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str
) -> None:
    if value is None:
        monkeypatch.delenv(MODE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MODE_VARIABLE, value)
    assert compile_mode() == mode


def test_an_unknown_mode_is_an_error_that_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_VARIABLE, "yes")
    with pytest.raises(ValueError, match=r"MCP_BASTION_COMPILE='yes': expected one of auto, 1, 0"):
        compile_mode()


def test_build_requirements_follow_the_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MODE_VARIABLE, "0")
    assert hook(tmp_path, Messages()).dependencies() == []
    monkeypatch.setenv(MODE_VARIABLE, "auto")
    requirements = hook(tmp_path, Messages()).dependencies()
    assert "mypy==2.4.1" in requirements
    # mypyc type-checks against the libraries the gateway imports.
    assert any(r.startswith("joserfc") for r in requirements)
    assert any(r.startswith("httptools") for r in requirements)


def test_the_build_pins_the_mypy_the_project_checks_with() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    pin = next(r for r in hatch_build.BUILD_REQUIREMENTS if r.startswith("mypy=="))
    assert f'"{pin}"' in pyproject


@pytest.mark.parametrize(
    ("version", "target", "mode"),
    [("editable", "wheel", "1"), ("standard", "sdist", "1"), ("standard", "wheel", "0")],
)
def test_no_compile_for_editable_installs_sdists_or_mode_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str, target: str, mode: str
) -> None:
    def must_not_run(root: Path, work: Path) -> list[tuple[Path, str]]:
        raise AssertionError("compiled")

    monkeypatch.setattr(hatch_build, "compile_native", must_not_run)
    monkeypatch.setenv(MODE_VARIABLE, mode)
    data = fresh_build_data()
    hook(tmp_path, Messages(), target).initialize(version, data)
    assert data == fresh_build_data()


@pytest.mark.parametrize(
    "failure", [RuntimeError("no compiler"), SystemExit(1), OSError("gcc " + "-Wflag " * 500)]
)
def test_auto_falls_back_to_a_pure_wheel_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: BaseException
) -> None:
    # SystemExit: mypyc reports type errors by exiting.
    def fail(root: Path, work: Path) -> list[tuple[Path, str]]:
        raise failure

    monkeypatch.setattr(hatch_build, "compile_native", fail)
    monkeypatch.setenv(MODE_VARIABLE, "auto")
    messages = Messages()
    data = fresh_build_data()
    hook(tmp_path, messages).initialize("standard", data)
    assert data == fresh_build_data()
    assert len(messages.warnings) == 1
    assert "building a pure-Python wheel" in messages.warnings[0]
    assert f"{MODE_VARIABLE}=1" in messages.warnings[0]
    assert type(failure).__name__ in messages.warnings[0]
    assert len(messages.warnings[0]) < 600  # a failed compiler command is cut, not pasted whole


def test_mode_1_turns_a_failed_compile_into_a_failed_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(root: Path, work: Path) -> list[tuple[Path, str]]:
        raise SystemExit(1)

    monkeypatch.setattr(hatch_build, "compile_native", fail)
    monkeypatch.setenv(MODE_VARIABLE, "1")
    with pytest.raises(SystemExit):
        hook(tmp_path, Messages()).initialize("standard", fresh_build_data())


def test_a_compiled_wheel_is_platform_specific_and_holds_the_extensions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scratch: list[Path] = []

    def compiled(root: Path, work: Path) -> list[tuple[Path, str]]:
        scratch.append(work)
        assert not work.is_relative_to(tmp_path)  # never inside the output directory
        shared = work / "mcp_bastion__mypyc.so"
        module = work / "app.so"
        shared.write_bytes(b"")
        module.write_bytes(b"")
        return [(shared, "mcp_bastion__mypyc.so"), (module, "mcp_bastion/app.so")]

    monkeypatch.setattr(hatch_build, "compile_native", compiled)
    monkeypatch.setenv(MODE_VARIABLE, "1")
    build = hook(tmp_path, Messages())
    data = fresh_build_data()
    build.initialize("standard", data)
    assert data["pure_python"] is False
    assert data["infer_tag"] is True
    assert data["force_include"] == {
        str(scratch[0] / "mcp_bastion__mypyc.so"): "mcp_bastion__mypyc.so",
        str(scratch[0] / "app.so"): "mcp_bastion/app.so",
    }
    build.finalize("standard", data, str(tmp_path / "x.whl"))
    assert not scratch[0].exists()  # the scratch space goes once the wheel is written
