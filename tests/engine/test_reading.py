"""Reading the model: the code beside each step (read from the files), the colour scale and
the data attributes the pointer-following script uses, and every view exported as SVG and CSV.

The runs are computed in-process by the function the Celery task calls (the real models)."""

import csv
import io
import os
import shutil
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.utils import translation

from engine import lifecycle, source, visuals
from engine.models import AttentionRun
from engine.presenters import Matrix

SVG = "{http://www.w3.org/2000/svg}"
TIRED = "The animal didn't cross the street because it was too tired."
WIDE = "The animal didn't cross the street because it was too wide."


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


# --- the code beside each step ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["minilm", "gpt"])
def test_every_step_has_its_lines_exactly_as_in_the_file(model):
    for key in source.STEPS:
        blocks = source.step_blocks(model, key)
        assert blocks, key
        for block in blocks:
            assert block.path.startswith("engine/transformer/")
            file_lines = (source.REPOSITORY / block.path).read_text(encoding="utf-8").splitlines()
            assert list(block.lines) == file_lines[block.first - 1 : block.last], (key, block)
            assert all("# step:" not in line and "# end step" not in line for line in block.lines)
    # the steps are the ones the step-through shows, and each computes what it says
    assert "torch.softmax" in "".join(source.step_blocks(model, "softmax")[0].lines)
    assert "keys.transpose" in "".join(source.step_blocks(model, "qk")[0].lines)


def test_the_mask_step_is_each_models_own():
    gpt = "".join(line for block in source.step_blocks("gpt", "mask") for line in block.lines)
    encoder = "".join(
        line for block in source.step_blocks("minilm", "mask") for line in block.lines
    )
    assert "triu(diagonal=1)" in gpt and "triu" not in encoder  # causal only for the decoder
    assert any(block.path.endswith("decoder.py") for block in source.step_blocks("gpt", "mask"))
    assert any(block.path.endswith("encoder.py") for block in source.step_blocks("minilm", "mask"))


def test_editing_the_file_changes_the_lines_shown(tmp_path):
    for name in ("attention.py", "encoder.py", "decoder.py"):
        shutil.copy(source.TRANSFORMER / name, tmp_path / name)
    before = source.step_blocks("minilm", "softmax", root=tmp_path)[0]
    path = tmp_path / "attention.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("# each row sums to 1", "# every row sums to one"), encoding="utf-8"
    )
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later edit
    after = source.step_blocks("minilm", "softmax", root=tmp_path)[0]
    assert "every row sums to one" in after.lines[0] and "every row" not in before.lines[0]


def test_a_missing_marker_fails_loudly(tmp_path):
    for name in ("attention.py", "encoder.py", "decoder.py"):
        text = (source.TRANSFORMER / name).read_text(encoding="utf-8")
        if "# step: softmax" in text:  # the block loses both its markers, the code stays
            start = text.index("        # step: softmax\n")
            end = text.index("        # end step\n", start)
            text = text[:start] + text[start + 25 : end] + text[end + 19 :]
            assert "torch.softmax" in text and "# step: softmax" not in text
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(source.SourceMarkerError, match="step: softmax"):
        source.step_blocks("minilm", "softmax", root=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# step: q\nx = 1\n", "never closed"),
        ("x = 1\n# end step\n", "without a step"),
        ("# step: q\n# step: k\n# end step\n", "opened again"),
        ("# step: nonsense\nx\n# end step\n", "unknown step"),
        ("# step: q (bert)\nx\n# end step\n", "unknown step or model"),
        ("# step: q\n# end step\n", "empty"),
    ],
)
def test_bad_markers_are_refused_with_the_line(text, message):
    with pytest.raises(source.SourceMarkerError, match=message) as error:
        source.parse(text, path="f.py")
    assert str(error.value).startswith("f.py:")


# --- the colour scale and the data attributes --------------------------------------------------


def _svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314  the SVG we just drew


