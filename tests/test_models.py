import pytest
import torch

from medbench.errors import ConfigError
from medbench.models import build_model, list_models


@pytest.mark.parametrize("name", ["smallcnn", "resnet18", "efficientnet_b0", "monai_densenet121"])
def test_two_class_head(name):
    torch.manual_seed(0)
    model = build_model(name, image_size=64).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 2)


def test_vit_takes_the_image_size():
    model = build_model("vit_b_16", image_size=32).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 2)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = build_model("resnet18", image_size=64).state_dict()
    torch.manual_seed(3)
    b = build_model("resnet18", image_size=64).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_model_suggests_closest():
    with pytest.raises(ConfigError, match="resnet18"):
        build_model("resnet81")
    assert "smallcnn" in list_models()
