"""The Dockerfile: multi-stage, the final stage non-root with a HEALTHCHECK and OCI labels,
and nothing in it that installs a compiler (hadolint, in `make lint`, checks the rest)."""

from __future__ import annotations

import re

from tests.unit.ops.promql import ROOT


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), stage by stage."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def test_the_final_stage_is_small_and_honest() -> None:
    build, final = stages()
    assert build[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build ") for line in final)
    user = next(line for line in final if line.startswith("USER "))
    assert not user.split()[1].startswith(("0", "root"))
    assert any(line.startswith("HEALTHCHECK ") and "healthcheck.py" in line for line in final)
    labels = " ".join(line for line in final if line.startswith("LABEL "))
    for key in ("title", "description", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels
    for line in (line for stage in stages() for line in stage):
        assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", line), line
