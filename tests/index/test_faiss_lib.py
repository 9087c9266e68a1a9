"""faiss through harness/index/faiss_lib.py: k-means (Lloyd's fixed point, seeded, one iteration a
step of its progress, the same centroids as one faiss call), colbert-ai's sample; and the message
when faiss is not installed."""

import re
import sys

import numpy as np
import pytest

from harness import progress
from harness.errors import MissingDependencyError
from harness.index.compression import ResidualCodec
from harness.index.faiss_lib import kmeans, require_faiss


def test_kmeans_converges_to_means_of_its_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centers = 10 * np.eye(16, dtype=np.float32)[:8]
    x = centers[rng.integers(0, 8, 4000)] + 0.1 * rng.standard_normal((4000, 16)).astype(np.float32)
    c = kmeans(x, 8, 20, seed=1, points_per_centroid=500)  # 4000 <= 8 x 500: faiss samples none away
    assert c.shape == (8, 16) and c.dtype == np.float32
    # Lloyd's fixed point on separated clusters: each centroid is the mean of the points nearest it
    nearest = np.linalg.norm(x[:, None] - c[None], axis=2).argmin(axis=1)
    means = np.stack([x[nearest == j].mean(axis=0) for j in range(8)])
    np.testing.assert_allclose(c, means, atol=1e-4)
    np.testing.assert_array_equal(kmeans(x, 8, 20, seed=1, points_per_centroid=500), c)
    assert not np.array_equal(kmeans(x, 8, 20, seed=2, points_per_centroid=500), c)


@pytest.mark.parametrize("k, per_centroid", [(64, 1000), (512, 8)], ids=["all points", "faiss samples"])
def test_kmeans_in_steps_gives_faiss_own_centroids_and_shows_each_iteration(k, per_centroid, capsys, monkeypatch):
    import faiss

    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    x = np.random.default_rng(3).standard_normal((6000, 24)).astype(np.float32)
    c = kmeans(x, k, 4, seed=5, points_per_centroid=per_centroid)
    # one faiss call of 4 iterations, as the harness made it before it showed progress
    km = faiss.Kmeans(24, k, niter=4, seed=5, max_points_per_centroid=per_centroid, min_points_per_centroid=1)
    km.train(x)
    np.testing.assert_array_equal(c, km.centroids)
    # stderr is not a terminal here: a line per iteration, at the tenth it reaches
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r", [\d,.]+ iterations/s, \d+ s left\)$", ")", line) for line in lines] == [
        f"k-means ({k} centroids): {p}% ({i}/4 iterations)" for i, p in ((1, 20), (2, 50), (3, 70), (4, 100))]


def test_sample_follows_colbert_documents_and_points_per_centroid():
    codec = ResidualCodec(2, points_per_centroid=500)
    # 10M documents of 100 tokens: colbert-ai samples 1 + 16 sqrt(120e7) = 554,257 documents
    # (5.54% of the tokens: 55,425,700), fewer than 256 x 262,144 centroids / 0.95 (70.6M)
    assert codec.sample_size(10**9, 10**7) == 55_425_700
    # SciFact: every document is sampled; 32 points for each of 16,384 centroids bind first
    assert ResidualCodec(2).sample_size(1_307_434, 5183) == 551_884  # ceil(16384 * 32 / 0.95) + 1


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # what `import faiss` finds when it is not installed
    with pytest.raises(MissingDependencyError) as e:
        require_faiss("index: faiss")
    assert str(e.value).startswith("index: faiss needs faiss, which is not installed. Install the approximate "
                                   "extra with `pip install 'late-interaction-harness[approximate]'`")
