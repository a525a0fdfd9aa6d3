"""Tests of how models are declared: one spec per model, nothing patched onto instances.

Also pins the state_dict layout of every model, so that saved checkpoints keep loading.
"""
import copy
import dataclasses
import hashlib
import inspect
import json
import re
import sys

import pytest
import torch

from srlib.evaluate import model_convention
from srlib.inference import output_factor
from srlib.models import REGISTRY, ModelSpec, build, rebuild, spec
from srlib.models.base import SRModel
from srlib.models.espcn import ESPCN

NAMES = list(REGISTRY)


def meta_build(name, scale, size="quick", **overrides):
    with torch.device("meta"):  # shapes only: no weights are initialised
        return build(name, scale, size=size, **overrides)


def layout(model):
    return [(key, tuple(tensor.shape)) for key, tensor in model.state_dict().items()]


# --- one declaration per model ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_registered_spec_is_the_one_the_model_class_declares(name):
    s = spec(name)
    assert s.name == name and issubclass(s.model_class, SRModel)
    assert s.model_class.spec is s
    assert sys.modules[s.model_class.__module__].SPEC is s
    model = meta_build(name, s.scales[-1])
    assert type(model) is s.model_class and model.spec is s
    assert model.srlib_name == name and model.scale == s.scales[-1]
    assert model.input_kind == s.input and model.in_channels == s.channels
    assert model_convention(model) == (s.input == "upsampled", "y" if s.channels == 1 else "rgb")


@pytest.mark.parametrize("name", NAMES)
def test_build_sets_no_attribute_on_the_instance(name):
    s = spec(name)
    scale = s.scales[0]
    built = meta_build(name, scale)
    config = json.loads(json.dumps(built.srlib_config))
    with torch.device("meta"):
        direct = s.model_class(**config)
    assert vars(built).keys() == vars(direct).keys()
    assert built.srlib_config == direct.srlib_config == config
    for attribute in ("srlib_name", "input_kind", "in_channels", "srlib_size"):
        assert attribute not in vars(built), attribute


def test_config_is_the_arguments_as_given_plus_the_scale():
    assert ESPCN(3, n1=8).srlib_config == {"scale": 3, "n1": 8}
    assert ESPCN().srlib_config == {"scale": 3}  # defaults are not recorded...
    assert rebuild("espcn", {"scale": 2}).conv1.out_channels == 64  # ...and rebuild fills them in
    assert build("vdsr", 2, size="quick").srlib_config == {"depth": 8, "n_feats": 32, "scale": 2}
    with pytest.raises(ValueError, match=r"supports scales \(2, 3, 4\)"):
        ESPCN(5)


@pytest.mark.parametrize("name", NAMES)
def test_rebuild_recreates_the_same_state_dict_layout_for_every_size_and_scale(name):
    s = spec(name)
    for size in s.sizes:
        for scale in s.scales:
            model = meta_build(name, scale, size=size)
            with torch.device("meta"):
                clone = rebuild(model.srlib_name, json.loads(json.dumps(model.srlib_config)))
            assert layout(clone) == layout(model), (name, size, scale)


def test_a_deep_copy_has_its_own_config():
    model = build("fsrcnn", 3)
    twin = copy.deepcopy(model)
    twin.replace_deconvolution(2)
    assert twin.srlib_config["scale"] == 2 and model.srlib_config["scale"] == 3


def test_a_spec_belongs_to_one_class():
    s = spec("srcnn")
    with pytest.raises((TypeError, RuntimeError)):
        type("Impostor", (SRModel,), {"spec": s})
    assert s.model_class.__name__ == "SRCNN"


def test_spec_loss_is_the_papers_loss_and_a_copy_keeps_it():
    from srlib.models import espcn

    s = spec("espcn")
    assert s.loss is espcn.loss
    copy_spec = dataclasses.replace(s)
    assert copy_spec.loss is s.loss and isinstance(copy_spec, ModelSpec)


