"""kerasmed.models.backbones: names, shapes, weights handling."""

import numpy as np
import pytest

from kerasmed.models.backbones import backbone_names, build_small_cnn, get_backbone


def test_small_cnn_shapes_and_layer_names():
    cnn = build_small_cnn((32, 32, 1), filters=(4, 8), feature_dim=6, name="enc")
    assert cnn.output_shape == (None, 6)
    assert [layer.name for layer in cnn.layers[1:4]] == ["enc_conv1", "enc_bn1", "enc_relu1"]
    out = cnn.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    assert out.shape == (2, 6) and np.all(out >= 0)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "MobileNetV3Small", "mobilenetv3small"])
def test_keras_applications_by_any_spelling(name):
    cnn = get_backbone(name, (32, 32, 3), weights=None, trainable=False)
    assert cnn.output_shape[0] is None and cnn.output_shape[-1] == 576
    assert not cnn.trainable and cnn.trainable_weights == []


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="Received: name='alexnet9'"):
        get_backbone("alexnet9", (32, 32, 3))
    assert "InceptionV3" in backbone_names() and "small_cnn" in backbone_names()


def test_missing_local_weights_file():
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        get_backbone("inception_v3", (75, 75, 3), weights="nope.h5")
    with pytest.raises(FileNotFoundError, match="weights=None"):
        get_backbone("small_cnn", (32, 32, 1), weights="nope.weights.h5")


def test_imagenet_download_failure_names_the_way_out(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError) as info:
        get_backbone("inception_v3", (75, 75, 3), weights="imagenet")
    message = str(info.value)
    assert "weights=None" in message and "network is unreachable" in message


def test_small_cnn_local_weights_round_trip(tmp_path):
    cnn = get_backbone("small_cnn", (16, 16, 1), filters=(4,), feature_dim=3)
    path = str(tmp_path / "cnn.weights.h5")
    cnn.save_weights(path)
    again = get_backbone("small_cnn", (16, 16, 1), weights=path, filters=(4,), feature_dim=3)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), cnn.predict(x, verbose=0), atol=1e-6)
