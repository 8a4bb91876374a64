"""render_update: the user's YAML edited in place, and never a different config than the one validated."""

from __future__ import annotations

import yaml

from aniworldd.services.config_service import render_update


def test_block_list_edited_item_by_item_with_its_comments() -> None:
    text = "a: 1\nl:\n  # the first ones\n  - x   # keep x\n  - y\n# after the list\nb: [1, 2]\n"
    out = render_update(text, {"a": 2, "l": ["x", "z", "w"], "b": [3]})
    assert yaml.safe_load(out) == {"a": 2, "l": ["x", "z", "w"], "b": [3]}
    assert out == "a: 2\nl:\n  # the first ones\n  - x   # keep x\n  - z\n  - w\n# after the list\nb: [3]\n"


def test_unchanged_values_stay_as_written() -> None:
    # (a null is always written `null`: ruamel does not remember `~` or an empty value)
    text = "watch: yes   # YAML 1.1 true\nmode: 0x10\nname: 'quoted'\nempty: null\n"
    doc = yaml.safe_load(text)
    doc["extra"] = 1
    out = render_update(text, doc)
    assert out == text + "extra: 1\n"


def test_what_yaml_12_would_misread_is_never_saved_differently() -> None:
    text = "# mine\nlevel: INFO\n"
    doc = {"level": "yes", "on": "no", "n": None}  # strings PyYAML (YAML 1.1) would read as booleans
    out = render_update(text, doc)
    assert yaml.safe_load(out) == doc


def test_scalar_replaced_by_list_keeps_the_comment_on_its_line() -> None:
    text = "roots: null   # null = <data_dir>/library\nwatch: true\n"
    out = render_update(text, {"roots": ["/srv/anime"], "watch": True})
    assert out.splitlines()[0] == "roots: [/srv/anime] # null = <data_dir>/library"
