"""End-to-end stream FPS on the bundled 640x480 clip (latency mode, onnxruntime), CPU time per
frame, minor page faults per frame and pipeline efficiency (FPS x CPU ms per frame / (1000 x
cores)), as one JSON line.

Run from the root of any checkout (``python bench/stream_fps.py [POSE_EVERY]``), e.g. an older
commit in a ``git worktree`` and this one, one after the other, to compare before and after.
``POSE_EVERY``: the person detector's pose keyframe spacing
(:class:`engine.perception.person_detector.PersonDetector`; default: the detector's default).
"""

import json
import os
import resource
import sys
import time

sys.path.insert(0, ".")  # the checkout this is run from, not the installed package

from engine import TryOnSession  # noqa: E402
from engine.sample_media import sample_clip_path, sample_garment_path  # noqa: E402


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv: list[str]) -> None:
    tracker = None
    if argv:  # imported here: an older checkout's detector may not take the argument
        from engine.perception.person_detector import PersonDetector

        tracker = PersonDetector(pose_every=int(argv[0]))
    with TryOnSession("demo", backend="onnxruntime", mode="latency", tracker=tracker) as session:
        session.set_garment(sample_garment_path())
        list(session.stream(sample_clip_path(), max_frames=16))  # warm-up: export, graphs
        session.reset_stats()
        faults0, cpu0, t0 = _page_faults(), _cpu_s(), time.perf_counter()
        frames = sum(1 for _ in session.stream(sample_clip_path()))
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        faults = _page_faults() - faults0
        stages = session.stats()["stages"]
    fps, cpu_ms = frames / wall, cpu / frames * 1e3
    print(json.dumps({
        "frames": frames,
        "pose_every": getattr(session.tracker, "pose_every", None),
        "load": [round(v, 2) for v in os.getloadavg()],
        "fps": round(fps, 2),
        "cpu_ms_per_frame": round(cpu_ms, 1),
        "efficiency": round(fps * cpu_ms / (1000 * (os.cpu_count() or 1)), 3),
        "page_faults_per_frame": round(faults / frames),
        "stages_p50_ms": {name: round(s["p50_ms"], 1) for name, s in stages.items()},
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
