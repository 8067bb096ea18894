"""The service layer's own logic, without a page: the catalogue of cached experiments, labels and formatting,
and users' uploads."""

from __future__ import annotations

import hashlib

import pytest

from cup_core import Experiment, default_config
from cup_core.config import ForgetSet
from cup_core import uploads
from ui import formatting
from ui.services import catalogue, new


def test_sizes_are_in_decimal_units():
    assert [formatting.human_size(size) for size in (0, 999, 1500, 2_500_000, 3_000_000_000, 4e12)] == \
        ["0 bytes", "999 bytes", "1.5 KB", "2.5 MB", "3.0 GB", "4000.0 GB"]


def test_ages_and_durations_read_as_words():
    now = 1_000_000.0
    assert [formatting.human_age(now - seconds, now) for seconds in (5, 150, 2 * 3600 + 5, 3 * 86400)] == \
        ["just now", "2 min ago", "2 h ago", "3 days ago"]
    assert formatting.human_age(now + 60, now) == "just now"  # a clock that moved back
    assert [formatting.format_duration(s) for s in (0.2, 14.4, 200, 2 * 3600, float("inf"))] == \
        ["under a second", "about 14 s", "about 3 min", "about 2.0 h", "unknown"]
    assert [formatting.format_seconds(s) for s in (None, float("nan"), 0.5, 12.6)] == \
        ["estimating…", "estimating…", "under a second left", "about 13 s left"]


def test_forget_sets_are_labelled_as_the_sidebar_and_the_url_name_them():
    assert catalogue.forget_label(ForgetSet(forget_class=3)) == "class 3"
    assert catalogue.forget_label(ForgetSet(forget_class=None, fraction=0.1)) == "random 10%"
    assert catalogue.forget_label(ForgetSet(forget_class=None, fraction=0.1, seed=2)) == "random 10% seed 2"
    assert catalogue.forget_label(ForgetSet(forget_class=None, indices=(1, 2))).startswith("2 listed samples")


def test_an_upload_is_saved_once_under_its_hash_and_other_files_are_refused(tmp_cache):
    data = b"weights"
    path = new.save_upload(data, "Mine.SafeTensors")
    assert path == tmp_cache / uploads.UPLOADS / f"{hashlib.sha256(data).hexdigest()}.safetensors"
    assert path.read_bytes() == data
    modified = path.stat().st_mtime_ns
    assert new.save_upload(data, "again.safetensors") == path and path.stat().st_mtime_ns == modified
    with pytest.raises(ValueError, match="notes.txt: a checkpoint is a .safetensors or .pt/.pth file"):
        new.save_upload(data, "notes.txt")


def test_an_uploaded_index_file_is_read_and_its_errors_name_the_upload():
    assert new.read_index_upload(b"[4, 2, 9]", "forget.json") == (4, 2, 9)  # in the file's order
    with pytest.raises(ValueError, match="forget.txt") as error:
        new.read_index_upload(b"1, two", "forget.txt")
    assert "indices.txt" not in str(error.value)  # the temporary file's name stays hidden


def test_the_picker_offers_cached_experiments_of_other_models_beside_the_default(tmp_cache):
    other = Experiment(default_config("blobs", model="torchvision:resnet18"), tmp_cache)
    other.save_config()  # listed as soon as it exists, before any point
    choices = catalogue.experiments_for("blobs", catalogue.default_forget("blobs"))
    assert [experiment.id for experiment in choices] == [catalogue.default_experiment(
        "blobs", catalogue.default_forget("blobs")).id, other.id]
    assert "model torchvision:resnet18" in catalogue.describe_variant(other)
    assert catalogue.datasets()[0] == catalogue.DEFAULT_DATASET


def test_a_cached_figure_is_a_copy_that_its_caller_may_change():
    """The Compare fallback rings the cached fronts at every click: nothing done to the figure it gets reaches the
    cached one, and making it changes nothing in the shared dict, not even for a moment (go.Figure takes each trace's
    type out and puts it back: cached_figure hands it shallow copies)."""
    import copy
    import uuid

    import numpy as np
    import plotly.graph_objects as go

    from ui.services import caching

    def build() -> go.Figure:
        return go.Figure({"data": [{"type": "scatter", "x": np.arange(4.0), "y": np.ones(4),
                                    "marker": {"size": [7, 11, 7, 11]}}], "layout": {"xaxis": {"range": [0, 3]}}},
                         _validate=False)

    class Frozen(dict):  # the shared dict as another session reads it: any change to it, even undone, fails
        def _refuse(self, *args, **kwargs):
            raise AssertionError("the shared figure was changed")

        __setitem__ = __delitem__ = pop = popitem = update = setdefault = clear = _refuse

        def __copy__(self):  # a copy is the reader's own to change
            return dict(self)

        def __deepcopy__(self, memo):
            return copy.deepcopy(dict(self), memo)

    key = ("test_cached_figure", uuid.uuid4().hex)  # a key of its own: no other test's entry
    shared = caching.cached_figure_dict(key, build)
    shared["data"] = [Frozen(trace) for trace in shared["data"]]
    shared["layout"] = Frozen(shared["layout"])
    first = caching.cached_figure(key, lambda: pytest.fail("built twice"))
    assert first.to_dict() == build().to_dict()
    first.add_trace({"type": "scatter", "x": [1.0], "y": [1.0], "name": "selected"})
    first.data[0].marker.size = [1, 1, 1, 1]
    first.data[0].x = [9.0, 9.0, 9.0, 9.0]
    first.update_layout(xaxis_range=[5, 6])
    assert caching.cached_figure(key, lambda: pytest.fail("built twice")).to_dict() == build().to_dict()
