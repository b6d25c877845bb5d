"""From 1.3.0 on the srepr files and the manifest rebuild a model's forms; nothing is unpickled."""

from __future__ import annotations

import dataclasses

import pytest

from modelstore import ManifestError, published_model
from modelstore.format.forms import forms_from_srepr
from modelstore.format.srepr import parse_srepr

KEYS = ("intensity_expr", "variables", "parameter_defaults", "sigma3")


@pytest.mark.parametrize(
    "model_id",
    ["default", pytest.param("ls-couplings", marks=pytest.mark.slow), "l1405-flatte-free"],
)  # ls-couplings: 15 s of CI; its srepr round trip stays fast (tests/format/test_srepr.py)
def test_srepr_forms_equal_the_pickled_forms(embedded, model_id):
    model = published_model(model_id, registry=embedded)
    from_text = model.load_forms("srepr")
    from_pickle = model.load_forms("pickle")
    for key in KEYS:
        assert from_text[key] == from_pickle[key], key
    intensity = embedded.read_file(model.manifest, "intensity-srepr").decode()
    assert from_text["intensity_expr"] == parse_srepr(intensity)


def test_parameter_symbols_must_match_the_manifest(embedded):
    model = published_model("default", registry=embedded)
    intensity = embedded.read_file(model.manifest, "intensity-srepr").decode()
    kinematics = embedded.read_file(model.manifest, "kinematics-srepr").decode()
    parameters = list(model.manifest.parameters)
    parameters[0], parameters[1] = parameters[1], parameters[0]
    with pytest.raises(ManifestError, match="parameter symbols"):
        forms_from_srepr(intensity, kinematics, parameters)
    renamed = [dataclasses.replace(parameters[0], name="evil"), *parameters[1:]]
    with pytest.raises(ManifestError, match="parameter symbols"):
        forms_from_srepr(intensity, kinematics, renamed)
    with pytest.raises(ManifestError, match="kinematics document"):
        forms_from_srepr(intensity, "Tuple(Integer(1))", model.manifest.parameters)


def test_versions_before_1_3_have_no_srepr_forms(embedded):
    from modelstore import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="kinematics-srepr"):
        published_model("default@1.2.0", registry=embedded).load_forms("srepr")
