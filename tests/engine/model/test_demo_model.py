"""The bundled demo generator loads on a fresh install and meets issue 5's bar on held-out clips:
better than pasting the warped garment in the try-on region, and better than its own per-frame
run (T = 1) both in the region and on flicker. (The README's table is the same on 16 clips.)"""

from engine.model.weights import load_generator
from engine.training.evaluate import evaluate


def test_demo_loads_and_beats_both_baselines_on_held_out_clips():
    model = load_generator("demo")
    assert model.config.name == "lite" and not model.training
    scores = evaluate(model, clips=8)
    model_, paste, per_frame = scores["model"], scores["paste"], scores["per_frame"]
    assert model_["psnr_region"] > paste["psnr_region"] + 0.5, scores
    assert model_["psnr"] > paste["psnr"], scores
    assert model_["psnr_region"] > per_frame["psnr_region"], scores
    assert model_["flicker"] < per_frame["flicker"] < paste["flicker"], scores
