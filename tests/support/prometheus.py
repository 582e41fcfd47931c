"""Reading the Prometheus text exposition format (0.0.4) strictly, for assertions on /metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)'
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


def parse_exposition(text: str) -> Exposition:
    """Every line must be a HELP, a TYPE or a sample of a declared family; raises otherwise."""
    out = Exposition()
    assert text.endswith("\n"), "the exposition ends with a line feed"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in out.types, f"family declared twice: {name}"
            out.types[name] = kind
            continue
        match = _SAMPLE.fullmatch(line)
        assert match is not None, f"not a sample line: {line!r}"
        name, labels_text, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in out.types else name
        assert family in out.types, f"sample before its TYPE: {line!r}"
        labels = frozenset(
            (k, re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group(0)], v))
            for k, v in _LABEL.findall(labels_text or "")
        )
        key = (name, labels)
        assert key not in out.samples, f"duplicate series: {line!r}"
        out.samples[key] = float(value)
    return out
