"""A bad matrix fails on load, naming the field and the line of the file, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferload.experiments import ExperimentError, load_experiment, parse_experiment

VALID = """\
name: t
model:
  classes: 64
  features: 1024
  seed: 0
servers: [tfserving, torchserve]
protocols: [rest-json, grpc]
load:
  mode: open
  rates: [10, 20]
batch_sizes: [1, 8]
server_configs:
  - name: default
  - name: batched
    torchserve: {batch_size: 8, max_batch_delay_ms: 2}
warmup_s: 1
duration_s: 3
"""


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


# (what is wrong, matrix text, expected "line: field" prefix, words the message must contain)
CASES = [
    ("unknown top-level field", VALID + "duraton_s: 3\n", "18: duraton_s:", "unknown field"),
    ("unknown nested field", edit("{batch_size: 8,", "{batch_sise: 8,"),
     "15: server_configs.1.torchserve.batch_sise:", "unknown field"),
    ("missing field", edit("  seed: 0\n", ""), "2: model.seed:", "missing"),
    ("missing top-level field", edit("duration_s: 3\n", ""), "1: duration_s:", "missing"),
    ("wrong type", edit("duration_s: 3", "duration_s: soon"), "17: duration_s:", "valid number"),
    ("unknown server", edit("[tfserving, torchserve]", "[tfserving, mlserver]"), "6: servers.1:", "triton"),
    ("unknown protocol", edit("[rest-json, grpc]", "[rest-json, http2]"), "7: protocols.1:", "rest-binary"),
    ("open mode without rates", edit("  rates: [10, 20]\n", ""), "8: load:", "needs `rates`"),
    ("closed mode with rates", edit("mode: open", "mode: closed"), "10: load.rates:", "not `rates`"),
    ("rate <= 0", edit("[10, 20]", "[10, 0]"), "10: load.rates.1:", "> 0"),
    ("negative rate", edit("[10, 20]", "[-5]"), "10: load.rates.0:", "> 0"),
    ("empty rates", edit("[10, 20]", "[]"), "10: load.rates:", "empty"),
    ("empty protocols", edit("[rest-json, grpc]", "[]"), "7: protocols:", "empty"),
    ("duplicate batch size", edit("[1, 8]", "[1, 1]"), "11: batch_sizes.1:", "twice"),
    ("duplicate config names", edit("name: batched", "name: default"),
     "14: server_configs.1.name:", "duplicate"),
    ("bad config name", edit("name: batched", "name: batched 8"), "14: server_configs.1.name:", "letters"),
    ("zero duration", edit("duration_s: 3", "duration_s: 0"), "17: duration_s:", "greater than 0"),
    ("workers out of range", edit("{batch_size: 8,", "{workers: 0, batch_size: 8,"),
     "15: server_configs.1.torchserve.workers:", "greater than or equal to 1"),
    ("key given twice", VALID + "warmup_s: 2\n", "18: warmup_s:", "given twice"),
    ("nested key given twice", edit("  seed: 0\n", "  seed: 0\n  seed: 1\n"),
     "6: model.seed:", "given twice"),
    ("unknown tfserving kind", VALID + "tfserving_kind: docker\n", "18: tfserving_kind:", "tfs-compat"),
]


@pytest.mark.parametrize(("problem", "text", "where", "words"), CASES, ids=[case[0] for case in CASES])
def test_bad_matrix_is_rejected_with_field_and_line(problem: str, text: str, where: str, words: str) -> None:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text, source="bad.yaml")
    message = str(caught.value)
    assert f"bad.yaml:{where}" in message, message
    assert words in message, message


def test_the_valid_matrix_loads() -> None:
    experiment = parse_experiment(VALID)
    assert experiment.load.rates == (10.0, 20.0)
    assert [config.name for config in experiment.server_configs] == ["default", "batched"]
    assert experiment.server_configs[1].torchserve.batch_size == 8


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = edit("duration_s: 3", "duration_s: -1") + "colour: blue\n"
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text, source="bad.yaml")
    assert "duration_s" in str(caught.value) and "colour" in str(caught.value)


@pytest.mark.parametrize(("text", "words"), [
    ("name: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "YAML mapping"),
])
def test_text_that_is_not_a_matrix_is_rejected(text: str, words: str) -> None:
    with pytest.raises(ExperimentError, match=words):
        parse_experiment(text, source="bad.yaml")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(edit("warmup_s: 1", "warmup: 1"))
    with pytest.raises(ExperimentError, match=rf"{path}:16: warmup:"):
        load_experiment(path)