# --- ESPCN's HR-space twin ---------------------------------------------------------------------

def test_espcn_hr_twin_reports_upsampled_input_through_the_input_kind_property():
    model, twin = build("espcn", 3), build("espcn", 3, space="hr")
    assert isinstance(inspect.getattr_static(ESPCN, "input_kind"), property)
    assert "input_kind" not in vars(twin) and "input_kind" not in vars(model)
    assert spec("espcn").input == "lr" and model.input_kind == "lr"
    assert twin.input_kind == "upsampled" and twin.srlib_config["space"] == "hr"
    assert model_convention(twin) == (True, "y") and output_factor(twin) == 1
    clone = rebuild("espcn", json.loads(json.dumps(twin.srlib_config)))
    assert clone.input_kind == "upsampled"


# --- activations are modules ---------------------------------------------------------------------

ACTIVATIONS = {
    "srcnn": ["ReLU"],
    "fsrcnn": ["PReLU"],
    "espcn": ["Tanh"],
    "vdsr": ["ReLU"],
    "drcn": ["ReLU"],
    "drrn": ["ReLU", "BatchNorm2d"],
    "lapsrn": ["LeakyReLU"],
    "edsr": ["ReLU", "PixelShuffle"],
    "mdsr": ["ReLU", "PixelShuffle"],
    "drn": ["LeakyReLU", "ReLU", "Sigmoid", "Upsample"],
}


def test_every_model_has_an_activation_list():
    assert set(ACTIVATIONS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_print_shows_the_activations(name):
    text = str(meta_build(name, spec(name).scales[0]))
    for activation in ACTIVATIONS[name]:
        assert f"{activation}(" in text, (name, activation)


def test_espcn_print_shows_its_parts():
    text = str(build("espcn", 3))
    assert text.count("Tanh()") == 2
    assert "(periodic_shuffling): PixelShuffle(upscale_factor=3)" in text
    assert "(periodic_shuffling): Identity()" in str(build("espcn", 3, space="hr"))


def test_fsrcnn_print_names_the_five_parts():
    text = str(build("fsrcnn", 3))
    for part in ("feature_extraction", "shrinking", "mapping", "expanding", "deconvolution"):
        assert f"({part}):" in text


FUNCTIONAL_ACTIVATION = re.compile(r"\b(F|functional|torch)\.(relu|relu_|tanh|sigmoid|leaky_relu|prelu|elu|gelu)\(")


@pytest.mark.parametrize("name", NAMES)
def test_no_activation_hidden_in_a_functional_call(name):
    source = inspect.getsource(sys.modules[spec(name).model_class.__module__])
    assert not FUNCTIONAL_ACTIVATION.search(source), FUNCTIONAL_ACTIVATION.search(source).group(0)


# --- checkpoints keep loading --------------------------------------------------------------------

# sha256 (first 16 hex digits) of the state_dict keys and shapes of every size at every scale.
# A change here means that checkpoints saved before no longer load.
LAYOUT_DIGESTS = {
    "srcnn": "01d51192a42a4a72",
    "fsrcnn": "6a0c8e5081b9b2cf",
    "espcn": "013784a7fa09ef4e",
    "vdsr": "092ef384b474c7e1",
    "drcn": "df9af166068e88ad",
    "drrn": "fe663ca6d15560d4",
    "lapsrn": "c37792ca9f882cb4",  # the paper size at x8 has 5 convolutions per level, as released
    "edsr": "913923c9656e116b",
    "mdsr": "464b2a07612a9c63",  # with the "baseline" size; the earlier sizes unchanged
    "drn": "5ae76702cd1b94f8",  # with the "small" size; the earlier sizes unchanged
}


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout_is_unchanged(name):
    s = spec(name)
    lines = []
    for size in s.sizes:
        for scale in s.scales:
            model = meta_build(name, scale, size=size)
            lines += [f"{size}/x{scale}/{key}:{shape}" for key, shape in layout(model)]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16] == LAYOUT_DIGESTS[name]
