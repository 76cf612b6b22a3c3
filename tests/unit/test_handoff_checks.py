"""What the loader says about outputs, templates that read them, and matrices."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from console.errors import WorkflowError
from console.workflow.loader import load_workflow
from console.workflow.matrix import combinations


def _problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return str(caught.value)


def test_every_handoff_mistake_is_named_with_a_fix(tmp_path: Path) -> None:
    text = _problems(tmp_path, """
        [workflow]
        name = "handoffs"
        [steps.build]
        run = "true"
        outputs = ["image"]
        [steps.lint]
        run = "true"
        outputs = ["report"]
        [steps.deploy]
        needs = ["build"]
        run = ["deploy", "{{ steps.build.outputs.imag }}", "{{ steps.lint.outputs.report }}",
               "{{ steps.nope.outputs.x }}", "{{ matrix.region }}"]
        env = { A = "{{ steps.build.outputs.image }}", B = "{{ params.ghost }}" }
        [steps.shell]
        needs = ["build"]
        run = "deploy {{ steps.build.outputs.image }}"
        [steps.both]
        run = "true"
        on = ["x"]
        matrix = { region = ["eu"] }
        [steps.empty]
        run = "true"
        matrix = { region = ["eu"], exclude = [{ region = "eu" }] }
        [steps.badvalue]
        run = "true"
        matrix = { region = ["eu west"] }
        """)
    assert "steps.deploy.run[1]: `{{ steps.build.outputs.imag }}`: step `build` declares no " \
           "output `imag` — did you mean `image`?" in text
    assert "steps.deploy.run[2]: `{{ steps.lint.outputs.report }}`: step `lint` is not " \
           'upstream of `deploy`, so its outputs may not exist yet — add "lint" to needs' in text
    assert "steps.deploy.run[3]: `{{ steps.nope.outputs.x }}`: no step named `nope`" in text
    assert "steps.deploy.run[4]: `{{ matrix.region }}`: step `deploy` has no matrix key" in text
    assert "steps.deploy.env.B: unknown param `ghost`" in text
    assert "steps.shell.run: `{{ steps.build.outputs.image }}` is not expanded in a " \
           "string-form run — pass it through env" in text
    assert "steps.both.matrix: a step runs on hosts (`on`) or over a matrix, not both" in text
    assert "steps.empty.matrix: the matrix has no combination left after `exclude`" in text
    assert "steps.badvalue.matrix: Value error, matrix value 'eu west'" in text or \
           "matrix value 'eu west' of `region`" in text


def test_matrix_combinations_product_exclude_include() -> None:
    matrix = {"region": ["eu", "us"], "tier": ["web", "db"],
              "exclude": [{"region": "us", "tier": "db"}], "include": [{"region": "ap",
                                                                        "tier": "web"}]}
    assert combinations(matrix) == [
        {"region": "eu", "tier": "web"}, {"region": "eu", "tier": "db"},
        {"region": "us", "tier": "web"}, {"region": "ap", "tier": "web"},
    ]
    assert combinations({"n": [1, True]}) == [{"n": "1"}, {"n": "true"}]
