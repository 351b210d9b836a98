"""composite.paste_back, the production paste-back of a chunk: masks made per chunk (or
template plans) give the frames full masks give; float crops are made as each original
makes them before they are pasted."""
import numpy as np


def test_chunk_masks_paste_like_full_masks_and_hold_only_the_chunk():
    """A video source's masks made per chunk (or, for a bare template, its per-frame
    template plans) give the same frames as masks made for every source frame up front,
    and only the chunk's masks are held."""
    import torch

    from talking_head.pipelines import composite as C
    from talking_head.pipelines.core.types import Source

    rng = np.random.default_rng(3)
    n, h, w = 6, 120, 160
    ctf = np.stack([np.array([[0.2, 0.01 * i, 20 + 3 * i], [-0.01 * i, 0.2, 10 + 2 * i], [0, 0, 1]])
                    for i in range(n)])
    src = Source(frames=torch.from_numpy(rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)), fps=25.0,
                 crops=torch.zeros(n, 512, 512, 3, dtype=torch.uint8), crop_to_frame=torch.from_numpy(ctf),
                 landmarks=torch.zeros(n, 478, 2), landmark_scheme="mediapipe478",
                 face_found=torch.ones(n, dtype=torch.bool))
    crops = torch.from_numpy(rng.random((4, 512, 512, 3), dtype=np.float32))
    # a bare template is planned from the template (no mask held); a feathered one from masks
    for spec, holds in ((C.BlendSpec(), False), (C.BlendSpec(crop_edge="ditto"), False),
                        (C.BlendSpec("custom", 0.6, crop_edge="ditto"), False),
                        (C.BlendSpec(feather=6.0), True)):
        full = C.blend_masks(src, spec)
        lazy = C.ChunkMasks(src, spec)
        plans_a, plans_b = {}, {}
        for index in ([0, 1, 2, 3], [4, 5, 5, 4], [1, 1, 0, 0]):
            a = C.paste_back(src.frames, crops, src.crop_to_frame, full, torch.tensor(index), spec,
                             plans=plans_a)
            b = C.paste_back(src.frames, crops, src.crop_to_frame, lazy, torch.tensor(index), spec,
                             plans=plans_b)
            np.testing.assert_array_equal(a, b)
            assert sorted(lazy.held) == (sorted(set(index)) if holds else [])
            # plans are kept for the source frames used more than once
            assert sorted(plans_b) == sorted({i for i in index if index.count(i) > 1})
            assert not np.array_equal(a[0], src.frames[index[0]].numpy())  # something was pasted


def test_family_crops_are_made_as_the_originals_make_them():
    """paste_back turns float 0..1 crops into what each original pastes, one at a time:
    clamp * 255 in float32 (Ditto) and that truncated to uint8 (LivePortrait)."""
    import torch

    from talking_head.pipelines.composite import pasteback

    rng = np.random.default_rng(12)
    crop = torch.from_numpy(rng.uniform(-0.1, 1.1, (64, 64, 3)).astype(np.float32))
    crop[0, :8, 0] = torch.tensor([0.0, 1.0, 0.5, 1 / 255, 254.9999 / 255, -0.0, 0.2, 0.7])
    scaled = crop.clamp(0.0, 1.0) * 255.0
    np.testing.assert_array_equal(pasteback._family_crop(crop, "ditto"), scaled.numpy())
    np.testing.assert_array_equal(pasteback._family_crop(crop, "liveportrait"),
                                  scaled.to(torch.uint8).numpy())
    np.testing.assert_array_equal(pasteback._family_crop(crop.half(), "ditto"),
                                  (crop.half().float().clamp(0.0, 1.0) * 255.0).numpy())
    as_u8 = torch.from_numpy(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    np.testing.assert_array_equal(pasteback._family_crop(as_u8, "ditto"), as_u8.numpy())
