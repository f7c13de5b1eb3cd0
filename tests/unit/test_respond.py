"""One responder turns every command body's value into the reply's text (commands.respond),
byte for byte as the commands answered when each body formatted its own reply."""

from __future__ import annotations

import json

from rbd_snapsched.commands import Arg, ArgType, Command, Scope, respond


def test_nothing_is_an_empty_reply_as_add_and_remove_answer() -> None:
    """go-ceph demands rc 0 with empty stdout from add and remove."""
    assert respond(None) == ""


def test_a_message_ends_in_exactly_one_newline() -> None:
    assert respond("paused rbd/: 3 scheduled image(s) under it") == (
        "paused rbd/: 3 scheduled image(s) under it\n"
    )
    assert respond("IMAGE  LAST\nrbd/a  -\n") == "IMAGE  LAST\nrbd/a  -\n"  # report's table


def test_lines_each_end_in_a_newline_and_none_is_one_newline() -> None:
    assert respond(["moved rbd/", "moved rbd/a"]) == "moved rbd/\nmoved rbd/a\n"
    assert respond([]) == "\n"


def test_an_object_is_indented_sorted_json_without_a_final_newline() -> None:
    value = {"scheduled_images": [{"schedule_time": "x", "image": "rbd/a"}], "a": 1}
    text = respond(value)
    assert text == json.dumps(value, indent=4, sort_keys=True)
    assert text.startswith('{\n    "a": 1,') and not text.endswith("\n")
    assert respond({}) == "{}"


def test_typed_arguments_arrive_typed_and_absent_ones_are_left_out() -> None:
    command = Command(
        "rbd mirror snapshot schedule explain",
        (
            Arg("level_spec", required=False),
            Arg("count", ArgType.INT, required=False),
            Arg("dry_run", ArgType.BOOL, required=False),
        ),
        "d",
        "r",
        Scope.VISIBLE,
        lambda *a: None,
    )
    assert command.arguments({"prefix": "x", "count": 3, "dry_run": True}) == {
        "count": 3,
        "dry_run": True,
    }
    assert command.arguments({"level_spec": "rbd/", "count": None}) == {"level_spec": "rbd/"}
