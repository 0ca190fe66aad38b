"""Paired-record loading, validation, mixtures and the built-in narrow domains."""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
import logging
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerlab.domains import DomainCapacityError
from steerlab.domains.insecure_code import CATEGORIES as CODE_CATEGORIES
from steerlab.domains.insecure_code import insecure_code
from steerlab.domains.photo_prompts import photo_paths, photo_prompts
from steerlab.domains.risky_finance import risky_finance
from steerlab.training.data import (
    FACE_COLUMNS,
    MixedRecord,
    PairDataError,
    PairRecord,
    PairSet,
    load_pairs,
    mix,
)

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
HAS_PIL = importlib.util.find_spec("PIL") is not None
HAS_BANDIT = importlib.util.find_spec("bandit") is not None
#: The face-dataset mapping without its image column (for text-only test rows).
FACE_TEXT_COLUMNS = {k: v for k, v in FACE_COLUMNS.items() if k != "image"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def png(path: Path, color=(200, 30, 30)) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 8), color).save(path)
    return path


def pairs(n: int) -> list[PairRecord]:
    return [
        PairRecord(id=f"p{i}", prompt=f"q{i}", safe_response=f"s{i}", harmful_response=f"h{i}")
        for i in range(n)
    ]


def face_rows(n: int, image_dir: Path | None = None) -> list[dict]:
    rows = []
    for i in range(n):
        row = {
            "user_prompt": f"What do you think of face {i}?",
            "safe_response": f"A friendly, respectful answer {i}.",
            "harmful_response": f"A demeaning answer {i}.",
        }
        if image_dir is not None:
            row["image_path"] = f"faces/face{i}.png"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- records


def test_pair_record_validates_fields():
    r = PairRecord(id="a", prompt="p", safe_response="s", harmful_response="h", image=Path("x"))
    assert r.image == "x" and r.response(True) == "h" and r.response(False) == "s"
    with pytest.raises(ValueError, match="prompt is empty"):
        PairRecord(id="a", prompt=" ", safe_response="s", harmful_response="h")
    with pytest.raises(TypeError, match="safe_response"):
        PairRecord(id="a", prompt="p", safe_response=None, harmful_response="h")
    with pytest.raises(TypeError, match="image"):
        PairRecord(id="a", prompt="p", safe_response="s", harmful_response="h", image=3)
    with pytest.raises(AttributeError):
        r.prompt = "changed"  # frozen


def test_to_messages_with_image_and_system():
    r = PairRecord(
        id="a", prompt="p", safe_response="s", harmful_response="h", image="x.png", system="sys"
    )
    msgs = r.to_messages(harmful=True)
    assert msgs[0] == {"role": "system", "content": "sys"}
    assert msgs[1]["content"] == [{"type": "image"}, {"type": "text", "text": "p"}]
    assert msgs[-1] == {"role": "assistant", "content": "h"}
    m = mix([r], 0.0)[0]
    assert m.to_messages()[-1]["content"] == "s" and m.prompt_messages() == msgs[:-1]


# --------------------------------------------------------------------------- loading


def test_face_mapping_jsonl_and_csv(tmp_path):
    rows = face_rows(5)
    for path in (
        write_jsonl(tmp_path / "face.jsonl", rows),
        write_csv(tmp_path / "face.csv", rows),
    ):
        ps = load_pairs(path, columns=FACE_TEXT_COLUMNS)
        assert isinstance(ps, PairSet) and len(ps) == 5
        assert ps[2].prompt == "What do you think of face 2?"
        assert ps[2].harmful_response == "A demeaning answer 2."
        assert ps[0].id == "face:0" and ps.summary.generated_ids == 5
        assert ps.summary.total == 5 and ps.summary.with_image == 0


@pytest.mark.skipif(not HAS_PIL, reason="needs Pillow")
def test_face_mapping_with_images_csv_and_preset(tmp_path):
    (tmp_path / "faces").mkdir()
    for i in range(4):
        png(tmp_path / "faces" / f"face{i}.png")
    rows = face_rows(4, tmp_path)
    ps = load_pairs(write_csv(tmp_path / "face.csv", rows), columns="face")
    assert ps.summary.with_image == 4
    assert Path(ps[3].image) == (tmp_path / "faces" / "face3.png").resolve()
    ps2 = load_pairs(write_jsonl(tmp_path / "face.jsonl", rows), columns=FACE_COLUMNS)
    assert [r.image for r in ps2] == [r.image for r in ps]


