"""The text data of text models (backends/common/textdata.py): the word tokenizer, text
folders and JSONL files with their one-line errors, and the procedural texts."""

import json
from collections import Counter

import numpy as np
import pytest


@pytest.fixture(scope="module")
def textdata(load):
    return load("textdata")


def test_tokenizer_ranks_words_and_pads_at_the_end(textdata):
    """Ids 2.. by frequency (ties alphabetical), 1 for unknown words, 0 after the text."""
    tok = textdata.WordTokenizer.fit(["b a b", "C c c! a"], vocab_size=5)
    assert tok.vocabulary == ["c", "a", "b"]
    assert tok.encode("A c zebra", 5).tolist() == [3, 2, 1, 0, 0]
    assert tok.encode("b b b b b b b", 3).tolist() == [4, 4, 4]
    assert textdata.WordTokenizer.fit(["x y z w"], vocab_size=3).vocabulary == ["w"]


def test_procedural_texts_are_deterministic_balanced_and_carry_their_topic(textdata):
    texts, labels = textdata.synthetic_texts(4, 32, "train", 50)
    again, _ = textdata.synthetic_texts(4, 32, "train", 50)
    val, _ = textdata.synthetic_texts(4, 32, "val", 50)
    assert texts == again and texts != val
    assert Counter(labels) == {0: 50, 1: 50, 2: 50, 3: 50}
    assert all(8 <= len(t.split()) <= 32 for t in texts)
    # each class's topic words are its own most frequent non-filler words
    filler = {textdata.made_up_word(i) for i in range(textdata.FILLER_WORDS)}
    for label in range(4):
        counts = Counter(
            w for t, y in zip(texts, labels, strict=True) if y == label for w in t.split()
        )
        top = [w for w, _ in counts.most_common() if w not in filler][: textdata.TOPIC_WORDS]
        first = textdata.FILLER_WORDS + label * textdata.TOPIC_WORDS
        own = {textdata.made_up_word(first + k) for k in range(textdata.TOPIC_WORDS)}
        assert set(top) == own


def test_folders_and_jsonl_give_the_same_sets(textdata, tmp_path):
    records = {"train": [("pos", "good fine"), ("neg", "bad"), ("pos", "great")]}
    records["val"] = [("neg", "awful bad"), ("pos", "good")]
    folders, jsonl = tmp_path / "folders", tmp_path / "jsonl"
    jsonl.mkdir()
    for split, items in records.items():
        for i, (label, text) in enumerate(items):
            path = folders / split / label / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        lines = [json.dumps({"text": t, "label": y}) for y, t in items]
        (jsonl / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    made = [textdata.text_sets(root, 4, 10, 2, 1) for root in (folders, jsonl)]
    for a, b in zip(made[0][:2], made[1][:2], strict=True):
        assert sorted((tuple(i), y) for i, y in (a[k] for k in range(len(a)))) == sorted(
            (tuple(i), y) for i, y in (b[k] for k in range(len(b)))
        )
    assert made[0][2] == made[1][2] == ["neg", "pos"]
    ids, label = made[1][1][0]
    assert ids.dtype == np.int64 and ids.shape == (4,) and label == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "val.jsonl:1: not JSON"),
        ('{"text": 3, "label": "a"}', 'val.jsonl:1: expected {"text": "...", "label": ...}'),
        ('{"text": "t", "label": [1]}', "val.jsonl:1: the label must be a string or an integer"),
    ],
)
def test_bad_jsonl_lines_are_one_line_errors(textdata, tmp_path, line, message):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 2}\n')
    (tmp_path / "val.jsonl").write_text(line + "\n")
    with pytest.raises(textdata.DataError, match=message.replace("[", r"\[").replace("{", r"\{")):
        textdata.text_sets(tmp_path, 4, 10, 2, 1)


def test_label_count_must_match_the_model(textdata, tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 1}\n')
    (tmp_path / "val.jsonl").write_text('{"text": "a", "label": 1}\n')
    with pytest.raises(textdata.DataError, match="1 labels in train but the model has 2 outputs"):
        textdata.text_sets(tmp_path, 4, 10, 2, 1)
