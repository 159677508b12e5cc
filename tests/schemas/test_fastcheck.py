"""The compiled happy path never accepts what jsonschema refuses (and accepts what it accepts)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from sync_server.handbook import validation
from sync_server.handbook.generate import generate

EXAMPLES = sorted((Path(validation.SCHEMA_DIR) / "examples").glob("*/*.json"))


def slow_valid(name: str, doc: dict) -> bool:
    return next(validation._validator(name).iter_errors(doc), None) is None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_happy_path_agrees_with_jsonschema_on_every_example(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    name = path.parent.name
    fast = validation._happy_path(name)(doc)
    assert fast == slow_valid(name, doc) or (fast is False)  # never True where jsonschema refuses
    if path.name.startswith("valid-"):
        assert fast is True, "a valid example should take the happy path"


MUTATIONS = [None, True, 0, 1.5, -3, "", "x" * 400, [], ["a", "a"], {}, {"a": 1}, "2026-13-01", "2026-11-01T25:00:00+07:00"]


def test_happy_path_is_sound_on_mutated_documents() -> None:
    rng = random.Random(5)
    province = generate("small", seed=5)
    docs = [d for d in province.docs()] + province.articles + province.units
    checked = 0
    for doc in docs[:400]:
        name = doc["type"]
        for _ in range(6):
            mutated = copy.deepcopy(doc)
            key = rng.choice([k for k in mutated if k != "type"] + ["unknown_field"])
            mutated[key] = rng.choice(MUTATIONS)
            if validation._happy_path(name)(mutated):
                assert slow_valid(name, mutated), (name, key, mutated[key])
            checked += 1
    assert checked == 6 * len(docs[:400]) > 600