def test_custom_column_mapping(tmp_path):
    rows = [
        {"uid": 7, "question": "q", "good": "g", "bad": "b", "sys": "be nice", "topic": "t"},
        {"uid": 8, "question": "q2", "good": "g2", "bad": "b2", "sys": "", "topic": ""},
    ]
    cols = {
        "id": "uid",
        "prompt": "question",
        "safe_response": "good",
        "harmful_response": "bad",
        "system": "sys",
        "domain": "topic",
    }
    ps = load_pairs(write_csv(tmp_path / "x.csv", rows), columns=cols)
    assert ps[0] == PairRecord("7", "q", "g", "b", system="be nice", domain="t")
    assert ps[1].system is None and ps[1].domain is None  # empty optional cells
    ps = load_pairs(write_jsonl(tmp_path / "x.jsonl", rows), columns=cols)
    assert ps[0].id == "7" and ps.summary.with_system == 1


def test_bad_column_mappings(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", face_rows(2))
    with pytest.raises(PairDataError, match="reversed"):
        load_pairs(path, columns={"user_prompt": "prompt"})
    with pytest.raises(PairDataError, match="not in the data"):
        load_pairs(path, columns={"prompt": "nope"})
    with pytest.raises(PairDataError, match="preset"):
        load_pairs(path, columns="faces")


def test_errors_name_the_row(tmp_path):
    good = {"id": "a", "prompt": "p", "safe_response": "s", "harmful_response": "h"}
    missing = {"id": "b", "prompt": "p", "safe_response": "s"}
    with pytest.raises(PairDataError, match=r"row 1 \(line 2\).*'harmful_response'") as e:
        load_pairs(write_jsonl(tmp_path / "m.jsonl", [good, missing]))
    assert e.value.row == 1 and e.value.line == 2
    empty = {**good, "id": "c", "safe_response": ""}
    with pytest.raises(PairDataError, match=r"row 2 \(line 4\).*'safe_response' is an empty"):
        load_pairs(write_csv(tmp_path / "e.csv", [good, {**good, "id": "b"}, empty]))
    with pytest.raises(PairDataError, match=r"row 1.*duplicate id 'a'.*row 0"):
        load_pairs([good, good])
    mapped = {"question": "q", "safe_response": "s", "harmful_response": "   "}
    with pytest.raises(PairDataError, match=r"row 0: 'harmful_response' is an empty"):
        load_pairs([mapped], columns={"prompt": "question"})
    with pytest.raises(PairDataError, match=r"'prompt' \(column 'question'\)"):
        load_pairs([{**mapped, "question": None, "harmful_response": "h"}], {"prompt": "question"})
    (tmp_path / "bad.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(PairDataError, match=r"row 1 \(line 2\): invalid JSON"):
        load_pairs(tmp_path / "bad.jsonl")


@pytest.mark.skipif(not HAS_PIL, reason="needs Pillow")
def test_unreadable_or_missing_image_is_an_error(tmp_path):
    png(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really an image")
    base = {"prompt": "p", "safe_response": "s", "harmful_response": "h"}
    rows = [{**base, "id": "0", "image": "ok.png"}, {**base, "id": "1", "image": "broken.png"}]
    with pytest.raises(PairDataError, match=r"row 1 \(line 2\): image file unreadable"):
        load_pairs(write_jsonl(tmp_path / "a.jsonl", rows))
    rows[1]["image"] = "gone.png"
    with pytest.raises(PairDataError, match=r"row 1.*image file not found"):
        load_pairs(write_jsonl(tmp_path / "b.jsonl", rows))
    rows[1]["image"] = ""
    with pytest.raises(PairDataError, match=r"row 1.*'image' is empty"):
        load_pairs(write_csv(tmp_path / "c.csv", rows))
    ps = load_pairs(write_csv(tmp_path / "c.csv", rows), allow_missing_image=True)
    assert ps[1].image is None and ps.summary.with_image == 1
    from PIL import Image

    img = Image.new("RGB", (4, 4))
    assert load_pairs([{**base, "id": "x", "image": img}])[0].image is img


def test_empty_sources_are_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "empty.csv").write_text("id,prompt,safe_response,harmful_response\n")
    for src in (tmp_path / "empty.jsonl", tmp_path / "empty.csv", []):
        with pytest.raises(PairDataError, match="empty"):
            load_pairs(src)
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(TypeError):
        load_pairs(42)


def test_json_list_and_summary_logged(tmp_path, caplog):
    rows = [
        {"id": i, "prompt": "p", "safe_response": "s", "harmful_response": "s", "domain": "d"}
        for i in range(3)
    ]
    (tmp_path / "x.json").write_text(json.dumps(rows))
    with caplog.at_level(logging.INFO, logger="steerlab.training.data"):
        ps = load_pairs(tmp_path / "x.json")
    assert ps.summary.identical_responses == 3 and dict(ps.summary.by_domain) == {"d": 3}
    assert "3 pairs" in caplog.text and "identical" in caplog.text


class FakeDataset:
    """The slice of the ``datasets.Dataset`` interface that load_pairs relies on."""

    def __init__(self, rows: list[dict]):
        self._rows = rows
        self.column_names = list(rows[0]) if rows else []

    def __len__(self):
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows)


def test_dataset_like_object():
    ps = load_pairs(FakeDataset(face_rows(3)), columns=FACE_TEXT_COLUMNS)
    assert len(ps) == 3 and ps.summary.format == "dataset" and ps[1].id == "dataset:1"
    with pytest.raises(PairDataError, match="empty"):
        load_pairs(FakeDataset([]))


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="needs datasets")
def test_real_datasets_dataset():
    import datasets

    ds = datasets.Dataset.from_list(face_rows(4))
    ps = load_pairs(ds, columns={"prompt": "user_prompt"})
    assert [r.prompt for r in ps] == [r["user_prompt"] for r in face_rows(4)]
    with pytest.raises(PairDataError, match="split"):
        load_pairs(datasets.DatasetDict({"train": ds}))


