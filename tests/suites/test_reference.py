"""The BEIR and MIRACL suites against the official query and judgment files (../shared/data/reference).

What is checked, for every suite entry that has official files:
- `expected.queries` is the number of official queries, and every one of them is judged;
- `expected.judgments` is the number of judgment lines, grade 0 included (the loader compares the
  same count, before its checks drop anything), and `expected.grades` the grades those lines use;
- query and document ids have the form the loader produces (patterns taken from ir_datasets' own
  integration tests, so independent of these files); for SciFact, whose data the tests hold, the
  loaded ids and judgments equal the official ones exactly; MIRACL's official files are byte for
  byte those ir_datasets downloads (its checksums).
Two BEIR sets differ from the official conversion by known amounts, asserted exactly below.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from importlib import resources

import pytest

from harness.suite import load_suite

from tests.conftest import REPO, SHARED, require_shared

REFERENCE = SHARED / "data" / "reference"
BEIR = load_suite(REPO / "suites" / "beir.yaml")
MIRACL = load_suite(REPO / "suites" / "miracl.yaml")

# The BEIR paper's 18 test sets (CQADupStack as its 12 forums) and its in-domain MS MARCO.
PAPER_PUBLIC = {"trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana", "webis-touche2020", "quora",
                "dbpedia-entity", "scidocs", "fever", "climate-fever", "scifact"}
CQADUPSTACK = {"android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex",
               "unix", "webmasters", "wordpress"}
PAPER_UNAVAILABLE = {"bioasq", "signal1m", "trec-news", "robust04"}
MIRACL_LANGUAGES = "ar bn de en es fa fi fr hi id ja ko ru sw te th yo zh".split()

# Where the official conversion (Anserini's beir-v1.0.0 files) differs from BEIR's own files, which
# ir_datasets reads: (judgment lines in the official file, grades it uses).
KNOWN_DIFFERENCES = {
    # BEIR's qrels have two lines more (ir_datasets' integration test asserts 66,336).
    "trec-covid": (66334, [0, 1, 2]),
    # BEIR's v2 qrels list 2,214 judgments graded 0-2; the official file keeps the 932 graded 1 or 2.
    "webis-touche2020": (932, [1, 2]),
}

_NUM = r"\d+"
# (query id, document id) forms, from the first and last items ir_datasets' integration tests
# assert for each dataset: what its loader yields.
BEIR_ID_FORMS = {
    "trec-covid": (_NUM, r"[0-9a-z]{8}"),
    "nfcorpus": (r"PLAIN-\d+", r"MED-\d+"),
    "nq": (r"test\d+", r"doc\d+"),
    "hotpotqa": (r"[0-9a-f]{24}", _NUM),
    "fiqa": (_NUM, _NUM),
    "arguana": (r"test-[a-z-]+-[0-9a-z]+-(pro|con)\d{2}a", r"test-[a-z-]+-[0-9a-z]+-(pro|con)\d{2}b"),
    "webis-touche2020": (_NUM, r"[0-9a-f]{5,8}-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z-\d{5}-\d{3}"),
    "quora": (_NUM, _NUM),
    "dbpedia-entity": (r"(INEX_LD|INEX_XER|QALD2_te|QALD2_tr|SemSearch_ES|SemSearch_LS|TREC_Entity)-\S+",
                       r"<dbpedia:\S+>"),
    "scidocs": (r"[0-9a-f]{40}", r"[0-9a-f]{40}"),
    "fever": (_NUM, r"\S+"),
    "climate-fever": (_NUM, r"\S+"),
    "scifact": (_NUM, _NUM),
    **{f"cqadupstack-{forum}": (_NUM, _NUM) for forum in CQADUPSTACK},
}
# MIRACL query ids are numbers in the first languages and `<article>#<passage>` in the later ones.
MIRACL_PASSAGE_IDS = {"de", "es", "fa", "fr", "hi", "yo", "zh"}


def read_topics(path) -> dict[str, str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]
    assert all(len(r) == 2 for r in rows), f"{path}: every line is `id<TAB>text`"
    topics = {qid: text for qid, text in rows}
    assert len(topics) == len(rows), f"{path}: duplicate query ids"
    return topics


def read_qrels(path) -> list[tuple[str, str, int]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    assert all(len(r) == 4 for r in rows), f"{path}: every line is `query 0 document grade`"
    return [(q, d, int(g)) for q, _, d, g in rows]


def beir_files(name: str):
    return (REFERENCE / "beir" / f"topics.beir-v1.0.0-{name}.test.tsv.gz",
            REFERENCE / "beir" / f"qrels.beir-v1.0.0-{name}.test.txt.gz")


def miracl_files(lang: str):
    return (REFERENCE / "miracl" / f"topics.miracl-v1.0-{lang}-dev.tsv",
            REFERENCE / "miracl" / f"qrels.miracl-v1.0-{lang}-dev.tsv")


@pytest.fixture(scope="module", autouse=True)
def reference_present():
    require_shared("data", "reference", "beir")
    require_shared("data", "reference", "miracl")


def test_beir_lists_every_dataset_of_the_paper_and_cqadupstack_as_one_group_of_12():
    names = set(BEIR.datasets)
    forums = {f"cqadupstack-{f}" for f in CQADUPSTACK}
    assert names == PAPER_PUBLIC | forums | PAPER_UNAVAILABLE | {"msmarco"}
    assert {n for n, s in BEIR.datasets.items() if s.unavailable} == PAPER_UNAVAILABLE
    assert all(BEIR.datasets[n].source is None for n in PAPER_UNAVAILABLE)
    members = {n: s for n, s in BEIR.datasets.items() if s.group == "cqadupstack"}
    assert set(members) == forums and len(members) == 12
    assert {s.source.id for s in members.values()} == {f"beir/cqadupstack/{f}" for f in CQADUPSTACK}
    assert {s.group for s in BEIR.datasets.values()} == {None, "cqadupstack"}
    assert {n for n, s in BEIR.datasets.items() if s.remove_self_matches} == {"arguana", "quora"}
    assert BEIR.dataset("webis-touche2020").source.id == "beir/webis-touche2020/v2"
    assert (BEIR.dataset("msmarco").source.id, BEIR.dataset("msmarco").split) == ("beir/msmarco/dev", "dev")
    # every official BEIR file belongs to a suite entry
    stems = {p.name.split("beir-v1.0.0-")[1].split(".test")[0] for p in (REFERENCE / "beir").iterdir()}
    assert stems == PAPER_PUBLIC | forums | PAPER_UNAVAILABLE


def test_miracl_has_the_18_dev_sets_with_their_languages():
    assert list(MIRACL.datasets) == MIRACL_LANGUAGES
    for lang, spec in MIRACL.datasets.items():
        assert (spec.source.id, spec.language, spec.split) == (f"miracl/{lang}/dev", lang, "dev")
        assert spec.main_metric == "ndcg@10" and "recall@100" in spec.metrics


def test_every_source_id_exists_in_the_installed_ir_datasets():
    import ir_datasets

    for suite in (BEIR, MIRACL):
        for spec in suite.datasets.values():
            if spec.source is not None:
                dataset = ir_datasets.registry[spec.source.id]  # KeyError names the id
                assert dataset.has_docs() and dataset.has_queries() and dataset.has_qrels(), spec.source.id


def test_expected_counts_match_the_ir_datasets_catalogue():
    """Document counts are not in the official query files: ir_datasets' own catalogue (the BEIR and
    MIRACL papers' corpus sizes) is the independent check, for queries and judgments too."""
    catalogue = json.loads((resources.files("ir_datasets") / "etc" / "metadata.json").read_text())
    for suite in (BEIR, MIRACL):
        for spec in suite.datasets.values():
            if spec.source is None:
                continue
            sid = spec.source.id
            # a split's entry (beir/nfcorpus/test) leaves the corpus size to its parent's
            corpus = catalogue[sid]["docs"].get("count") or catalogue[sid.rsplit("/", 1)[0]]["docs"]["count"]
            assert (spec.expected.documents, spec.expected.queries, spec.expected.judgments) == (
                corpus, catalogue[sid]["queries"]["count"], catalogue[sid]["qrels"]["count"]), spec.name