def test_a_heatmap_carries_its_colour_scale_with_numbers():
    weights = Matrix(np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32), ["a", "b"])
    scale = _svg(visuals.heatmap_svg(weights, title="t")).find(f".//{SVG}g[@class='colour-scale']")
    ticks = [float(tick.get("data-value")) for tick in scale.iter(f"{SVG}text")]
    assert ticks == pytest.approx([0.0, 0.4, 0.8])
    assert [tick.text for tick in scale.iter(f"{SVG}text")] == ["0", "0.4", "0.8"]
    assert len(scale.findall(f"{SVG}rect")) == visuals.LEGEND_STEPS

    scores = Matrix(
        np.array([[-3.0, 1.0], [2.0, 0.5]], dtype=np.float32), ["a", "b"], diverging=True
    )
    scale = _svg(visuals.heatmap_svg(scores, title="t")).find(f".//{SVG}g[@class='colour-scale']")
    ticks = [float(tick.get("data-value")) for tick in scale.iter(f"{SVG}text")]
    assert ticks == pytest.approx([-3.0, 0.0, 3.0])  # centred at 0
    assert scale.find(f"{SVG}text").text == "−3"
    steps = scale.findall(f"{SVG}rect")
    assert steps[0].get("fill") == visuals.NEGATIVE and steps[-1].get("fill") == visuals.POSITIVE
    assert float(steps[len(steps) // 2].get("fill-opacity")) == 0

    table = _svg(visuals.table_svg(np.array([[0.5, -2.0]]), ["a"], title="Q"))
    ticks = table.findall(f".//{SVG}g[@class='colour-scale']/{SVG}text")
    assert [float(tick.get("data-value")) for tick in ticks] == pytest.approx([-2.0, 0.0, 2.0])


def test_heatmap_rows_and_head_view_lines_say_where_they_are():
    matrix = Matrix(np.array([[1.0, 0.0], [0.3, 0.7]], dtype=np.float32), ["x", "y"])
    heatmap = _svg(visuals.heatmap_svg(matrix, title="t"))
    assert heatmap.get("role") == "group"  # focusable labels inside: not an image
    labels = heatmap.findall(f".//{SVG}text[@class='row-label']")
    assert [label.get("data-row") for label in labels] == ["0", "1"]
    assert all(label.get("tabindex") == "0" and label.get("aria-label") for label in labels)
    assert len(heatmap.findall(f".//{SVG}rect[@data-row='1']")) == 2
    static = _svg(visuals.heatmap_svg(matrix, title="t", interactive=False))
    assert static.get("role") == "img" and "tabindex" not in str(
        visuals.heatmap_svg(matrix, title="t", interactive=False)
    )

    weights = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.0, 1.0], [1.0, 0.0]]], dtype=np.float32)
    view = _svg(visuals.head_view_svg(weights, ["x", "y"], heads=[0, 1]))
    lines = [
        (group.get("data-head"), line.get("data-from"), line.get("data-to"))
        for group in view.iter(f"{SVG}g")
        for line in group.iter(f"{SVG}line")
    ]
    assert lines == [("0", "0", "0"), ("0", "0", "1"), ("0", "1", "0"), ("0", "1", "1"),
                     ("1", "0", "1"), ("1", "1", "0")]  # fmt: skip
    tokens = view.findall(f".//{SVG}text[@class='token']")
    assert {(t.get("data-side"), t.get("data-index")) for t in tokens} == {
        ("from", "0"), ("from", "1"), ("to", "0"), ("to", "1"),
    }  # fmt: skip
    assert all(t.get("tabindex") == "0" and t.get("role") == "button" for t in tokens)


# --- exports of real runs -----------------------------------------------------------------------


def _run(**fields) -> AttentionRun:
    run = AttentionRun.objects.create(input_key=uuid.uuid4().hex, **fields)
    lifecycle.execute_run(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "done", run.error_detail
    return run


@pytest.fixture
def pair_run(db):
    return _run(text=TIRED, compare_text=WIDE)


@pytest.fixture
def gpt_run(db):
    return _run(text="自己注意では、各トークンが", model="gpt", generate=3)


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="attention-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert response.content.startswith("\ufeff".encode())  # so spreadsheets read it as UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _svg_response(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"].endswith('.svg"')
    root = ET.fromstring(response.content)  # noqa: S314  our own export: it must parse as XML
    assert root.tag == f"{SVG}svg" and root.get("font-family")
    assert b"<style" not in response.content and b"<script" not in response.content
    assert b'href="' not in response.content  # nothing outside the file
    return root


def _texts(root) -> str:
    return " ".join(text.text or "" for text in root.iter(f"{SVG}text"))


