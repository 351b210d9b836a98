"""Face-parsing masks and paste-back (spec §1.4), bit-exact with the reference.

Per source frame (all from the ORIGINAL frame, so everything here is cacheable):

1. ``blend_crop_box``: a square of half-size ``int(max(w,h)//2 * expand)`` around the
   face box centre; it may leave the frame (outside = black, as PIL's crop).
2. BiSeNet parses that square resized to 512 (PIL bilinear) -> class map.
3. ``mode_mask``: ``raw`` = skin+mouth+lips, ``neck`` adds neck, ``jaw`` (v1.5) widens
   the skin downwards with an asymmetric 33x33 dilation, narrows it at the outer
   cheeks (``left/right_cheek_width`` from the centre column keep the dilated
   version), removes the nose and adds mouth and lips.
4. ``feathered_mask``: back to the square's size (PIL bicubic), restricted to the face
   box and to rows below ``upper_boundary_ratio`` of the square, Gaussian-blurred with
   ``k = int(blur_ratio * crop_w // 2 * 2) + 1``. The reference's normal path uses
   blur_ratio 0.05 and its realtime path 0.1 (bug B6); we default to 0.05 everywhere
   and expose the ratio.
5. ``composite``: Pillow's L-mask paste rule in integers,
   ``t = dst*(255-a) + src*a + 128; out = ((t >> 8) + t) >> 8``.

Images are uint8 RGB here (the reference works in BGR; every step is per channel).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from ..core.choices import PARSING_MODES
from ..core.errors import TalkingHeadError

PARSE_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SKIN, NOSE, MOUTH, UPPER_LIP, LOWER_LIP, NECK = 1, 10, 11, 12, 13, 14
MODES = PARSING_MODES


def blend_crop_box(box, expand: float = 1.5) -> tuple:
    x1, y1, x2, y2 = (int(v) for v in box)
    xc, yc = (x1 + x2) // 2, (y1 + y2) // 2
    s = int(max(x2 - x1, y2 - y1) // 2 * expand)
    return xc - s, yc - s, xc + s, yc + s


def crop_padded(img: np.ndarray, crop_box) -> np.ndarray:
    """``img[ys:ye, xs:xe]`` with black where the box leaves the image (PIL crop)."""
    xs, ys, xe, ye = (int(v) for v in crop_box)
    h, w = img.shape[:2]
    out = np.zeros((ye - ys, xe - xs) + img.shape[2:], img.dtype)
    ax, ay, bx, by = max(xs, 0), max(ys, 0), min(xe, w), min(ye, h)
    if bx > ax and by > ay:
        out[ay - ys:by - ys, ax - xs:bx - xs] = img[ay:by, ax:bx]
    return out


# ---------------------------------------------------------------------------------------
# parsing


def parsing_input(face_large_u8: np.ndarray) -> tuple:
    """(512x512 uint8 RGB as the network sees it, normalised (3,512,512) float32)."""
    img = np.array(Image.fromarray(face_large_u8).resize((PARSE_SIZE, PARSE_SIZE), Image.BILINEAR))
    x = torch.from_numpy(img).permute(2, 0, 1).contiguous().float() / 255.0  # NCHW, see latents.py
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return img, (x - mean) / std


@torch.inference_mode()
def parse_faces(net: torch.nn.Module, faces_large: list, batch_size: int = 4) -> np.ndarray:
    """BiSeNet class maps (N,512,512) uint8 for a list of uint8 RGB squares."""
    p = next(net.parameters())
    out = []
    for b in range(0, len(faces_large), batch_size):
        x = torch.stack([parsing_input(f)[1] for f in faces_large[b:b + batch_size]])
        logits = net(x.to(p.device, p.dtype))
        out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, PARSE_SIZE, PARSE_SIZE), np.uint8)


def jaw_dilate_kernel() -> np.ndarray:
    """33x33: empty top 10 rows, a cone widening downwards, then a 21-wide tail."""
    k = np.zeros((33, 33), np.uint8)
    for r in range(10, 21):
        k[r, 16 - (r - 10):16 + (r - 10) + 1] = 1
    k[21:, 6:27] = 1
    return k


def jaw_erode_kernel() -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (35, 3))


def cheek_mask(left_cheek_width: int = 90, right_cheek_width: int = 90) -> np.ndarray:
    """255 on the outer cheek columns of the 512 map (inclusive bounds), 0 in the middle."""
    m = np.zeros((PARSE_SIZE, PARSE_SIZE), np.uint8)
    c = PARSE_SIZE // 2
    m[:, :max(0, c - int(left_cheek_width) + 1)] = 255
    m[:, min(PARSE_SIZE, c + int(right_cheek_width)):] = 255
    return m


def mode_mask(parsing: np.ndarray, mode: str = "jaw", left_cheek_width: int = 90,
              right_cheek_width: int = 90, stages: dict = None) -> np.ndarray:
    """512x512 0/255 mask of the regenerated region from a class map."""
    mouth = np.isin(parsing, (MOUTH, UPPER_LIP, LOWER_LIP))
    if mode == "raw":
        return np.where(mouth | (parsing == SKIN), 255, 0).astype(np.uint8)
    if mode == "neck":
        return np.where(mouth | np.isin(parsing, (SKIN, NECK)), 255, 0).astype(np.uint8)
    if mode != "jaw":
        raise TalkingHeadError(f"unknown parsing mode {mode!r}; choose one of {', '.join(MODES)}")
    skin = np.where(parsing == SKIN, 255, 0).astype(np.uint8)
    dilated = cv2.dilate(skin, jaw_dilate_kernel(), iterations=1)
    eroded = cv2.erode(dilated, jaw_erode_kernel(), iterations=2)
    cheeks = cheek_mask(left_cheek_width, right_cheek_width)
    region = (eroded & cheeks) | (dilated & ~cheeks)
    if stages is not None:
        stages.update(dilated=dilated, eroded=eroded, cheeks=cheeks)
    keep = ((region == 255) & (parsing != NOSE)) | mouth
    return np.where(keep, 255, 0).astype(np.uint8)


def blur_kernel_size(crop_w: int, blur_ratio: float) -> int:
    return int(blur_ratio * crop_w // 2 * 2) + 1


def feathered_mask(mask512: np.ndarray, box, crop_box, upper_boundary_ratio: float = 0.5,
                   blur_ratio: float = 0.05, stages: dict = None) -> np.ndarray:
    """The alpha (crop_h, crop_w) uint8 over ``crop_box`` for one frame."""
    xs, ys, xe, ye = (int(v) for v in crop_box)
    cw, ch = xe - xs, ye - ys
    resized = np.asarray(Image.fromarray(mask512).resize((cw, ch), Image.BICUBIC))
    x1, y1, x2, y2 = (int(v) for v in box)
    bounded = np.zeros((ch, cw), np.uint8)
    inner = crop_padded(resized, (x1 - xs, y1 - ys, x2 - xs, y2 - ys))
    bounded[:] = crop_padded(inner, (xs - x1, ys - y1, xe - x1, ye - y1))  # paste = inverse crop
    bounded[:int(ch * upper_boundary_ratio)] = 0
    k = blur_kernel_size(cw, blur_ratio)
    alpha = cv2.GaussianBlur(bounded, (k, k), 0)
    if stages is not None:
        stages.update(crop=resized, boundary=bounded.copy(), blurred=alpha)
    return alpha


# ---------------------------------------------------------------------------------------
# composite


def place_face(frame_u8: np.ndarray, face_u8: np.ndarray, box) -> np.ndarray:
    """The frame with the generated 256x256 face resized (bilinear) into its box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    res = cv2.resize(np.ascontiguousarray(face_u8), (x2 - x1, y2 - y1))
    out = frame_u8.copy()
    out[y1:y2, x1:x2] = res
    return out