@pytest.mark.parametrize("name", sorted(PAPER_PUBLIC | {f"cqadupstack-{f}" for f in CQADUPSTACK} | PAPER_UNAVAILABLE))
def test_beir_counts_and_grades_match_the_official_files(name):
    spec = BEIR.dataset(name)
    topics_path, qrels_path = beir_files(name)
    topics = read_topics(topics_path)
    assert spec.expected.queries == len(topics)
    if not qrels_path.exists():  # robust04: official topics only
        assert name == "robust04" and spec.expected.judgments is None
        return
    qrels = read_qrels(qrels_path)
    assert {q for q, _, _ in qrels} == set(topics), "every official query is judged, and only those"
    assert len({(q, d) for q, d, _ in qrels}) == len(qrels), "one line per (query, document)"
    grades = sorted({g for _, _, g in qrels})
    if name in KNOWN_DIFFERENCES:
        assert (len(qrels), grades) == KNOWN_DIFFERENCES[name]
        assert spec.expected.judgments > len(qrels) and set(grades) <= set(spec.expected.grades)
    else:
        assert spec.expected.judgments == len(qrels)
        assert spec.expected.grades == grades


@pytest.mark.parametrize("name", sorted(BEIR_ID_FORMS))
def test_beir_id_forms_are_what_the_loader_produces(name):
    query_form, doc_form = (re.compile(p) for p in BEIR_ID_FORMS[name])
    topics_path, qrels_path = beir_files(name)
    bad_queries = [q for q in read_topics(topics_path) if not query_form.fullmatch(q)]
    bad_docs = [d for _, d, _ in read_qrels(qrels_path) if not doc_form.fullmatch(d)]
    assert bad_queries == [] and bad_docs == []


