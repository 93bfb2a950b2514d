"""Pose keyframes (``PersonDetector(pose_every=N)``): the CPU they save and what they cost in
keypoint accuracy and garment stability, on the bundled 640x480 clip.

Run from a checkout root: ``python bench/pose_keyframes.py [N] [--passes P] [--no-garment]``
(``N``: the keyframed detector's ``pose_every``, default the detector's default). Prints one
JSON object per section, each with the load average (``os.getloadavg()``) when it ran:

* ``detector_cpu`` / ``process_cpu``: CPU milliseconds per frame (``time.process_time``: every
  thread of this process, mediapipe's graph threads and onnxruntime's included) of the detector
  alone and of :meth:`TryOnSession.process` (demo model, onnxruntime), ``pose_every=1`` and
  ``N`` interleaved frame by frame (one detector or session each, the same frame to both in
  turn) over ``P`` passes of the clip played forwards and backwards (no cut), after a warm-up
  pass; mean and p50 per frame, the ratio ``N`` / 1, the fraction of frames the pose model ran
  on, and for ``process`` the detector's share.
* ``keypoints``: the keyframed keypoints against the every-frame ones, pixels (both present,
  confidence >= ``CONFIDENCE_MIN``), mean / p95 / max per keypoint group (torso: neck, shoulders,
  hips; head; limbs: elbows, wrists, knees, ankles), over all frames and over the frames
  without the pose model only (on the others the two runs differ only where mediapipe's own
  tracking, fed other frames before, answers differently), and the person masks' IoU (> 0.5) on
  the frames without the pose model; on the clip at its own speed and at 2 and 3 times it
  (every 2nd / 3rd frame: the camera moves 2 or 3 times as far per frame); and the head group
  on a sequence where the head tilts about the neck (:func:`head_tilt_frames`, the clip has no
  part moving against the torso), also against the known truth.
* ``garment``: :func:`bench.garment_stability.garment_stability` (32 frames from frame 0, 16 and
  32) with each detector: the garment's temporal std against its target.

CPU time, not wall time, is the figure: the development VM has 2 cores shared with other jobs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, ".")  # the checkout this is run from, not the installed package

from engine import TryOnSession  # noqa: E402
from engine.keypoints import CONFIDENCE_MIN, KEYPOINT_INDEX  # noqa: E402
from engine.perception.motion_stabilizer import KEYPOINT_GROUPS  # noqa: E402
from engine.perception.person_detector import DEFAULT_POSE_EVERY, PersonDetector  # noqa: E402
from engine.sample_media import (  # noqa: E402
    read_sample_clip,
    sample_clip_camera,
    sample_garment_path,
    sample_source_path,
)

FPS = 24.0  # the clip's rate
TILT_PIVOT = (215.0, 205.0)  # the head turns about the neck, source-photo pixels


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _ping_pong(clip: list[np.ndarray], passes: int) -> list[np.ndarray]:
    """The clip forwards, backwards, forwards ... (``passes`` times, no repeated end frame)."""
    out = list(clip)
    for p in range(1, passes):
        out += (clip[::-1] if p % 2 else clip)[1:]
    return out


class _CpuTimed:
    """A detector whose every call's CPU time (``time.process_time``) is recorded."""

    def __init__(self, detector: PersonDetector) -> None:
        self.detector = detector
        self.cpu_s: list[float] = []
        self.pose_ran: list[bool] = []

    def __call__(self, frame, timestamp_s):
        c0 = time.process_time()
        detection = self.detector(frame, timestamp_s)
        self.cpu_s.append(time.process_time() - c0)
        self.pose_ran.append(detection.pose_ran)
        return detection

    def reset(self) -> None:
        self.detector.reset()

    def close(self) -> None:
        self.detector.close()


def _summary(cpu_s: list[float]) -> dict:
    ms = np.asarray(cpu_s) * 1e3
    return {"mean_ms": round(float(ms.mean()), 2), "p50_ms": round(float(np.median(ms)), 2)}


def detector_cpu(n: int, passes: int) -> dict:
    clip = read_sample_clip()
    frames = _ping_pong(clip, passes)
    timed = {k: _CpuTimed(PersonDetector(pose_every=k)) for k in (1, n)}
    for i, frame in enumerate(clip):  # warm-up
        for det in timed.values():
            det(frame, i / FPS)
    load0 = _load()
    for det in timed.values():
        det.reset()
        det.cpu_s.clear()
        det.pose_ran.clear()
    for i, frame in enumerate(frames):
        for det in timed.values():
            det(frame, i / FPS)
    out = {"section": "detector_cpu", "frames": len(frames), "load": [load0, _load()]}
    for k, det in timed.items():
        pose_frames = round(float(np.mean(det.pose_ran)), 3)
        out[f"pose_every_{k}"] = {**_summary(det.cpu_s), "pose_frames": pose_frames}
        det.close()
    out["ratio_mean"] = round(out[f"pose_every_{n}"]["mean_ms"] / out["pose_every_1"]["mean_ms"], 3)
    return out


