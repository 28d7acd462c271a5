"""Text classification data for models with a `tokens L of V` input: a word-level tokenizer,
text folders and JSONL files, and an embedded procedural dataset (no download).

The tokenizer (WordTokenizer): lower-cased words, a word being a run of letters, digits and
underscores (`\\w+`); id 0 pads, id 1 stands for a word outside the vocabulary, and ids 2 to
V - 1 are the training texts' V - 2 most frequent words (ties in alphabetical order). A text
becomes its first L ids, padded with 0 at the end: padding always follows the real tokens.
"""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from imagefolder import DataError, entries

PAD, UNKNOWN = 0, 1
WORD = re.compile(r"\w+")
LAYOUT = (
    "DIR/train/<label>/*.txt and DIR/val/<label>/*.txt, or DIR/train.jsonl and "
    'DIR/val.jsonl with a {"text": ..., "label": ...} object per line'
)
SPLITS = {"train": 0, "val": 1}
MAX_TEXT_BYTES = 10 * 2**20  # a longer text file is refused, not read


def words(text):
    """The lower-cased words of a text."""
    return WORD.findall(text.lower())


class WordTokenizer:
    """Word ids from a vocabulary of the most frequent training words (see the module doc)."""

    def __init__(self, vocabulary):
        """vocabulary: the words of ids 2, 3, ... in order."""
        self.vocabulary = list(vocabulary)
        self.ids = {w: i + 2 for i, w in enumerate(self.vocabulary)}

    @classmethod
    def fit(cls, texts, vocab_size):
        """The vocab_size - 2 most frequent words of texts, ties broken alphabetically."""
        counts = Counter(w for text in texts for w in words(text))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(ranked[: max(vocab_size - 2, 0)])

    def encode(self, text, length):
        """int64 ids of the text's first `length` words, padded with PAD at the end."""
        ids = [self.ids.get(w, UNKNOWN) for w in words(text)[:length]]
        out = np.full(length, PAD, dtype=np.int64)
        out[: len(ids)] = ids
        return out


class TokenDataset:
    """(int64 ids, label) items of texts encoded once."""

    def __init__(self, texts, labels, tokenizer, length):
        """Encode every text to `length` ids."""
        self.ids = np.stack([tokenizer.encode(t, length) for t in texts])
        self.labels = list(labels)

    def __len__(self):
        """Number of texts."""
        return len(self.labels)

    def __getitem__(self, i):
        """Return (int64 ids, label)."""
        return self.ids[i], self.labels[i]


# ----------------------------------------------------------------------------- procedural

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
TOPIC_WORDS = 6  # words that mark a class
FILLER_WORDS = 200  # words every class uses alike
TOPIC_RATE = 0.2  # share of a text's words from its class's topic words
DECOY_RATE = 0.05  # share from another class's topic words