def test_scifact_as_loaded_is_the_official_files_exactly(offline):
    from harness.data.load import load_dataset

    dataset = load_dataset(BEIR.dataset("scifact"), "beir")
    topics_path, qrels_path = beir_files("scifact")
    topics = read_topics(topics_path)
    assert dict(zip(dataset.queries.ids, dataset.queries.texts)) == topics
    official: dict[str, dict[str, int]] = {}
    for q, d, g in read_qrels(qrels_path):
        official.setdefault(q, {})[d] = g
    assert dataset.qrels.to_dict() == official


@pytest.mark.parametrize("lang", MIRACL_LANGUAGES)
def test_miracl_matches_the_official_files_which_are_what_ir_datasets_reads(lang):
    spec = MIRACL.dataset(lang)
    topics_path, qrels_path = miracl_files(lang)
    downloads = json.loads((resources.files("ir_datasets") / "etc" / "downloads.json").read_text())["miracl"]
    for kind, path in (("topics", topics_path), ("qrels", qrels_path)):
        assert hashlib.md5(path.read_bytes()).hexdigest() == downloads[f"v1.0/{lang}/dev/{kind}"]["expected_md5"]
    topics, qrels = read_topics(topics_path), read_qrels(qrels_path)
    assert (spec.expected.queries, spec.expected.judgments) == (len(topics), len(qrels))
    assert spec.expected.grades == sorted({g for _, _, g in qrels}) == [0, 1]
    assert {q for q, _, _ in qrels} == set(topics)
    query_form = re.compile(r"\d+#\d+" if lang in MIRACL_PASSAGE_IDS else r"\d+")
    assert [q for q in topics if not query_form.fullmatch(q)] == []
    assert [d for _, d, _ in qrels if not re.fullmatch(r"\d+#\d+", d)] == []
