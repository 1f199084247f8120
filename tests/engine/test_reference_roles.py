"""The shipped reference roles (engine/reference/head_roles.json) are what the code and the
real models give today: recomputed here with both live models, so the file cannot drift."""

from engine import reference
from engine.transformer import reference_roles, roles


def test_the_shipped_reference_roles_match_a_fresh_computation():
    shipped = reference.head_roles()
    fresh = reference_roles.build()
    assert shipped["thresholds"] == fresh["thresholds"] == reference_roles.thresholds()
    for name in ("minilm", "gpt"):
        assert shipped["models"][name]["sentences"] == fresh["models"][name]["sentences"]
        assert shipped["models"][name]["roles"] == fresh["models"][name]["roles"], name
        assert shipped["models"][name]["summary"] == fresh["models"][name]["summary"], name
    assert shipped == fresh


def test_the_summary_counts_every_head_and_names_the_most_frequent_role():
    for name, expected_sentences in (("minilm", 30), ("gpt", 20)):
        entry = reference.head_roles()["models"][name]
        assert len(entry["sentences"]) == expected_sentences
        assert len(entry["summary"]) == entry["layers"] * entry["heads"]
        for head in entry["summary"]:
            assert sum(head["counts"].values()) == expected_sentences
            assert head["count"] == max(head["counts"].values())
            assert head["counts"][head["role"]] == head["count"]
            assert set(head["counts"]) <= set(roles.ROLES)
        if name == "gpt":
            assert not {"cls", "sep", "next"} & {h["role"] for h in entry["summary"]}
    summary = reference.head_summary("minilm")
    assert summary["sentences"] == 30 and len(summary["heads"]) == 72
    assert reference.head_summary("no-such-model") is None
