"""Road scenario stages on tiny inputs: class map, codec layers, metrics, data, models,
training losses, MCS ladder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.common import ConfigError
from gsc_semantic.scenarios.layered_link import plan_layers
from gsc_semantic.scenarios.road import (
    UEP_MARGIN_DB,
    colorize,
    load_road_images,
    road_ladder,
)
from gsc_semantic.scenarios.road_metrics import (
    box_iou,
    boxes_from_mask,
    detection_counts,
    f1_score,
)
from gsc_semantic.scenarios.road_models import (
    RoadCodec,
    RoadCodecConfig,
    RoadSegmenter,
    class_grid,
    class_grid_bits,
    pack_class_grid,
    unpack_class_grid,
)
from gsc_semantic.scenarios.road_train import (
    LOSS_SEGMENTER_SEED_OFFSET,
    LOSS_SEGMENTER_WIDTH,
    _class_weights,
    _codec_losses,
    load_codec,
    load_segmenter,
    render_scenes,
    save_model,
    train_all,
    train_codec,
    train_loss_segmenter,
    train_segmenter,
)


@pytest.mark.parametrize("grid", [4, 5, 16])
def test_class_map_round_trip(grid):
    cells = torch.randint(0, 5, (3, grid, grid), generator=torch.Generator().manual_seed(1))
    bits = pack_class_grid(cells)
    assert bits.shape == (3, class_grid_bits(grid)) and set(np.unique(bits)) <= {0, 1}
    assert torch.equal(unpack_class_grid(bits, grid), cells)
    assert class_grid_bits(16) == 598          # 7 bits per 3 cells, 3 for the leftover


def test_class_map_bit_errors_stay_in_range():
    bits = np.ones((1, class_grid_bits(4)), dtype=np.uint8)   # code 127 > 124
    cells = unpack_class_grid(bits, 4)
    assert cells.min() >= 0 and cells.max() <= 4


def test_class_grid_keeps_small_objects():
    mask = torch.ones(1, 8, 8, dtype=torch.long)     # road
    mask[0, 0, 0:2] = 4                              # 2 pedestrian pixels in cell (0, 0)
    mask[0, 5, 5] = 3                                # 1 vehicle pixel: below the minimum
    mask[0, 4:8, 0:3] = 0                            # background majority in cell (1, 0)
    assert class_grid(mask, 2).tolist() == [[[4, 1], [0, 1]]]
    with pytest.raises(ValueError):
        class_grid(mask, 3)


def test_codec_layers_round_trip_and_erasures():
    torch.manual_seed(0)
    codec = RoadCodec(RoadCodecConfig(size=32, grid=8, latent_grid=4, layer_channels=[1, 2],
                                      width=32)).eval()
    x = torch.rand(2, 3, 32, 32)
    cells = torch.randint(0, 5, (2, 8, 8))
    layers = codec.encode_layers(x, cells)
    assert [a.shape for a in layers] == [(2, b) for b in codec.layer_bits]
    assert codec.layer_bits == [class_grid_bits(8), 32, 64]
    none = torch.zeros(2, 3, dtype=torch.bool)
    out = codec.decode_layers(layers, none)
    with torch.no_grad():
        q = codec.dequantize(codec.quantize(codec.latent(x)))
        ref = codec.regenerate(cells, torch.ones(2), q, torch.ones(2, 2))
    assert torch.allclose(out, ref, atol=1e-5)
    # erased content is ignored: garbage in an erased layer changes nothing ...
    erased = torch.tensor([[True, False, True], [True, False, True]])
    garbage = [1 - a for a in layers[:1]] + layers[1:2] + [1 - layers[2]]
    assert torch.allclose(codec.decode_layers(layers, erased),
                          codec.decode_layers(garbage, erased), atol=1e-6)
    # ... and a layer after an erased one is not used
    gap = torch.tensor([[False, True, False]] * 2)
    only_map = torch.tensor([[False, True, True]] * 2)
    assert torch.allclose(codec.decode_layers(layers, gap), codec.decode_layers(layers,
                                                                                 only_map))
    assert not torch.allclose(out, codec.decode_layers(layers, only_map))


def test_detection_metrics():
    m = torch.zeros(10, 10, dtype=torch.long)
    m[1:3, 1:4] = 3
    m[6:9, 6:7] = 4
    m[0, 9] = 4                                  # 1 pixel: below min_pixels
    boxes = boxes_from_mask(m)
    assert sorted(boxes) == [(3, 1, 1, 4, 3), (4, 6, 6, 7, 9)]
    assert box_iou((3, 0, 0, 2, 2), (3, 1, 0, 3, 2)) == pytest.approx(1 / 3)
    ref = [[(3, 1, 1, 4, 3), (3, 7, 0, 9, 2)]]
    assert detection_counts([boxes], ref) == (1, 1, 1)
    assert f1_score(1, 1, 1) == pytest.approx(0.5) and f1_score(0, 0, 0) == 1.0
    # a wrong class never matches
    assert detection_counts([[(4, 1, 1, 4, 3)]], [[(3, 1, 1, 4, 3)]]) == (0, 1, 1)


def test_procedural_images_come_with_truth():
    images, masks, boxes = load_road_images(2, 64, seed=0)
    assert images.shape == (2, 3, 64, 64) and masks.shape == (2, 64, 64)
    assert len(boxes) == 2 and all(b[0] in (3, 4) for bb in boxes for b in bb)
    assert colorize(masks).shape == (2, 3, 64, 64)


def test_user_folder_images_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    images, masks, boxes = load_road_images(4, 64, images_dir=str(tmp_path))
    assert images.shape == (1, 3, 64, 64) and masks is None and boxes is None
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ConfigError, match="broken.jpg"):
        load_road_images(4, 64, images_dir=str(tmp_path))
    (tmp_path / "broken.jpg").unlink()
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(ConfigError, match="smaller"):
        load_road_images(4, 64, images_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        load_road_images(4, 64, images_dir=str(tmp_path / "missing"))


def test_training_steps_and_safetensors_round_trip(tmp_path):
    torch.set_num_threads(1)
    images, masks = render_scenes(8, 32, seed=0)
    seg, seg_cfg = train_segmenter(images, masks, steps=2, batch=4)
    cfg = RoadCodecConfig(size=32, grid=8, latent_grid=4, layer_channels=[1, 1], width=32)
    codec, codec_cfg = train_codec(images, masks, seg, steps=2, batch=4, config=cfg)
    save_model(seg, seg_cfg, str(tmp_path / "seg"))
    save_model(codec, codec_cfg, str(tmp_path / "codec"))
    seg2, codec2 = load_segmenter(str(tmp_path / "seg")), load_codec(str(tmp_path / "codec"))
    with torch.no_grad():
        assert torch.equal(seg(images[:2]), seg2(images[:2]))
        assert isinstance(seg2, RoadSegmenter) and seg2(images[:1]).shape == (1, 5, 32, 32)
    cells = class_grid(masks[:2], 8)
    a = codec.decode_layers(codec.encode_layers(images[:2], cells), torch.zeros(2, 3, dtype=bool))
    b = codec2.decode_layers(codec2.encode_layers(images[:2], cells), torch.zeros(2, 3,
                                                                                  dtype=bool))
    assert torch.equal(a, b)
    assert codec_cfg["training"]["command"].startswith("gsc scenario road --train")


def _tiny_codec_config() -> RoadCodecConfig:
    return RoadCodecConfig(size=32, grid=8, latent_grid=4, layer_channels=[1, 1], width=32)


def _task_loss(codec, loss_seg, images, masks, weight) -> float:
    cells = class_grid(masks, codec.config.grid)
    n = images.shape[0]
    with torch.no_grad():
        return _codec_losses(codec, loss_seg, images, masks, cells, torch.ones(n),
                             torch.ones(n, 2), weight)[2].item()


def test_task_loss_decreases_on_a_tiny_batch():
    torch.set_num_threads(1)
    images, masks = render_scenes(4, 32, seed=0)
    loss_seg, _ = train_loss_segmenter(images, masks, steps=40, batch=4)
    weight = _class_weights(masks)
    torch.manual_seed(0)
    untrained = RoadCodec(_tiny_codec_config())   # train_codec's initial weights (seed 0)
    before = _task_loss(untrained, loss_seg, images, masks, weight)
    with_task, cfg = train_codec(images, masks, loss_seg, steps=40, batch=4,
                                 task_weight=20.0, config=_tiny_codec_config())
    without, _ = train_codec(images, masks, loss_seg, steps=40, batch=4, task_weight=0.0,
                             config=_tiny_codec_config())
    after = _task_loss(with_task, loss_seg, images, masks, weight)
    assert after < 0.5 * before                    # measured 0.47 -> 0.13
    assert after < 0.85 * _task_loss(without, loss_seg, images, masks, weight)   # 0.19
    assert cfg["training"]["task_target"] == "training ground-truth masks"


def test_loss_segmenter_is_not_the_evaluation_segmenter(tmp_path):
    torch.set_num_threads(1)
    images, masks = render_scenes(4, 32, seed=3)
    _, eval_cfg = train_segmenter(images, masks, steps=1, seed=3, batch=2)
    loss_seg, loss_cfg = train_loss_segmenter(images, masks, steps=1, seed=3, batch=2)
    assert loss_seg.width == LOSS_SEGMENTER_WIDTH != eval_cfg["width"]
    assert loss_cfg["training"]["seed"] == 3 + LOSS_SEGMENTER_SEED_OFFSET != 3
    # train_all records the loss segmenter in the codec's config and ships only the
    # evaluation segmenter
    seg_dir, codec_dir = train_all(str(tmp_path), seg_steps=1, codec_steps=1, scenes=4,
                                   size=32, seed=3)
    doc = json.loads((tmp_path / "road" / "config.json").read_text())
    used = doc["training"]["loss_segmenter"]
    shipped = load_segmenter(seg_dir)
    assert used["width"] == LOSS_SEGMENTER_WIDTH != shipped.width
    assert used["seed"] != json.loads((tmp_path / "road_segmenter" / "config.json")
                                      .read_text())["training"]["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["road", "road_segmenter"]


def test_road_ladder_brings_all_layers_in_early():
    bits = [598, 256, 512, 768]
    ladder = road_ladder("awgn", 3072, bits)
    plan = plan_layers(bits, 3072, "awgn", ladder)          # valid: fits, non-decreasing
    generic = plan_layers(bits, 3072, "awgn", "adaptive")
    assert plan.total_channel_uses <= 3072 and plan.layers_sent == 4
    # the class map stays within the margin of the most robust MCS ...
    assert plan.thresholds_db[0] <= generic.thresholds_db[0] + UEP_MARGIN_DB
    # ... and every latent layer decodes well below where the generic ladder's top one does
    assert max(plan.thresholds_db[1:]) < generic.thresholds_db[-1] - 5
    assert road_ladder("awgn", 3072, bits, margin_db=0.0)[0] == generic.mcs[0].key
    with pytest.raises(ConfigError, match="bandwidth ratio"):
        road_ladder("awgn", 200, bits)
