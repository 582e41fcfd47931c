"""The mutator behind scripts/mutate: which edits it makes, and that each is one clean edit."""

from __future__ import annotations

import ast

from .operators import apply, mutants_of
from .run import MODULES, PACKAGE, ROOT

SAMPLE = '''"""Docstring: never mutated."""
from typing import Final

__all__ = ["check", "LIMIT"]
LIMIT: Final = 10  # "café": offsets are bytes, not characters
ALLOWED = frozenset({"a", "b"})


def check(value: int, name: str, flag: bool = False) -> bool:
    if value >= LIMIT and name not in ALLOWED:
        raise ValueError("é")
    assert name is not None
    return not flag
'''


def _edits(source: str) -> set[tuple[str, str]]:
    return {(m.operator, m.describe()) for m in mutants_of(source)}


def test_each_operator_makes_its_edits() -> None:
    edits = _edits(SAMPLE)
    assert edits == {
        ("constant", "LIMIT: Final = 10 -> LIMIT: Final = 11"),
        ("member", 'ALLOWED = frozenset({"a", "b"}) -> ALLOWED = frozenset(({\'b\'}))'),
        ("member", 'ALLOWED = frozenset({"a", "b"}) -> ALLOWED = frozenset(({\'a\'}))'),
        (
            "constant",
            "def check(value: int, name: str, flag: bool = False) -> bool: -> "
            "def check(value: int, name: str, flag: bool = True) -> bool:",
        ),
        ("boolop", "value >= LIMIT and name not in ALLOWED -> (value >= LIMIT or name not in ALLOWED)"),
        (
            "negate",
            "value >= LIMIT and name not in ALLOWED -> (not (value >= LIMIT and name not in ALLOWED))",
        ),
        ("compare", "value >= LIMIT -> (value < LIMIT)"),
        ("compare", "value >= LIMIT -> (value > LIMIT)"),
        ("compare", "name not in ALLOWED -> (name in ALLOWED)"),
        ("raise", 'raise ValueError("é") -> pass'),
        ("compare", "name is not None -> (name is None)"),
        ("return", "return not flag -> return None"),
        ("negate", "return not flag -> return (flag)"),
    }


def test_a_mutant_changes_only_its_own_bytes() -> None:
    for mutant in mutants_of(SAMPLE):
        mutated = apply(SAMPLE, mutant)
        assert mutated != SAMPLE
        head, tail = SAMPLE.encode()[: mutant.start], SAMPLE.encode()[mutant.end :]
        assert mutated.encode().startswith(head)
        assert mutated.encode().endswith(tail)
        assert mutated.count("\n") == SAMPLE.count("\n")  # line numbers of the report stay true


def test_no_two_mutants_are_the_same_program() -> None:
    programs = [ast.dump(ast.parse(apply(SAMPLE, m))) for m in mutants_of(SAMPLE)]
    assert len(programs) == len(set(programs))


def test_the_mutation_map_names_modules_and_test_files_that_exist() -> None:
    assert (ROOT / "scripts" / "mutate").is_file()
    for module, tests in MODULES.items():
        assert (ROOT / PACKAGE / module).is_file(), module
        for test_file in tests:
            assert (ROOT / test_file).is_file(), test_file


def test_a_security_module_yields_its_mutants() -> None:
    source = (ROOT / PACKAGE / "policy" / "decide.py").read_text(encoding="utf-8")
    operators = {m.operator for m in mutants_of(source)}  # each mutant parsed: mutants_of drops the rest
    assert operators == {"compare", "negate", "boolop", "return", "constant", "member"}