def test_heatmap_exports_as_csv_and_svg(client, pair_run):
    url = f"/en/demo/runs/{pair_run.id}/export"
    tokens = [token["text"] or token["piece"] for token in pair_run.tokens]
    rows = _csv(client.get(f"{url}.csv?kind=heatmap&layer=2&head=3"))
    assert rows[0] == ["query \\ key", *tokens]
    assert [row[0] for row in rows[1:]] == tokens and len(rows) == len(tokens) + 1
    values = np.array([[float(cell) for cell in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(values.sum(1), 1, atol=5e-3)  # softmax rows

    root = _svg_response(client.get(f"{url}.svg?kind=heatmap&layer=2&head=3"))
    assert "Layer 3, head 4" in root.find(f"{SVG}title").text
    shown = _texts(root)
    assert TIRED in shown and WIDE in shown and "all-MiniLM-L6-v2" in shown
    assert "Layer 3, head 4 · attention weights" in shown
    heatmap = root.find(f".//{SVG}svg[@class='heatmap']")
    assert len(heatmap.findall(f".//{SVG}rect[@class='cell']")) == len(tokens) ** 2
    assert heatmap.find(f".//{SVG}g[@class='colour-scale']") is not None

    scores = _csv(client.get(f"{url}.csv?kind=heatmap&values=scores&layer=2&head=3"))
    assert np.array([[float(c) for c in row[1:]] for row in scores[1:]]).min() < 0
    words = _csv(client.get(f"{url}.csv?kind=heatmap&unit=word&special=hide"))
    assert "[CLS]" not in words[0] and "animal" in words[0] and len(words) == len(words[0])
    assert len(words) < len(rows)  # fewer words than pieces


def test_every_view_kind_exports(client, pair_run):
    url = f"/en/demo/runs/{pair_run.id}/export"
    size = len(pair_run.tokens)
    for query in ("kind=rollout", "kind=compare&which=second", "kind=compare&which=difference"):
        rows = _csv(client.get(f"{url}.csv?{query}"))
        assert len(rows) == len(rows[0]) == size + 1, query
        _svg_response(client.get(f"{url}.svg?{query}"))
    difference = _csv(client.get(f"{url}.csv?kind=compare&which=difference"))
    assert any(float(c) < 0 for row in difference[1:] for c in row[1:])  # signed

    # the head view: one block per head, a blank row between; or the chosen head alone
    blocks = client.get(f"{url}.csv?kind=head&layer=1").content.decode("utf-8-sig").split("\n\n")
    assert len(blocks) == pair_run.heads
    first = list(csv.reader(io.StringIO(blocks[0])))
    assert first[0][0] == "L2 H1" and len(first) == size + 1
    one = _csv(client.get(f"{url}.csv?kind=head&layer=1&head=4&heads=one"))
    assert one[0][0] == "query \\ key" and len(one) == size + 1
    root = _svg_response(client.get(f"{url}.svg?kind=head&layer=1"))
    assert len(root.findall(f".//{SVG}g[@class='head-lines']")) == pair_run.heads
    assert "tabindex" not in ET.tostring(root, encoding="unicode")

    # the step-through: the chosen step's matrix, or Q as T × d
    qk = _csv(client.get(f"{url}.csv?kind=step&step=qk"))
    assert len(qk) == size + 1 and len(qk[0]) == size + 1
    queries = _csv(client.get(f"{url}.csv?kind=step&step=q"))
    assert queries[0][1:3] == ["d0", "d1"] and len(queries[0]) == 33 and len(queries) == size + 1
    _svg_response(client.get(f"{url}.svg?kind=step&step=output"))

    # the model view: a summary row per head, and the grid of thumbnails as one picture
    summary = _csv(client.get(f"{url}.csv?kind=model"))
    assert summary[0][:3] == ["layer", "head", "entropy_bits"]
    assert len(summary) == pair_run.layers * pair_run.heads + 1
    grid = _svg_response(client.get(f"{url}.svg?kind=model"))
    assert len(grid.findall(f".//{SVG}title")) == pair_run.layers * pair_run.heads + 1


def test_bad_parameters_fall_back_like_the_page(client, pair_run):
    url = f"/en/demo/runs/{pair_run.id}/export.csv"
    fallback = client.get(f"{url}?kind=nonsense&layer=99&head=-1&values=x&which=y&step=z")
    assert fallback.content == client.get(f"{url}?kind=heatmap&layer=0&head=0").content
    softmax = client.get(f"{url}?kind=step&step=nonsense")
    assert softmax.content == client.get(f"{url}?kind=step&step=softmax").content


@pytest.mark.django_db
def test_a_run_that_is_not_done_or_does_not_exist_says_so(client):
    queued = AttentionRun.objects.create(text="The cat sat.", input_key="q")
    response = client.get(f"/en/demo/runs/{queued.id}/export.svg")
    assert response.status_code == 409 and "no result to export yet" in response.content.decode()
    with translation.override("ja"):
        japanese = client.get(f"/ja/demo/runs/{queued.id}/export.csv")
    assert japanese.status_code == 409 and "まだ" in japanese.content.decode()
    missing = client.get("/en/demo/runs/00000000-0000-0000-0000-000000000000/export.csv")
    assert missing.status_code == 404 and "does not exist" in missing.content.decode()


def test_japanese_tokens_survive_the_round_trip(client, gpt_run):
    url = f"/ja/demo/runs/{gpt_run.id}/export"
    rows = _csv(client.get(f"{url}.csv?kind=heatmap"))
    tokens = [token["text"] or token["piece"] for token in gpt_run.tokens]
    assert rows[0][1:] == tokens and any("注意" in token or "自己" in token for token in tokens)
    assert "".join(rows[0][1:]).replace("\ufffd", "") == "".join(rows[0][1:])
    values = np.array([[float(c) for c in row[1:]] for row in rows[1:]])
    assert np.all(np.triu(values, k=1) == 0)  # causal: nothing above the diagonal
    root = _svg_response(client.get(f"{url}.svg?kind=heatmap"))
    assert gpt_run.text in _texts(root) and "第 1 層" in root.find(f"{SVG}title").text
    generation = _csv(client.get(f"{url}.csv?kind=generation"))
    new = len(gpt_run.generated)
    assert len(generation) == new + 1 and len(generation[0]) == len(tokens) + new + 1
    assert generation[1][len(tokens) + 1] == ""  # the first new token did not exist yet
    assert generation[-1][len(tokens)] != ""


def test_the_step_through_shows_its_code_and_the_export_buttons(client, gpt_run):
    page = client.get(f"/en/demo/runs/{gpt_run.id}/?kind=step").content.decode()
    for key in source.STEPS:
        for block in source.step_blocks("gpt", key):
            assert f"<code>{block.path}</code>" in page
            assert f'data-line="{block.first}"' in page and f'data-line="{block.last}"' in page
    assert 'href="/en/terms/masked-attention/"' in page and 'href="/en/terms/softmax/"' in page
    assert "upper = torch.ones(length, length" in page
    assert page.count("export.csv?") == len(source.STEPS) and "step=mask" in page
    heatmap = client.get(f"/en/demo/runs/{gpt_run.id}/?kind=heatmap").content.decode()
    assert "/export.svg?kind=heatmap&amp;layer=0" in heatmap and " download>" in heatmap


def test_a_long_sentence_keeps_every_row_label_and_its_keyboard_handle():
    """At the longest sentence the model takes (MAX_PIECES tokens) every row is still labelled
    and focusable; the heatmap grows wider instead of dropping its labels."""
    from engine.limits import MAX_PIECES

    size = MAX_PIECES
    matrix = Matrix(
        np.full((size, size), 1 / size, dtype=np.float32), [f"t{i}" for i in range(size)]
    )
    heatmap = _svg(visuals.heatmap_svg(matrix, title="t"))
    labels = heatmap.findall(f".//{SVG}text[@class='row-label']")
    assert [label.text for label in labels] == [f"t{i}" for i in range(size)]
    assert all(label.get("tabindex") == "0" for label in labels)
    assert float(heatmap.get("width")) >= visuals.LABEL_W + size * visuals.LABELLED_CELL
    assert heatmap.get("role") == "group"


def test_an_exported_caption_is_wide_enough_for_its_sentence():
    from engine.export import _text_width

    japanese, english = (
        "注意機構は文の中の単語どうしの関係を重みで表します。",
        "The cat sat on the mat.",
    )
    assert _text_width(japanese, 12) == pytest.approx(12 * len(japanese))  # all full width
    assert _text_width(english, 12) == pytest.approx(0.62 * 12 * len(english))
    assert _text_width("GPT は", 10) == pytest.approx(0.62 * 10 * 4 + 10)


def test_a_long_japanese_sentence_fits_its_exported_caption():
    """The export's width follows its caption: a sentence of 120 full-width characters needs
    about 1,440 px, where the old estimate (7.5 px a character) gave 900 and cut it off."""
    from engine.export import Block, Export, to_svg

    run = AttentionRun(text="長" * 120, model="gpt")
    matrix = Matrix(np.eye(2, dtype=np.float32), ["a", "b"])
    export = Export(kind="heatmap", subtitle="第 1 層", blocks=[Block("h", matrix=matrix)])
    root = _svg(to_svg(export, run).split("\n", 1)[1])  # after the XML declaration
    assert float(root.get("width")) >= 12 * 120 + 24
