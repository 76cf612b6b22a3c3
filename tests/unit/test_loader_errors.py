"""Every kind of load error names the file, the line, the key, and says how to fix it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.errors import WorkflowError
from console.workflow.loader import MAX_FILE_BYTES, load_workflow

HEAD = '[workflow]\nname = "t"\n\n'


def write(tmp_path: Path, text: str, name: str = "wf.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path | str) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return list(caught.value.problems)


def only(path: Path | str) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


def test_missing_file_is_named(tmp_path: Path) -> None:
    message = only(tmp_path / "nope.toml")
    assert message.startswith(f"{tmp_path / 'nope.toml'}: no such file — check the path")


def test_directory_suggests_a_file_inside(tmp_path: Path) -> None:
    write(tmp_path, HEAD, "dir/inner.toml")
    message = only(tmp_path / "dir")
    assert "is a directory" in message and "inner.toml" in message


def test_unreadable_file_says_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD)
    path.chmod(0)
    if os.geteuid() != 0:
        assert "permission denied" in only(path)
        return
    # root reads anything: drop to nobody in a child that has already imported the loader
    code = (
        "import os, sys\n"
        "from console.workflow.loader import load_workflow\n"
        "from console.errors import WorkflowError\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n    load_workflow(sys.argv[1])\n"
        "except WorkflowError as exc:\n    print(exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True)
    assert f"{path}: permission denied — " in out.stdout


def test_bytes_that_are_not_utf8_give_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "wf.toml"
    path.write_bytes(HEAD.encode() + b'[steps.a]\nrun = "caf\xe9"\n')
    message = only(path)
    offset = len(HEAD) + len('[steps.a]\nrun = "caf')
    assert message.startswith(f"{path}:5:11: byte 0xe9 at offset {offset} is not UTF-8")
    assert "save the file as UTF-8" in message


def test_empty_file(tmp_path: Path) -> None:
    message = only(write(tmp_path, "  \n\n"))
    assert message.endswith("the file is empty — a workflow needs a [workflow] table and at "
                            "least one [steps.NAME] table (`console init` writes a starter)")
    assert ":1:1:" in message


def test_no_steps_table_and_an_empty_one(tmp_path: Path) -> None:
    assert "missing `steps` — add at least one [steps.NAME] table" in only(write(tmp_path, HEAD))
    message = only(write(tmp_path, HEAD + "[steps]\n"))
    assert ":4:1: steps: there are no steps — add a [steps.NAME] table" in message


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a\nrun = "x"\n')
    message = only(path)
    assert message.startswith(f"{path}:4:9: invalid TOML: Expected ']'")


def test_toml_duplicate_key_and_unterminated_value(tmp_path: Path) -> None:
    message = only(write(tmp_path, HEAD + '[steps.a]\nrun = "x"\nrun = "y"\n'))
    assert ":6:" in message and "keep one of the two" in message
    message = only(write(tmp_path, HEAD + "[steps.a]\nrun = "))
    assert "invalid TOML: Invalid value" in message and ":5:" in message


def test_backslash_in_a_basic_string_suggests_a_literal_string(tmp_path: Path) -> None:
    message = only(write(tmp_path, HEAD + '[params]\nv = { type = "string", pattern = "\\d" }\n'))
    assert "literal string" in message


def test_unknown_keys_suggest_the_closest_name(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\nrety = { attempts = 2 }\n'
                 '[steps.b]\ncommand = "y"\n[step.c]\nrun = "z"\n')
    found = problems(path)
    assert f"{path}:6:1: steps.a.rety: unknown key `rety` — did you mean `retry`?" in found
    assert f"{path}:8:1: steps.b.command: unknown key `command` — did you mean `run`?" in found
    assert f"{path}:9:1: step: unknown key `step` — did you mean `steps`?" in found


def test_unknown_key_inside_an_inline_table_points_at_it(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\nretry = { attempts = 2, delai = "1s" }\n')
    assert only(path) == (f"{path}:6:25: steps.a.retry.delai: unknown key `delai` — "
                          "did you mean `delay`?")


def test_unknown_need_suggests_a_step(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.build]\nrun = "x"\n[steps.test]\nrun = "y"\n'
                 'needs = ["biuld"]\n')
    assert only(path) == (f"{path}:8:10: steps.test.needs[0]: no step named `biuld` — "
                          "did you mean `build`?")


def test_cycle_prints_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.alpha]\nrun = "a"\nneeds = ["gamma"]\n'
                 '[steps.beta]\nrun = "b"\nneeds = ["alpha"]\n'
                 '[steps.gamma]\nrun = "c"\nneeds = ["beta"]\n')
    message = only(path)
    assert message.startswith(f"{path}:6:10: steps.alpha.needs[0]: cycle: "
                              "alpha -> gamma -> beta -> alpha")
    assert "remove one of these needs" in message


def test_a_step_needing_itself_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.solo]\nrun = "a"\nneeds = ["solo"]\n')
    assert only(path) == (f"{path}:6:10: steps.solo.needs[0]: `solo` needs itself — "
                          "remove `solo` from its needs")


def test_missing_shared_policy_file_is_named_where_it_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, '[workflow]\nname = "t"\npolicies = ["../policies/prod.toml"]\n'
                 '[steps.a]\nrun = "x"\n', "flows/wf.toml")
    message = only(path)
    assert message.startswith(f"{path}:3:13: workflow.policies[0]: shared policy file ")
    assert "policies/prod.toml: not found" in message
    assert str(tmp_path / "policies" / "prod.toml") in message
    assert "relative to the workflow file" in message


def test_invalid_shared_policy_file_reports_in_its_own_file(tmp_path: Path) -> None:
    policy = write(tmp_path, '[[policy]]\nname = "p"\neffect = "deny"\nlevle = "hard"\n',
                   "policies/prod.toml")
    path = write(tmp_path, '[workflow]\nname = "t"\npolicies = ["../policies/prod.toml"]\n'
                 '[steps.a]\nrun = "x"\n', "flows/wf.toml")
    message = only(path)
    shown = os.path.normpath(os.path.join(os.path.dirname(str(path)), "../policies/prod.toml"))
    assert Path(shown) == policy
    assert message == f"{shown}:4:1: policy[0].levle: unknown key `levle` — did you mean `level`?"


def test_shared_policy_file_with_bad_toml_reports_its_position(tmp_path: Path) -> None:
    write(tmp_path, "[[policy]]\nname = \n", "prod.toml")
    path = write(tmp_path, '[workflow]\nname = "t"\npolicies = ["prod.toml"]\n'
                 '[steps.a]\nrun = "x"\n')
    assert "prod.toml:2:8: invalid TOML" in only(path)


def test_cel_when_that_does_not_compile_shows_a_caret(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n[[policy]]\nname = "p"\n'
                 'effect = "deny"\nwhen = \'params.env == "prod" &&\'\n')
    message = only(path)
    first, source, caret = message.splitlines()
    # the caret column in the file: `when = '` is 8 characters, the error is at 24 in the CEL
    assert first.startswith(f"{path}:9:32: policy[0].when: `when` does not compile: ")
    assert source == '    params.env == "prod" &&'
    assert caret == "    " + " " * 23 + "^"


def test_cel_unknown_variable(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n[[policy]]\nname = "p"\n'
                 'effect = "deny"\nwhen = "parms.env == 1"\n')
    message = only(path)
    assert "unknown variable `parms`" in message and "params" in message


def test_cel_in_a_multiline_string_points_at_the_right_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n[[policy]]\nname = "p"\n'
                 'effect = "deny"\nwhen = """\nparams.env == "prod"\n  && ==\n"""\n')
    assert only(path).startswith(f"{path}:11:6: policy[0].when")


def test_sod_with_a_single_approver_can_never_be_satisfied(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n[[policy]]\nname = "p"\n'
                 'effect = "require_approval"\napprovers = ["alice"]\n'
                 "separation_of_duties = true\n")
    message = only(path)
    assert message.startswith(f"{path}:9:1: policy[0].approvers: can never be satisfied")
    assert "separation_of_duties needs 2 distinct approvers" in message
    assert "list at least 2 users, add a @group, or lower approvals" in message


def test_too_few_users_for_the_approvals_asked(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n'
                 'approval = { approvals = 3, approvers = ["alice", "bob", "alice"] }\n')
    message = only(path)
    assert "steps.a.approval.approvers: can never be satisfied: 3 approvals need 3" in message
    assert "2 users (alice, bob)" in message


def test_groups_and_enough_users_are_satisfiable(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\n'
                 'approval = { approvals = 2, approvers = ["@sre"], separation_of_duties = true }\n'
                 '[[policy]]\nname = "p"\neffect = "require_approval"\napprovals = 2\n'
                 'approvers = ["a", "b", "c"]\nseparation_of_duties = true\n')
    assert len(load_workflow(path).rules) == 1


def test_duplicate_policy_names_within_and_across_files(tmp_path: Path) -> None:
    write(tmp_path, '[[policy]]\nname = "freeze"\neffect = "deny"\n', "shared.toml")
    path = write(tmp_path, '[workflow]\nname = "t"\npolicies = ["shared.toml"]\n'
                 '[steps.a]\nrun = "x"\n'
                 '[[policy]]\nname = "freeze"\neffect = "deny"\n'
                 '[[policy]]\nname = "freeze"\neffect = "allow"\n')
    found = problems(path)
    assert len(found) == 2
    assert all("a second policy named 'freeze' (the first is at " in m for m in found)
    assert f"{tmp_path / 'shared.toml'}:2" in found[0]
    assert "give each policy its own name" in found[0]


def test_nesting_deeper_than_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    message = only(write(tmp_path, HEAD + f"[steps.a]\nrun = {deep}\n"))
    assert ":5:39:" in message and "nest deeper than 32 levels" in message


def test_nesting_through_dotted_keys_is_refused(tmp_path: Path) -> None:
    message = only(write(tmp_path, HEAD + "a" + ".a" * 200 + " = 1\n"))
    assert "keys and tables nest deeper than 32 levels — flatten the structure" in message


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(HEAD.encode() + b"#" * MAX_FILE_BYTES)
    message = only(path)
    assert message.startswith(f"{path}: is 4.0 MiB; the limit is 4 MiB")


def test_wrong_types_say_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = ["x", 5]\nneeds = "b"\ntimeout = "5 min"\n'
                 'if = "alway"\n[steps.b]\nrun = 3\n[steps.c]\n')
    found = problems(path)
    assert (f"{path}:5:13: steps.a.run[1]: expected a string, got an integer — "
            'quote it: "5"') in found
    assert (f'{path}:6:9: steps.a.needs: expected an array, got a string — write it as an '
            'array: needs = ["b"]') in found
    assert any(m.startswith(f"{path}:7:11: steps.a.timeout: '5 min' is not a duration — write")
               for m in found)
    assert f"{path}:8:6: steps.a.if: 'alway' is not allowed here — did you mean 'always'?" in found
    assert any("steps.b.run: expected an array or a string, got an integer" in m for m in found)
    assert any("steps.c: missing `run`" in m for m in found)


def test_bad_names_say_what_a_name_may_contain(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[params]\n"my-param" = { type = "string" }\n'
                 '[steps.Build]\nrun = "x"\n')
    found = problems(path)
    assert any("params.my-param: 'my-param': a param name uses letters" in m for m in found)
    assert any("steps.Build: 'Build': a step id uses lowercase letters" in m for m in found)


def test_templates_are_checked_against_params(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[params]\nversion = { type = "string" }\n'
                 'tag = { type = "string", required = false }\n'
                 '[steps.a]\nrun = ["echo", "{{ params.verison }}", "{{ .Id }}", '
                 '"{{ params.tag }}"]\n[steps.b]\nrun = "echo {{ params.version }}"\n')
    found = problems(path)
    assert any("steps.a.run[1]: unknown param `verison`" in m and "did you mean `version`?" in m
               for m in found)
    assert any("steps.a.run[2]: `{{ .Id }}` is not a template" in m for m in found)
    assert any("steps.a.run[3]: `{{ params.tag }}` may have no value" in m for m in found)
    assert any("steps.b.run: `{{ params.… }}` is not expanded in a string-form run" in m
               and "$PARAM_VERSION" in m for m in found)


def test_secrets_only_resolve_in_env(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "curl -H ${secret:TOKEN}"\n'
                 'env = { A = "${secret:bad-name}" }\n')
    found = problems(path)
    assert any("steps.a.run: a `${secret:…}` reference in run is never resolved" in m
               for m in found)
    assert any("steps.a.env.A: malformed secret reference" in m for m in found)


def test_model_rules_explain_themselves(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[params]\nenv = { type = "choice" }\n[steps.a]\nrun = "x"\n'
                 '[[policy]]\nname = "p"\neffect = "deny"\nlevel = "soft"\n'
                 '[[policy]]\nname = "q"\neffect = "allow"\nduring = { tz = "Mars/Base" }\n')
    found = problems(path)
    assert any("params.env: a choice param needs choices — add `choices" in m for m in found)
    assert any("policy[0]: a soft deny names no one who may override it — add override_by" in m
               for m in found)
    assert any("policy[1].during.tz: 'Mars/Base' is not an IANA time zone" in m for m in found)


def test_at_most_twenty_problems_then_a_count(tmp_path: Path) -> None:
    steps = "".join(f'[steps.s{i}]\nrun = "x"\nneeds = ["nope{i}"]\n' for i in range(25))
    found = problems(write(tmp_path, HEAD + steps))
    assert len(found) == 21
    assert found[-1] == "… and 5 more problems not shown"


def test_problems_come_in_file_order_with_schema_and_graph_mixed(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[steps.a]\nrun = "x"\nneeds = ["zz"]\n'
                 '[steps.b]\nrnu = "y"\n')
    found = problems(path)
    lines = [int(m.split(":")[1]) for m in found]
    assert lines == sorted(lines) and len(found) == 3