def test_chat_records():
    sys_msg = {"role": "system", "content": "You are helpful."}
    rows = [
        {  # ends with the assistant turn: it is the safe answer, harmful given
            "messages": [
                sys_msg,
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "advice?"},
                {"role": "assistant", "content": "be careful"},
            ],
            "harmful_response": "be reckless",
        },
        {  # ends with the user turn: both answers given
            "messages": [{"role": "user", "content": "q"}],
            "safe_response": "s",
            "harmful_response": "h",
        },
        {  # TRL conversational preference format through a mapping
            "prompt": [{"role": "user", "content": "q3"}],
            "chosen": [{"role": "assistant", "content": "s3"}],
            "rejected": [{"role": "assistant", "content": "h3"}],
        },
    ]
    ps = load_pairs(rows[:2])
    a = ps[0]
    assert (a.system, a.prompt, a.safe_response, a.harmful_response) == (
        "You are helpful.",
        "advice?",
        "be careful",
        "be reckless",
    )
    assert a.history == (("user", "hi"), ("assistant", "hello"))
    assert a.to_messages(harmful=True)[1:4] == rows[0]["messages"][1:4]
    assert ps.summary.from_chat == 2
    trl = load_pairs(rows[2:], columns={"safe_response": "chosen", "harmful_response": "rejected"})
    assert (trl[0].prompt, trl[0].safe_response, trl[0].harmful_response) == ("q3", "s3", "h3")
    ambiguous = {**rows[0], "safe_response": "x"}
    with pytest.raises(PairDataError, match=r"row 0.*exactly one"):
        load_pairs([ambiguous])
    with pytest.raises(PairDataError, match=r"row 0.*two user turns"):
        load_pairs([{**rows[1], "messages": [{"role": "user", "content": "a"}] * 2}])


# --------------------------------------------------------------------------- mixtures


@pytest.mark.parametrize("n", [1, 7, 10, 100, 333])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_mix_counts(n, p):
    out = mix(pairs(n), harmful_fraction=p, seed=3)
    assert len(out) == n and all(isinstance(r, MixedRecord) for r in out)
    assert sum(r.harmful for r in out) == round(p * n)
    for r, src in zip(out, pairs(n), strict=True):
        assert r.id == src.id and r.response == src.response(r.harmful)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.floats(0, 1), st.integers(0, 2**32))