def process_cpu(n: int, passes: int) -> dict:
    clip = read_sample_clip()
    frames = _ping_pong(clip, passes)
    timed = {k: _CpuTimed(PersonDetector(pose_every=k)) for k in (1, n)}
    sessions = {k: TryOnSession("demo", backend="onnxruntime", tracker=timed[k]) for k in timed}
    cpu: dict[int, list[float]] = {k: [] for k in timed}
    try:
        for s in sessions.values():
            s.set_garment(sample_garment_path())
        for i, frame in enumerate(clip[:16]):  # warm-up: graphs exported, mediapipe warm
            for s in sessions.values():
                s.process(frame, timestamp_s=i / FPS)
        load0 = _load()
        for det in timed.values():
            det.cpu_s.clear()
            det.pose_ran.clear()
        start = 16  # timestamps go on from the warm-up; the ping-pong clip has no cut
        for i, frame in enumerate(frames):
            for k, s in sessions.items():
                c0 = time.process_time()
                s.process(frame, timestamp_s=(start + i) / FPS)
                cpu[k].append(time.process_time() - c0)
    finally:
        for s in sessions.values():
            s.close()
    out = {"section": "process_cpu", "frames": len(frames), "load": [load0, _load()]}
    for k in timed:
        det_ms = float(np.mean(timed[k].cpu_s)) * 1e3
        pose_frames = round(float(np.mean(timed[k].pose_ran)), 3)
        out[f"pose_every_{k}"] = {**_summary(cpu[k]), "detector_mean_ms": round(det_ms, 2),
                                  "pose_frames": pose_frames}  # fmt: skip
    out["ratio_mean"] = round(out[f"pose_every_{n}"]["mean_ms"] / out["pose_every_1"]["mean_ms"], 3)
    cap = {k: round(2000.0 / out[f"pose_every_{k}"]["mean_ms"], 1) for k in timed}
    out["fps_cap_2_cores"] = cap  # 2 cores' CPU seconds / CPU per frame: the stream's ceiling
    return out


def _groups_distance(ref, got, skipped_only: bool = False) -> dict:
    out = {}
    for group, names in KEYPOINT_GROUPS.items():
        sel = [KEYPOINT_INDEX[name] for name in names]
        dist = []
        for a, b in zip(ref, got, strict=True):
            if a.keypoints is None or b.keypoints is None or (skipped_only and b.pose_ran):
                continue
            ka, kb = a.keypoints[sel], b.keypoints[sel]
            both = (ka[:, 2] >= CONFIDENCE_MIN) & (kb[:, 2] >= CONFIDENCE_MIN)
            dist.extend(np.linalg.norm(ka[both, :2] - kb[both, :2], axis=1))
        d = np.asarray(dist)
        out[group] = {"n": len(d)} if len(d) == 0 else {
            "n": len(d), "mean_px": round(float(d.mean()), 2),
            "p95_px": round(float(np.percentile(d, 95)), 2), "max_px": round(float(d.max()), 2),
        }  # fmt: skip
    return out


def head_tilt_frames(amplitude_deg: float, period: float, count: int = 48):
    """``(frames, motion)``: the clip's camera over the source photo whose head (above the
    collar ring, blended over 30 rows) tilts about the neck by ``amplitude_deg * sin(2 pi i /
    period)``, with Gaussian noise of 2 grey levels; ``motion[i]`` the ``(3, 3)`` map from the
    photo to frame ``i``'s pixels for a point of the head."""
    photo = cv2.cvtColor(cv2.imread(str(sample_source_path())), cv2.COLOR_BGR2RGB)
    photo = photo.astype(np.float32)  # (512, 512, 3)
    rows = np.arange(photo.shape[0], dtype=np.float32)[:, None, None]
    weight = np.clip((215.0 - rows) / 30.0, 0.0, 1.0)  # 1: the head
    cams = sample_clip_camera()
    rng = np.random.default_rng(0)
    frames, motion = [], []
    for i in range(count):
        tilt = cv2.getRotationMatrix2D(
            TILT_PIVOT, amplitude_deg * np.sin(2 * np.pi * i / period), 1
        )
        head = cv2.warpAffine(photo, tilt, photo.shape[1::-1], flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT101)  # fmt: skip
        source = weight * head + (1.0 - weight) * photo
        cam = cams[i % len(cams)]
        img = cv2.warpAffine(source, cam, (640, 480), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)  # fmt: skip
        img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        motion.append(np.vstack([cam, [0, 0, 1]]) @ np.vstack([tilt, [0, 0, 1]]))
    return frames, np.stack(motion)


