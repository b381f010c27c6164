"""The indicator catalogue: its groups, codes and labels, and the rule that no
indicator is a nationality, ethnicity, religion or sex (DESIGN.md section 5)."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from crewreport import catalogue

GROUP_LABELS = [
    "Documents and travel",
    "Control and freedom of movement",
    "Knowledge and story",
    "Demeanour and physical condition",
    "Children",
    "Companion's behaviour",
]
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Words that would make an indicator about who someone is rather than what happens.
FORBIDDEN = [
    "nationality", "national", "citizen", "passport colour", "country", "foreign", "foreigner",
    "african", "asian", "european", "arab", "latin", "chinese", "indian", "nigerian", "vietnamese",
    "albanian", "romanian", "eritrean", "roma", "ethnic", "ethnicity", "race", "racial", "skin",
    "colour", "color", "black", "white", "brown", "religion", "religious", "muslim", "islam",
    "christian", "jewish", "hindu", "sikh", "buddhist", "hijab", "headscarf", "veil", "turban",
    "sex", "gender", "female", "male", "woman", "women", "man", "men", "girl", "boy",
    "language", "accent", "speaks no english", "immigrant", "migrant",
]


def all_indicators() -> list[dict[str, str]]:
    return [i for g in catalogue.GROUPS for i in g["indicators"]]


def test_the_six_groups() -> None:
    assert [g["label"] for g in catalogue.GROUPS] == GROUP_LABELS
    for group in catalogue.GROUPS:
        assert SNAKE.match(group["code"]), group["code"]
        assert len(group["indicators"]) >= 3, group["label"]


def test_codes_unique_and_snake_case() -> None:
    codes = [i["code"] for i in all_indicators()]
    assert len(codes) == len(set(codes))
    assert not set(codes) & {g["code"] for g in catalogue.GROUPS}
    for code in codes:
        assert SNAKE.match(code) and len(code) <= 40, code
    assert catalogue.CODES == frozenset(codes)


def test_labels_are_plain_and_present() -> None:
    for indicator in all_indicators():
        assert set(indicator) <= {"code", "label", "deprecated"}
        assert indicator.get("deprecated", True) is True  # present only to say true
        label = indicator["label"]
        assert label.strip() == label and 10 <= len(label) <= 120, indicator
        assert label[0].isupper() and not label.endswith(".")
        assert catalogue.label(indicator["code"]) == label
    assert catalogue.label("not_a_code") == "not_a_code"


@pytest.mark.parametrize("word", FORBIDDEN)
def test_no_indicator_names_who_someone_is(word: str) -> None:
    pattern = re.compile(rf"(?<![a-z]){re.escape(word)}(?![a-z])")
    for indicator in all_indicators():
        text = f"{indicator['code'].replace('_', ' ')} {indicator['label']}".lower()
        assert not pattern.search(text), (word, indicator)


def test_the_word_list_would_catch_a_bad_entry() -> None:
    """The check above is only worth something if it fires on an obvious case."""
    bad = "Passenger of a particular nationality travelling as a woman"
    assert any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", bad.lower()) for w in FORBIDDEN)


def test_about_says_what_is_not_an_indicator() -> None:
    data = json.loads(resources.files("crewreport").joinpath("catalogue.json").read_text("utf-8"))
    about = data["about"].lower()
    for word in ("nationality", "ethnicity", "religion", "sex"):
        assert word in about
    assert "icao" in about


def test_catalogue_ships_in_the_package() -> None:
    """The wheel must carry catalogue.json, or intake would reject every indicator."""
    setup = (Path(__file__).resolve().parent.parent / "setup.cfg").read_text("utf-8")
    package_data = setup.split("[options.package_data]", 1)[1].split("[", 1)[0]
    assert "*.json" in package_data or "catalogue.json" in package_data
    assert resources.files("crewreport").joinpath("catalogue.json").is_file()