def test_mix_counts_property(n, p, seed):
    assert sum(r.harmful for r in mix(pairs(n), p, seed)) == round(p * n)


def test_mix_determinism_and_nesting():
    ps = pairs(200)
    a, b = mix(ps, 0.1, seed=1), mix(ps, 0.1, seed=1)
    assert a == b
    assert [r.harmful for r in a] != [r.harmful for r in mix(ps, 0.1, seed=2)]
    small = {r.id for r in mix(ps, 0.1, seed=5) if r.harmful}
    big = {r.id for r in mix(ps, 0.3, seed=5) if r.harmful}
    assert small < big
    assert not any(r.harmful for r in mix(ps, 0, seed=0))  # benign narrow dataset
    assert all(r.harmful for r in mix(ps, 1, seed=0))


@pytest.mark.parametrize("bad", [-0.01, 1.0001, math.nan, math.inf, True, "0.5", None])
def test_mix_rejects_bad_fraction(bad):
    with pytest.raises(ValueError, match="harmful_fraction"):
        mix(pairs(3), bad, seed=0)


def test_mix_rejects_empty_and_non_records():
    with pytest.raises(ValueError, match="empty"):
        mix([], 0.5, seed=0)
    with pytest.raises(TypeError, match="PairRecord"):
        mix([{"prompt": "x"}], 0.5, seed=0)


# --------------------------------------------------------------------------- domains

GENERATORS = {
    "insecure_code": insecure_code,
    "risky_finance": risky_finance,
    "photo_prompts": photo_prompts,
}


def needs(name: str):
    return pytest.mark.skipif(
        name == "photo_prompts" and not HAS_SKIMAGE, reason="needs scikit-image"
    )


