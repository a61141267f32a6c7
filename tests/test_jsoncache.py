"""The caches' key and their JSON: exact, and never more than the allow-list."""

from __future__ import annotations

from pathlib import Path

from funnelctl import jsoncache
from funnelctl.outline import CLASSES, Outline, StageClocks
from funnelctl.workspace import _SETTINGS_CLASSES, Member, Settings


def test_the_key_tells_every_two_inputs_apart():
    key = jsoncache.cache_key
    assert key([b"team", b"rules"]) == key([b"team", b"rules"])
    different = [
        [b"ab", b"c"],
        [b"a", b"bc"],
        [b"abc"],
        [b"abc", b""],
        [b"\xe9t\xe9"],  # not UTF-8 (a latin-1 template): kept byte for byte
        [b"\xe8t\xe9"],
        ["été".encode()],
    ]
    assert len({key(parts) for parts in different}) == len(different)


def test_a_named_tuple_and_a_dataclass_come_back_equal(tmp_path: Path):
    outline = Outline((StageClocks("support", "onboarding", 5, None, 30),), {"hd": "Help Desk"})
    jsoncache.write(tmp_path / "outline.json", "k", outline)
    assert jsoncache.read(tmp_path / "outline.json", "k", CLASSES) == outline
    assert jsoncache.read(tmp_path / "outline.json", "other", CLASSES) is None
    settings = Settings(team=("ana",), members=(Member("ana", capacity=20),))
    jsoncache.write(tmp_path / "settings.json", "k", settings)
    assert jsoncache.read(tmp_path / "settings.json", "k", _SETTINGS_CLASSES) == settings
    # each read builds only the classes it allows: an outline is not settings
    assert jsoncache.read(tmp_path / "outline.json", "k", _SETTINGS_CLASSES) is None