def head_tilt(n: int, amplitude_deg: float = 12.0, period: float = 16.0) -> dict:
    """The head group on :func:`head_tilt_frames`: against the every-frame keypoints, and both
    against the truth (the every-frame head keypoints of frame 0 moved by the known motion)."""
    frames, motion = head_tilt_frames(amplitude_deg, period)
    runs = {}
    for k in (1, n):
        with PersonDetector(pose_every=k) as det:
            runs[k] = [det(f, i / FPS) for i, f in enumerate(frames)]
    head = [KEYPOINT_INDEX[name] for name in KEYPOINT_GROUPS["head"]]
    back = np.linalg.inv(motion[0])
    base = runs[1][0].keypoints[head, :2] @ back[:2, :2].T + back[:2, 2]  # photo pixels
    truth = np.einsum("tij,kj->tki", motion[:, :2, :2], base) + motion[:, None, :2, 2]
    out = {"amplitude_deg": amplitude_deg, "period_frames": period,
           "pose_frames": round(float(np.mean([d.pose_ran for d in runs[n]])), 3),
           "head_vs_every_frame": _groups_distance(runs[1], runs[n])["head"]}  # fmt: skip
    for k, run in runs.items():
        err = np.stack([np.linalg.norm(d.keypoints[head, :2] - t, axis=1)
                        for d, t in zip(run, truth, strict=True)])  # fmt: skip
        out[f"head_vs_truth_pose_every_{k}"] = {
            "mean_px": round(float(err.mean()), 2),
            "p95_px": round(float(np.percentile(err, 95)), 2),
        }
    return out


def keypoints(n: int) -> dict:
    clip = read_sample_clip()
    out = {"section": "keypoints", "load": _load()}
    for speed in (1, 2, 3):
        frames = clip[::speed]
        runs = {}
        for k in (1, n):
            with PersonDetector(pose_every=k) as det:
                runs[k] = [det(f, i * speed / FPS) for i, f in enumerate(frames)]
        ref, got = runs[1], runs[n]
        ious = []
        for a, b in zip(ref, got, strict=True):
            if not b.pose_ran and a.person_mask is not None and b.person_mask is not None:
                ma, mb = a.person_mask > 0.5, b.person_mask > 0.5
                ious.append((ma & mb).sum() / max((ma | mb).sum(), 1))
        out[f"speed_{speed}x"] = {
            "frames": len(frames),
            "pose_frames": round(float(np.mean([d.pose_ran for d in got])), 3),
            "all_frames": _groups_distance(ref, got),
            "skipped_frames": _groups_distance(ref, got, skipped_only=True),
            "mask_iou_skipped": {"mean": round(float(np.mean(ious)), 4),
                                 "min": round(float(np.min(ious)), 4)} if ious else None,
        }  # fmt: skip
    out["head_tilt_fast"] = head_tilt(n, 12.0, 16.0)
    out["head_tilt_slow"] = head_tilt(n, 6.0, 24.0)
    out["load_end"] = _load()
    return out


def garment(n: int) -> dict:
    import bench.garment_stability as gs

    out = {"section": "garment", "load": _load()}
    original = gs.PersonDetector
    try:
        for k in (1, n):
            gs.PersonDetector = functools.partial(PersonDetector, pose_every=k)
            for start in (0, 16, 32):
                s = gs.garment_stability(32, start=start)
                out[f"pose_every_{k}_from_{start}"] = {
                    "garment_std": round(s.garment_std, 2), "target": round(s.target, 2),
                    "input_std": round(s.input_std, 2),
                }  # fmt: skip
    finally:
        gs.PersonDetector = original
    out["load_end"] = _load()
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pose_every", nargs="?", type=int, default=DEFAULT_POSE_EVERY)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--no-garment", action="store_true")
    parser.add_argument("--only", choices=("detector", "process", "keypoints", "garment"))
    args = parser.parse_args(argv)
    n = args.pose_every
    sections = {"detector": detector_cpu, "process": process_cpu, "keypoints": keypoints,
                "garment": garment}  # fmt: skip
    for name, fn in sections.items():
        if args.only not in (None, name) or (name == "garment" and args.no_garment):
            continue
        result = fn(n, args.passes) if name in ("detector", "process") else fn(n)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