def made_up_word(index):
    """A pronounceable word, a different one for each index below 70**3 (three syllables)."""
    index = (index * 7919 + 13) % (len(CONSONANTS) * len(VOWELS)) ** 3  # 7919: a prime
    syllables = []
    for _ in range(3):
        index, s = divmod(index, len(CONSONANTS) * len(VOWELS))
        syllables.append(CONSONANTS[s // len(VOWELS)] + VOWELS[s % len(VOWELS)])
    return "".join(syllables)


def synthetic_text(label, num_classes, length, rng):
    """One text of a class: filler words with the class's topic words among them, and a few
    decoys from other classes; 1/4 to all of `length` words long."""
    count = int(rng.integers(max(1, length // 4), length + 1))
    draw = rng.random(count)
    filler = rng.integers(0, FILLER_WORDS, count)
    own = FILLER_WORDS + label * TOPIC_WORDS + rng.integers(0, TOPIC_WORDS, count)
    other = (label + rng.integers(1, max(num_classes, 2), count)) % num_classes
    decoy = FILLER_WORDS + other * TOPIC_WORDS + rng.integers(0, TOPIC_WORDS, count)
    picked = np.where(
        draw < TOPIC_RATE, own, np.where(draw < TOPIC_RATE + DECOY_RATE, decoy, filler)
    )
    return " ".join(made_up_word(int(i)) for i in picked)


def synthetic_texts(num_classes, length, split, per_class, seed=0):
    """(texts, labels): per_class texts of each class; text i a pure function of (seed,
    split, i); labels cycle so every prefix is balanced."""
    texts, labels = [], []
    for i in range(num_classes * per_class):
        rng = np.random.default_rng([seed, SPLITS[split], i])
        texts.append(synthetic_text(i % num_classes, num_classes, length, rng))
        labels.append(i % num_classes)
    return texts, labels


# ----------------------------------------------------------------------------- files


def read_text(path):
    """A text file's contents (UTF-8, undecodable bytes replaced); DataError if unreadable."""
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise DataError(
                f"{path}: over {MAX_TEXT_BYTES // 2**20} MiB; split the text"
            )
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise DataError(
            f"{path}: cannot read the file ({err.strerror or err})"
        ) from None


def folder_texts(split_dir):
    """{label: [texts]} of DIR/<split>/<label>/*.txt."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found; expected {LAYOUT}")
    found = {}
    for label_dir in (p for p in entries(split_dir) if p.is_dir()):
        files = [p for p in entries(label_dir) if p.suffix.lower() == ".txt"]
        if not files:
            raise DataError(
                f"{label_dir}: no .txt files; add texts or remove the folder"
            )
        found[label_dir.name] = [read_text(p) for p in files]
    if not found:
        raise DataError(f"{split_dir}: no label folders; expected {LAYOUT}")
    return found


def jsonl_texts(path):
    """{label: [texts]} of a JSONL file (labels as strings)."""
    found = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not (isinstance(record, dict) and isinstance(record.get("text"), str)):
            raise DataError(
                f'{path}:{number}: expected {{"text": "...", "label": ...}}'
            )
        if not isinstance(record.get("label"), str | int) or isinstance(
            record["label"], bool
        ):
            raise DataError(
                f"{path}:{number}: the label must be a string or an integer"
            )
        found.setdefault(str(record["label"]), []).append(record["text"])
    if not found:
        raise DataError(f"{path}: no records")
    return found


def split_texts(root, split):
    """{label: [texts]} of one split of DIR, as folders or as a JSONL file."""
    jsonl = root / f"{split}.jsonl"
    return jsonl_texts(jsonl) if jsonl.is_file() else folder_texts(root / split)


def labelled_texts(by_label, names):
    """(texts, labels) with labels from the order of names."""
    pairs = [(t, label) for label, name in enumerate(names) for t in by_label[name]]
    return [t for t, _ in pairs], [label for _, label in pairs]


def scan_text(root, num_classes):
    """((train texts, labels), (val texts, labels), label names) of a text data folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; --data expects {LAYOUT}")
    train, val = split_texts(root, "train"), split_texts(root, "val")
    names = sorted(train)
    if len(names) != num_classes:
        raise DataError(
            f"{root}: {len(names)} labels in train but the model has {num_classes} outputs; "
            "make them match the spec's last layer"
        )
    if sorted(val) != names:
        raise DataError(
            f"{root}: the labels of val ({', '.join(sorted(val))}) differ from train's "
            f"({', '.join(names)})"
        )
    return labelled_texts(train, names), labelled_texts(val, names), names


def text_sets(data, length, vocab_size, num_classes, per_class):
    """(train, val, label names): TokenDatasets of --data, or of the procedural texts
    (per_class for training, per_class // 5 for validation, each class), encoded by the
    WordTokenizer fitted on the training texts (a function of them: fit() rebuilds it)."""
    if data is not None:
        train, val, names = scan_text(data, num_classes)
    else:
        train = synthetic_texts(num_classes, length, "train", per_class)
        val = synthetic_texts(num_classes, length, "val", max(1, per_class // 5))
        names = []
    tokenizer = WordTokenizer.fit(train[0], vocab_size)
    return (
        TokenDataset(*train, tokenizer, length),
        TokenDataset(*val, tokenizer, length),
        names,
    )
