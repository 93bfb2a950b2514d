"""Subject choice: the person nearest the camera and the centre, kept while seen, on composed
frames of two people (the bundled photo at two sizes) and on the chooser's own rules."""

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.keypoints import KEYPOINT_INDEX
from engine.perception.person_detector import PersonDetector
from engine.perception.subject import SubjectChooser, subject_region
from engine.sample_media import sample_source_path


def test_the_largest_face_wins_then_centre_breaks_ties():
    chooser = SubjectChooser()
    small, large = (500, 100, 540, 150), (100, 100, 200, 220)
    assert chooser([small, large], 480, 640) == large
    chooser.reset()
    left, centre = (10, 10, 110, 110), (270, 10, 368, 108)  # equally large (within the tie)
    assert chooser([left, centre], 480, 640) == centre


def test_the_subject_stays_until_lost_for_patience_frames():
    chooser = SubjectChooser(patience=3)
    subject, bigger = (100, 100, 160, 170), (300, 50, 500, 280)
    assert chooser([subject], 480, 640) == subject
    moved = (110, 104, 170, 174)
    assert chooser([bigger, moved], 480, 640) == moved  # a larger newcomer does not take over
    assert chooser([bigger], 480, 640) is None and chooser.subject == moved  # briefly out of sight
    assert chooser([bigger], 480, 640) is None
    assert chooser([bigger], 480, 640) == bigger  # lost for 3 frames: choose again


def test_region_and_arguments():
    assert subject_region((100, 50, 140, 100), 480, 640) == (20, 0, 220, 480)
    with pytest.raises(InputError):
        SubjectChooser(patience=0)


def _two_people(small_x: int) -> np.ndarray:
    """The near person (large, left) filmed with low contrast, so mediapipe's own detector
    prefers the far person (small, upper right): the case where it dressed the wrong one."""
    photo = cv2.cvtColor(cv2.imread(str(sample_source_path())), cv2.COLOR_BGR2RGB)  # 512x512
    frame = np.full((480, 640, 3), 120, np.uint8)
    big = cv2.resize(photo, (400, 400), interpolation=cv2.INTER_AREA).astype(np.float32)
    big = cv2.GaussianBlur(big, (9, 9), 0) * 0.4 + 120 * 0.6
    frame[80:480, 0:400] = big.astype(np.uint8)
    frame[60:280, small_x : small_x + 190] = cv2.resize(photo, (190, 220))
    return frame


def _noses(choose_subject: bool) -> np.ndarray:
    nose = KEYPOINT_INDEX["nose"]
    out = []
    with PersonDetector(choose_subject=choose_subject) as detector:
        for i, x in enumerate((430, 425, 420, 435, 440, 430)):  # the far person moves
            detection = detector(_two_people(x), i / 24)
            assert detection.person_found
            out.append(detection.keypoints[nose, :2])
    return np.array(out)


def test_two_people_the_near_one_is_dressed_and_the_choice_holds():
    assert (_noses(choose_subject=False)[:, 0] > 400).all()  # mediapipe alone: the far one
    noses = _noses(choose_subject=True)
    assert (noses[:, 0] < 400).all(), noses  # the near person, every frame
    assert np.ptp(noses[:, 0]) < 20, noses  # and it does not jump between people


def _face_runs(frames: list[np.ndarray]) -> int:
    """How many of ``frames`` the detector ran face detection on."""
    with PersonDetector() as detector:
        faces, calls = detector._faces, []
        process = faces.process
        faces.process = lambda rgb: calls.append(1) or process(rgb)
        for i, frame in enumerate(frames):
            assert detector(frame, i / 24).person_found
    return len(calls)


def test_face_detection_thins_out_while_the_subject_is_alone():
    from engine.perception.person_detector import FACE_EVERY

    photo = cv2.cvtColor(cv2.imread(str(sample_source_path())), cv2.COLOR_BGR2RGB)
    alone = [cv2.resize(photo, (640, 480))] * 7
    assert _face_runs(alone) == len(range(0, 7, FACE_EVERY)) < 7  # frames 0, 3, 6
    two = [_two_people(430 - i) for i in range(4)]
    assert _face_runs(two) == 4  # several faces: every frame, the region follows the subject
