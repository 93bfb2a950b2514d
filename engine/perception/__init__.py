"""What the camera sees: the person in a frame. :mod:`~engine.perception.person_detector` runs
mediapipe's bundled pose and segmentation models and maps the pose to the 18 OpenPose keypoints
(:mod:`engine.keypoints`), :mod:`~engine.perception.subject` chooses whom to dress when several
people are in view, :mod:`~engine.perception.motion_stabilizer` keeps the keypoints (and the
person mask) on the person's pixels from frame to frame (:mod:`~engine.perception.one_euro` is
the plain filter it replaces), and
:mod:`~engine.perception.frame_check` says what a frame is. Works on full frames, on the host
(mediapipe runs on the CPU). May import ``kernels``, :mod:`engine.errors` and
:mod:`engine.keypoints`; not the model, the inputs, the backends or the runtime.
"""
