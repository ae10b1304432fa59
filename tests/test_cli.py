"""`xstilts <verb> --help`: every verb says what it does, gives an example, and describes every flag with
its default (a verb added later without them fails here)."""

from __future__ import annotations

import argparse

import pytest

from xstilts import cli


def verbs() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(verbs()))
def test_every_verb_has_a_description_an_example_and_help_for_every_flag(name):
    parser = verbs()[name]
    text = parser.format_help()
    assert parser.description and len(parser.description) > 10, name
    assert parser.epilog.startswith(f"example:\n  xstilts {name} "), name
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"xstilts {name} {action.option_strings}: no help text"
        shown = not (action.default is None or action.default is False or action.default in ([], {}, ""))
        if shown and not action.required:
            assert f"(default: {action.default})" in " ".join(text.split()), (name, action.option_strings)


def test_verb_help_prints_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["finetune", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Phase (iii): fine-tune" in out and "(default: full)" in out and "example:\n  xstilts finetune" in out


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log(monkeypatch):
    import io

    from xstilts import phases

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    phases._progress("step 1/2")
    phases._progress("step 2/2")
    assert log.getvalue() == "step 1/2\nstep 2/2\n"
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    phases._progress("step 1/2")
    phases._progress("step 2/2")
    phases._log("done")  # a message after a bar starts on its own line
    assert term.getvalue() == "\r\x1b[Kstep 1/2\r\x1b[Kstep 2/2\ndone\n"
