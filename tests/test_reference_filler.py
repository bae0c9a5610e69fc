"""scandeck's reading of resource/datum data against event-model's own Filler.

A real RunEngine runs ophyd.sim's image detector (NPY_SEQ files); event_model.Filler,
with ophyd.sim's own NPY_SEQ handler, fills the same documents. Both must agree,
value for value, and scandeck must never hand out a datum id where a value belongs.
"""

from __future__ import annotations

import copy

import bluesky.plans as bp
import event_model
import numpy as np


def test_images_match_event_models_filler(sqlite_cat, RE, hw):
    from ophyd.sim import NumpySeqHandler

    documents = []
    RE.subscribe(lambda name, doc: documents.append((name, copy.deepcopy(doc))))
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.scan([hw.img, hw.det], hw.motor, -1, 1, 4))
    reference = []
    with event_model.Filler({"NPY_SEQ": NumpySeqHandler}, inplace=False) as filler:
        for name, doc in documents:
            name, doc = filler(name, doc)
            if name == "event":
                reference.append(doc["data"]["img"])
    ours = sqlite_cat[uid].primary.read()["img"].values
    assert ours.shape == (4, *np.shape(reference[0]))
    np.testing.assert_array_equal(ours, np.stack(reference))
    refs = sqlite_cat[uid].primary.read(fill=False)["img"].values
    datum_ids = [doc["data"]["img"] for name, doc in documents if name == "event"]
    assert list(refs) == datum_ids  # fill=False: the references, as the documents hold them
    df = sqlite_cat[uid].primary.to_pandas()
    assert "img" not in df.columns and list(df["det"]) == list(sqlite_cat[uid].primary.read()["det"].values)
