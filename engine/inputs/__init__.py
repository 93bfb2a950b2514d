"""The generator's inputs, built from a person's keypoints and mask: the crop around the person
(:mod:`~engine.inputs.person_crop`), pose maps (:mod:`~engine.inputs.pose_maps`), the try-on
region and greyed background (:mod:`~engine.inputs.tryon_region`), the garment's mask, landmarks
and thin-plate-spline warp (:mod:`~engine.inputs.garment`), and the one code path that assembles
them per frame or per clip (:mod:`~engine.inputs.frame_inputs`), shared by the runtime and
training. Torch tensors at model size. May import the model (for its config), perception,
``kernels`` and the bottom modules of ``engine``; never backends, runtime or training.
"""
