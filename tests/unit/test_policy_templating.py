"""`{{ params.NAME }}` in argv elements: one element in, one element out."""

from __future__ import annotations

import pytest

from console.errors import ParamError
from console.workflow.templating import malformed_templates, render_argv, template_references


def test_each_element_is_rendered_in_place_and_stays_one_argument() -> None:
    argv = ["make", "VERSION={{ params.version }}", "{{params.count}}/{{  params.flag  }}", "x y"]
    params = {"version": "1.4.2; rm -rf /", "count": 3, "flag": False}
    assert render_argv(argv, params) == ("make", "VERSION=1.4.2; rm -rf /", "3/false", "x y")


def test_unknown_param_names_where_and_what_is_known() -> None:
    with pytest.raises(ParamError) as caught:
        render_argv(["deploy", "{{ params.verison }}"], {"version": "1"}, where="steps.ship.run")
    assert str(caught.value) == (
        "steps.ship.run[1] uses {{ params.verison }} but there is no param 'verison' "
        "(known: version) — declare it under [params] or fix the name"
    )


def test_other_templates_are_errors_not_left_as_text() -> None:
    with pytest.raises(ParamError, match=r"run\[0\] has '\{\{ env.HOME \}\}'"):
        render_argv(["{{ env.HOME }}"], {})


def test_references_for_the_loader() -> None:
    text = "{{ params.a }}-{{params.b}} {{ step.id }} {{ params.a }}"
    assert template_references(text) == ["a", "b", "a"]
    assert malformed_templates(text) == ["{{ step.id }}"]
    assert template_references("no templates") == []