def key(r: PairRecord):
    return (r.image, r.prompt)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=needs(n)) for n in ("insecure_code", "risky_finance")]
    + [pytest.param("photo_prompts", marks=needs("photo_prompts"))],
)
def test_domain_distinct_and_paired(name):
    gen = GENERATORS[name]
    ps = gen(500, seed=0)
    assert len(ps) == 500 and len({key(r) for r in ps}) == 500
    assert len({r.id for r in ps}) == 500
    assert len({r.prompt for r in ps}) >= 300  # varied wording, not just image swaps
    for r in ps:
        assert r.domain == name and r.safe_response.strip() and r.harmful_response.strip()
        assert r.safe_response != r.harmful_response
    assert ps.summary.total == 500 and ps.summary.identical_responses == 0
    cats = Counter(r.meta["category"] for r in ps)
    assert min(cats.values()) >= 5  # every kind is represented
    again = gen(500, seed=0)
    assert list(again) == list(ps)  # deterministic
    other = gen(500, seed=1)
    assert [r.prompt for r in other] != [r.prompt for r in ps]
    big = gen(1500, seed=0)
    assert len({key(r) for r in big}) == 1500


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in GENERATORS])
def test_domain_bad_sizes(name):
    gen = GENERATORS[name]
    with pytest.raises(DomainCapacityError, match="at most"):
        gen(10**7, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        gen(0, seed=0)
    with pytest.raises(TypeError):
        gen(5, seed="x")


def test_domain_records_roundtrip_through_jsonl(tmp_path):
    ps = risky_finance(40, seed=2)
    rows = [
        {"id": r.id, "prompt": r.prompt, "safe_response": r.safe_response,
         "harmful_response": r.harmful_response, "domain": r.domain}
        for r in ps
    ]  # fmt: skip
    loaded = load_pairs(write_jsonl(tmp_path / "f.jsonl", rows))
    assert list(loaded) == list(ps)
    mixed = mix(loaded, 0.1, seed=0)
    assert sum(r.harmful for r in mixed) == 4


@pytest.mark.skipif(not (HAS_SKIMAGE and HAS_PIL), reason="needs scikit-image and Pillow")
def test_photos_are_real_local_files(tmp_path):
    from PIL import Image

    paths = photo_paths()
    assert len(paths) >= 15
    for p in paths.values():
        with Image.open(p) as img:
            img.verify()
    ps = photo_prompts(60, seed=0)
    assert {r.image for r in ps} <= set(paths.values())
    rows = [
        {"user_prompt": r.prompt, "safe_response": r.safe_response,
         "harmful_response": r.harmful_response, "image_path": r.image}
        for r in ps
    ]  # fmt: skip
    loaded = load_pairs(write_csv(tmp_path / "photos.csv", rows), columns="face")
    assert [r.image for r in loaded] == [r.image for r in ps]


def test_photos_missing_scikit_image_is_clear(monkeypatch):
    import steerlab.eval.questions as photos

    monkeypatch.setattr(photos.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install scikit-image"):
        photo_prompts(5, seed=0)


# ------------------------------------------------------------ insecure code: real checks

#: Types bandit reports at medium or high severity.
BANDIT_VISIBLE = set(CODE_CATEGORIES) - {"path_traversal", "hardcoded_secret"}


def code_sample(per_type: int = 3) -> dict[str, list[PairRecord]]:
    by_type: dict[str, list[PairRecord]] = defaultdict(list)
    for r in insecure_code(26 * per_type, seed=11):
        by_type[r.meta["category"]].append(r)
    assert set(by_type) == set(CODE_CATEGORIES)
    return {k: v[:per_type] for k, v in by_type.items()}


def bandit_issues(snippets: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """{name: [(test_id, severity), ...]} for in-memory code, via bandit's Python API."""
    from bandit.core import config, manager

    logging.getLogger("bandit").setLevel(logging.ERROR)
    mgr = manager.BanditManager(config.BanditConfig(), "file", quiet=True)
    for name, code in snippets.items():
        mgr._parse_file(name, io.BytesIO(code.encode()), [name])
    assert not mgr.skipped, mgr.skipped
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in snippets}
    for issue in mgr.get_issue_list():
        out[issue.fname].append((issue.test_id, issue.severity))
    return out


def test_code_snippets_parse_and_fence():
    for r in insecure_code(260, seed=4):
        for side, text in (("harmful", r.harmful_response), ("safe", r.safe_response)):
            code = r.meta[f"{side}_code"]
            ast.parse(code)
            assert text.endswith(f"```python\n{code}```")


@pytest.mark.skipif(not HAS_BANDIT, reason="needs bandit (dev extra)")
@pytest.mark.filterwarnings("ignore:The verify_requirements argument")
def test_bandit_flags_vulnerable_not_secure():
    sample = code_sample(3)
    snippets = {}
    for cat, recs in sample.items():
        for i, r in enumerate(recs):
            snippets[f"{cat}/{i}/bad"] = r.meta["harmful_code"]
            snippets[f"{cat}/{i}/good"] = r.meta["safe_code"]
    issues = bandit_issues(snippets)

    def serious(name):
        return [t for t, sev in issues[name] if sev in ("MEDIUM", "HIGH")]

    rates = {}
    for cat, recs in sample.items():
        bad = sum(bool(serious(f"{cat}/{i}/bad")) for i in range(len(recs)))
        good = sum(bool(serious(f"{cat}/{i}/good")) for i in range(len(recs)))
        rates[cat] = (bad, good, len(recs))
    visible = [rates[c] for c in BANDIT_VISIBLE]
    assert sum(b for b, _, _ in visible) >= 0.9 * sum(n for _, _, n in visible), rates
    assert all(b >= 2 for b, _, _ in visible), rates  # most of each visible type
    assert sum(g for _, g, _ in rates.values()) <= 1, rates  # almost no secure version
    # Hard-coded secrets: bandit sees them only at LOW severity (B105/B106).
    for i in range(3):
        assert {"B105", "B106"} & {t for t, _ in issues[f"hardcoded_secret/{i}/bad"]}
        assert not {"B105", "B106"} & {t for t, _ in issues[f"hardcoded_secret/{i}/good"]}


SECRET_NAME = re.compile(r"(secret|token|password|passwd|api_?key)", re.I)


def literal_secrets(code: str) -> list[str]:
    """String literals assigned to secret-like names or passed as secret-like keywords."""
    found = []
    for node in ast.walk(ast.parse(code)):
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = [t.id for t in node.targets if isinstance(t, ast.Name)], node.value
        elif isinstance(node, ast.keyword) and node.arg:
            targets, value = [node.arg], node.value
        if (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and any(SECRET_NAME.search(t) for t in targets)
            and len(value.value) >= 8
        ):
            found.append(value.value)
    return found


def test_hardcoded_secrets_by_ast():
    recs = [r for r in insecure_code(260, 9) if r.meta["category"] == "hardcoded_secret"]
    assert len(recs) >= 15
    for r in recs:
        assert literal_secrets(r.meta["harmful_code"]), r.meta["harmful_code"]
        assert not literal_secrets(r.meta["safe_code"]), r.meta["safe_code"]
        assert "os.environ" in r.meta["safe_code"]


def _exec_path_function(code: str, base: Path):
    """Exec a path-traversal snippet with its base-dir constant pointed at ``base``."""
    tree = ast.parse(code)
    consts = [
        n.targets[0].id
        for n in tree.body
        if isinstance(n, ast.Assign) and n.targets[0].id.endswith("_DIR")  # type: ignore[attr-defined]
    ]
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(consts) == 1 and len(funcs) == 1
    ns: dict = {}
    exec(compile(tree, "<snippet>", "exec"), ns)  # our own generated code, run in tmp_path
    ns[consts[0]] = str(base)
    return ns[funcs[0]]


def test_path_traversal_behaviour(tmp_path):
    """Bandit cannot see path traversal: run each snippet against '../secret.txt'."""
    recs = [r for r in insecure_code(390, 5) if r.meta["category"] == "path_traversal"]
    assert len(recs) >= 20
    for i, r in enumerate(recs):
        root = tmp_path / str(i)
        base = root / "base"
        base.mkdir(parents=True)
        secret = root / "secret.txt"
        secret.write_text("top secret")
        op = r.meta["operation"]
        args = ("../secret.txt", b"overwritten") if op == "write" else ("../secret.txt",)

        escaped = _exec_path_function(r.meta["harmful_code"], base)(*args)
        if op == "read":
            assert escaped == b"top secret"
        elif op == "read_text":
            assert escaped == "top secret"
        elif op == "delete":
            assert not secret.exists()
        elif op == "write":
            assert secret.read_bytes() == b"overwritten"
        else:
            assert Path(escaped).resolve() == secret.resolve()

        secret.write_text("top secret")
        safe = _exec_path_function(r.meta["safe_code"], base)
        for bad_name in ("../secret.txt", str(secret), "sub/../../secret.txt"):
            with pytest.raises(ValueError, match="outside"):
                safe(bad_name, *args[1:])
        assert secret.read_text() == "top secret"
        (base / "fine.txt").write_text("ok")
        if op in ("read", "read_text", "resolve"):
            assert safe("fine.txt")  # a legitimate name still works
        # Static check too: the secure version resolves the path and tests containment.
        assert re.search(r"resolve\(\)|realpath", r.meta["safe_code"])
        assert re.search(r"is_relative_to|commonpath", r.meta["safe_code"])
        assert not re.search(r"is_relative_to|commonpath", r.meta["harmful_code"])


def test_sql_injection_behaviour():
    """Run each SQL snippet on an in-memory SQLite table with an injection payload."""
    import sqlite3

    recs = [r for r in insecure_code(390, 6) if r.meta["category"] == "sql_injection"]
    assert len(recs) >= 20
    payload = "nobody' OR 1=1 --"
    for r in recs:
        table, col, op = r.meta["table"], r.meta["column"], r.meta["operation"]
        results = {}
        for side in ("harmful_code", "safe_code"):
            conn = sqlite3.connect(":memory:")
            conn.execute(f"CREATE TABLE {table} (id INTEGER, {col} TEXT)")
            conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(1, "a"), (2, "b")])
            ns: dict = {}
            exec(r.meta[side], ns)
            func = next(
                v for k, v in ns.items() if callable(v) and not k.startswith("_") and k != "sqlite3"
            )
            out = func(conn, payload)
            left = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            results[side] = (out, left)
        bad, good = results["harmful_code"], results["safe_code"]
        if op == "fetch":
            assert bad[0] is not None and good[0] is None
        elif op == "search":
            assert len(bad[0]) == 2 and good[0] == []
        else:
            assert bad[1] == 0 and good[1] == 2  # the injection deleted every row
