"""The bundled demo generator loads on a fresh install and beats the paste baseline."""

from engine.evaluation import evaluate
from engine.weights import load_generator


def test_demo_loads_and_beats_paste_on_held_out_clips():
    model = load_generator("demo")
    assert model.config.name == "lite" and not model.training
    scores = evaluate(model, clips=3)
    assert scores["model"]["psnr_region"] > scores["paste"]["psnr_region"] + 0.5, scores
    assert scores["model"]["psnr"] > scores["paste"]["psnr"], scores