def pil_blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Pillow's paste-with-L-mask arithmetic (exact), broadcasting alpha over channels."""
    a = alpha.astype(np.int32)
    if a.ndim == dst.ndim - 1:
        a = a[..., None]
    t = dst.astype(np.int32) * (255 - a) + src.astype(np.int32) * a + 128
    return (((t >> 8) + t) >> 8).astype(np.uint8)


def full_frame_alpha(alpha: np.ndarray, crop_box, frame_hw: tuple) -> np.ndarray:
    """Place a crop-box alpha into a frame-sized (H, W) uint8 mask (clipped)."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    xs, ys, xe, ye = (int(v) for v in crop_box)
    return crop_padded(alpha, (-xs, -ys, w - xs, h - ys))


def composite(frame_u8: np.ndarray, face_u8: np.ndarray, box, crop_box, alpha: np.ndarray) -> np.ndarray:
    """Blend the generated face into the frame with a crop-box alpha (reference paste)."""
    placed = place_face(frame_u8, face_u8, box)
    xs, ys, xe, ye = (int(v) for v in crop_box)
    h, w = frame_u8.shape[:2]
    ax, ay, bx, by = max(xs, 0), max(ys, 0), min(xe, w), min(ye, h)
    out = frame_u8.copy()
    if bx > ax and by > ay:
        a = alpha[ay - ys:by - ys, ax - xs:bx - xs]
        out[ay:by, ax:bx] = pil_blend(frame_u8[ay:by, ax:bx], placed[ay:by, ax:bx], a)
    return out
