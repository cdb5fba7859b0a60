#!/usr/bin/env python3
"""Train the demo CLIP + BLIP pair on a procedurally generated toy world.

Why: no registry this project's machines can reach carries real CLIP or BLIP weights, so the
Swift library's quick start and end-to-end tests use this small model pair instead. It is
trained with the reference library (transformers) and saved in exactly the Hugging Face layout
the real checkpoints use (openai/clip-vit-*, Salesforce/blip-image-captioning-*), so every
loader reads it like the real thing.

Run from the repository root (about 15 minutes on one core of the 2-core build machine):

  .venv-ref/bin/python Weights/demo/train_demo.py                  # writes the files below
  .venv-ref/bin/python Weights/demo/train_demo.py --out /tmp/again # reproducibility check

What it writes:
  Weights/demo/clip/     CLIPModel: config.json, model.safetensors (F16), vocab.json, merges.txt,
                         tokenizer_config.json, special_tokens_map.json, preprocessor_config.json
  Weights/demo/blip/     BlipForConditionalGeneration: config.json, generation_config.json,
                         model.safetensors (F16), vocab.txt, tokenizer_config.json,
                         special_tokens_map.json, preprocessor_config.json
  Weights/demo/labels/   the demo label tables (colors, shapes, styles, backgrounds, objects,
                         negative) and label-set.json (which interrogator role each table plays)
  Weights/demo/metrics.json   held-out metrics measured here on the saved F16 files, settings,
                         versions, timing and the sha256 of every file
  Tests/Fixtures/demo/heldout/NN.png + heldout.json   100 held-out images and their truth
  Docs/examples/*.png    three example images for the README

The world: 64x64 RGB images on a 4x4 grid of 16-pixel cells (the vision towers' patches), each
object drawn inside one cell: one object, two identical objects (on a diagonal), or two
different objects in the same column ("above") or row ("left of"). Eight colours, four shapes,
four grey backgrounds (plain, striped, dotted, checkered), four styles (filled, outlined,
pixelated, blurred). Captions follow one grammar:

  "a red circle, plain background"
  "two green stars, dotted background, outlined"
  "a blue square above a yellow triangle, striped background, blurred"

Vocabularies: the real ones are 30,522 WordPieces and 49,408 BPE tokens, which would make the
embeddings of these tiny models 95% of their size. So the BLIP vocab.txt holds just the words of
the world (plus BERT's special tokens; [DEC] is config.text_config.bos_token_id = len(vocab.txt),
outside the file, as in the real checkpoints), and the CLIP merges.txt is the subset of the real
CLIP merge list (in its order) that the world's words use: every word tokenizes exactly as with
the full list, and any other text still tokenizes (into smaller pieces).

Training (all randomness from fixed seeds; torch runs on one thread, which makes reruns
bit-identical on the same machine and leaves the other core free):
  CLIP: contrastive loss where every image's text is its caption, its caption followed by a few
  labels (each right or random, so the text may be false: what the chain search builds), or one
  right label (a colour, a shape, "red circle", a style, a background, a layout); the targets are
  multi-positive (text j is a positive of image i when every comma-separated part of it is true
  of image i), and a second term ranks each label table against the image (what analyze does).
  BLIP: its vision tower starts from the trained CLIP vision tower (the real BLIP also starts
  from a pretrained ViT), then BlipForConditionalGeneration's own captioning loss (teacher
  forcing; input ids start with bos = [DEC], as generate() feeds them).
Evaluation uses the saved F16 files loaded in float32 (as the reference interrogator loads
them): greedy generate(max_new_tokens=32) for captions, cosine ranking for the tables.
"""

import argparse
import gzip
import json
import math
import os
import re
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from PIL import Image, ImageDraw, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True  # no __pycache__ beside the fixture scripts
sys.path.insert(0, os.path.join(ROOT, "Weights", "fixtures"))
import fixture_utils  # noqa: E402  (pins, torch settings, open_clip's tokenizer, the CLIP merges)
from fixture_utils import (CLIP_BPE_GZ as BPE_GZ, OPENAI_MEAN, OPENAI_STD, clip_bpe_merges,  # noqa: E402
                           open_clip_tokenizer_module, sha256_file, write_json)
HELDOUT_DIR = os.path.join(ROOT, "Tests", "Fixtures", "demo")
EXAMPLES_DIR = os.path.join(ROOT, "Docs", "examples")

SEED = 20261129
N_HELDOUT = 100

# ============================================================================================
# The world
# ============================================================================================

IMG = 64         # image side
CANVAS = 128     # drawing side, downsampled to IMG with BICUBIC (anti-aliasing)
CELL = 32        # canvas pixels per grid cell (16 image pixels: one ViT patch)

COLORS = {
    "red": (220, 38, 38), "green": (40, 170, 60), "blue": (40, 80, 225), "yellow": (242, 216, 40),
    "purple": (145, 55, 200), "orange": (250, 135, 25), "white": (248, 248, 248), "black": (14, 14, 14),
}
SHAPES = ["circle", "square", "triangle", "star"]
BACKGROUNDS = ["plain", "striped", "dotted", "checkered"]
STYLES = ["filled", "outlined", "pixelated", "blurred"]
LAYOUTS = {"single": "one shape", "pair": "two shapes", "above": "one shape above another",
           "left of": "two shapes side by side"}

TABLES = {
    "colors": list(COLORS),
    "shapes": SHAPES,
    "styles": STYLES,
    "backgrounds": [f"{b} background" for b in BACKGROUNDS],
    "objects": [f"{c} {s}" for c in COLORS for s in SHAPES] + list(LAYOUTS.values()),
}
# The interrogator role each table plays (Sources/ClipInterrogator: LabelSet). Classic mode writes
# "caption, <medium> <artist>, <trending>, <movement>, <flavors>" ("..., red circle, outlined,
# striped background, red circle, one shape"); best and fast mode draw from all five.
LABEL_SET = {"mediums": "colors", "artists": "shapes", "trendings": "styles", "movements": "backgrounds",
             "flavors": "objects", "negative": "negative"}
NEGATIVE = ["outlined", "pixelated", "blurred", "striped background", "dotted background",
            "checkered background", "two shapes", "one shape"]


def sample_scene(rng):
    """A scene: objects [(colour, shape, row, col)], layout kind, background, style."""
    colour = lambda: str(rng.choice(list(COLORS)))
    shape = lambda: str(rng.choice(SHAPES))
    cells = [(r, c) for r in range(4) for c in range(4)]
    u = rng.random()
    if u < 0.35:
        kind = "single"
        r, c = cells[int(rng.integers(16))]
        objects = [(colour(), shape(), r, c)]
    elif u < 0.55:
        kind = "pair"
        col, sh = colour(), shape()
        while True:
            (r1, c1), (r2, c2) = [cells[int(i)] for i in rng.choice(16, size=2, replace=False)]
            if r1 != r2 and c1 != c2:
                break
        objects = [(col, sh, r1, c1), (col, sh, r2, c2)]
    else:
        kind = "above" if rng.random() < 0.5 else "left of"
        while True:
            a, b = (colour(), shape()), (colour(), shape())
            if a != b:
                break
        line = int(rng.integers(4))
        first, second = sorted(int(i) for i in rng.choice(4, size=2, replace=False))
        if kind == "above":   # same column, the first object higher
            objects = [(*a, first, line), (*b, second, line)]
        else:                 # same row, the first object further left
            objects = [(*a, line, first), (*b, line, second)]
    return {"objects": objects, "layout": kind, "background": str(rng.choice(BACKGROUNDS)),
            "style": str(rng.choice(STYLES))}


def a(colour):
    return "an" if colour[0] in "aeiou" else "a"


def caption(scene):
    (c1, s1, *_), *rest = scene["objects"]
    kind = scene["layout"]
    if kind == "single":
        text = f"{a(c1)} {c1} {s1}"
    elif kind == "pair":
        text = f"two {c1} {s1}s"
    else:
        c2, s2 = rest[0][:2]
        text = f"{a(c1)} {c1} {s1} {kind} {a(c2)} {c2} {s2}"
    text += f", {scene['background']} background"
    if scene["style"] != "filled":
        text += f", {scene['style']}"
    return text


def scene_truth(scene):
    """The right labels of each table (colours and shapes: every one present)."""
    return {
        "colors": sorted({o[0] for o in scene["objects"]}),
        "shapes": sorted({o[1] for o in scene["objects"]}),
        "styles": [scene["style"]],
        "backgrounds": [f"{scene['background']} background"],
        "objects": sorted({f"{o[0]} {o[1]}" for o in scene["objects"]}) + [LAYOUTS[scene["layout"]]],
    }


def true_parts(scene):
    """Every short text that is true of the scene: the caption's comma-separated parts and every
    right label."""
    parts = set(caption(scene).split(", "))
    for labels in scene_truth(scene).values():
        parts.update(labels)
    return parts


def is_true(text, parts):
    """Whether a text is true of a scene with these true_parts: every comma-separated part is."""
    return all(p in parts for p in text.split(", "))


ALL_LABELS = [label for labels in TABLES.values() for label in labels]


def sample_clip_text(scene, rng):
    """The text paired with an image in a CLIP batch: its caption, the caption followed by labels
    (each right or random, so the text may be false: prompts grown by the chain search look like
    this), or one right label."""
    truth = scene_truth(scene)
    u = rng.random()
    if u < 0.3:
        return caption(scene)
    if u < 0.5:
        right = [label for labels in truth.values() for label in labels]
        extra = [str(rng.choice(right if rng.random() < 0.5 else ALL_LABELS)) for _ in range(int(rng.integers(1, 4)))]
        return ", ".join([caption(scene)] + extra)
    if u < 0.6:
        return str(rng.choice(truth["colors"]))
    if u < 0.75:
        return str(rng.choice(truth["shapes"]))
    return str(rng.choice(truth[["objects", "objects", "styles", "backgrounds"][int(rng.integers(4))]]))


_YY, _XX = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)


def background(kind, rng):
    g = int(rng.integers(90, 166))
    g2 = g + int(rng.choice([-1, 1])) * int(rng.integers(35, 56))
    g2 = int(np.clip(g2, 55, 205))
    period = float(rng.integers(12, 21))
    ox, oy = rng.uniform(0, period, size=2)
    if kind == "plain":
        mask = np.zeros((CANVAS, CANVAS), bool)
    elif kind == "striped":
        mask = ((_YY + oy) % period) < period / 2
    elif kind == "dotted":
        dx, dy = (_XX + ox) % period - period / 2, (_YY + oy) % period - period / 2
        mask = dx * dx + dy * dy < 9.0
    else:
        mask = (((_XX + ox) // period + (_YY + oy) // period) % 2) == 0
    return np.repeat(np.where(mask, g2, g).astype(np.uint8)[:, :, None], 3, axis=2)


def polygon(shape, cx, cy, r):
    def ring(n, radii, start):
        m = n * len(radii)
        return [(cx + radii[k % len(radii)] * math.cos(math.radians(start) + 2 * math.pi * k / m),
                 cy + radii[k % len(radii)] * math.sin(math.radians(start) + 2 * math.pi * k / m))
                for k in range(m)]
    if shape == "square":
        return ring(4, [r * 1.15], -45.0)
    if shape == "triangle":
        return ring(3, [r * 1.15], -90.0)
    return ring(5, [r * 1.2, r * 0.5], -90.0)   # star


def render(scene, rng):
    img = Image.fromarray(background(scene["background"], rng), "RGB")
    draw = ImageDraw.Draw(img)
    outline = scene["style"] == "outlined"
    width = int(rng.integers(3, 5))
    for name, shape, row, col in scene["objects"]:
        base = np.array(COLORS[name], np.int32) + rng.integers(-12, 13, size=3)
        fill = tuple(int(v) for v in np.clip(base, 0, 255))
        r = rng.uniform(11.0, 13.0)
        cx = col * CELL + CELL / 2 + rng.uniform(-1.5, 1.5)
        cy = row * CELL + CELL / 2 + rng.uniform(-1.5, 1.5)
        if shape == "circle":
            box = [cx - r, cy - r, cx + r, cy + r]
            draw.ellipse(box, **({"outline": fill, "width": width} if outline else {"fill": fill}))
        else:
            pts = polygon(shape, cx, cy, r)
            draw.polygon(pts, **({"outline": fill, "width": width} if outline else {"fill": fill}))
    img = img.resize((IMG, IMG), Image.Resampling.BICUBIC)
    if scene["style"] == "blurred":
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1.0, 1.4))))
    elif scene["style"] == "pixelated":   # 2x2-pixel blocks
        img = img.resize((IMG // 2, IMG // 2), Image.Resampling.BOX).resize((IMG, IMG), Image.Resampling.NEAREST)
    return img


def make_pool(split, n):
    """n (scene, image) pairs; split 0 = training, 1 = held-out, 2 = examples."""
    rng = np.random.default_rng([SEED, split])
    scenes, images = [], []
    for _ in range(n):
        scene = sample_scene(rng)
        scenes.append(scene)
        images.append(render(scene, rng))
    return scenes, images


# ============================================================================================
# Tokenizers
# ============================================================================================

def world_words():
    texts = [w for labels in TABLES.values() for w in labels] + NEGATIVE
    texts += ["a", "an", "two", "above", "left", "of", "background", ","] + [s + "s" for s in SHAPES]
    return sorted({w for t in texts for w in t.replace(",", " , ").split()})


def bert_vocab():
    """BERT's five special tokens, then the world's words ([DEC] = len(vocab) is not a token)."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + world_words()


def reduced_clip_merges(oc):
    """The real merges (in order) that BPE applies to the world's words."""
    merges = clip_bpe_merges(BPE_GZ)
    ranks = {m: i for i, m in enumerate(merges)}
    byte_encoder = oc.bytes_to_unicode()
    used = set()
    for word in world_words():
        parts = [byte_encoder[b] for b in word.encode("utf-8")]
        parts[-1] += "</w>"
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == math.inf:
                break
            used.add(int(rank))
            pair = merges[int(rank)]
            merged, j = [], 0
            while j < len(parts):   # merge every occurrence, as BPE does
                if j + 1 < len(parts) and (parts[j], parts[j + 1]) == pair:
                    merged.append(parts[j] + parts[j + 1])
                    j += 2
                else:
                    merged.append(parts[j])
                    j += 1
            parts = merged
    return [merges[i] for i in sorted(used)]


def write_clip_tokenizer(oc, merges, out_dir):
    """vocab.json / merges.txt in the openai/clip-* layout, and the open_clip BPE file."""
    chars = list(oc.bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    body = "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(body + "\n")
    return vocab


def open_clip_tokenizer(oc, clip_dir):
    """open_clip's SimpleTokenizer over the checkpoint's merges (what the reference tokenizes with)."""
    merges = open(os.path.join(clip_dir, "merges.txt"), encoding="utf-8").read().rstrip("\n")
    path = os.path.join(tempfile.mkdtemp(), "bpe.txt.gz")
    with gzip.open(path, "wb") as f:
        f.write(merges.encode("utf-8"))   # no trailing newline: SimpleTokenizer keeps every line
    return oc.SimpleTokenizer(bpe_path=path, context_length=77)


def _added(content):
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


CLIP_TOKENIZER_CONFIG = {   # as the openai/clip-vit-* repositories ship it
    "add_prefix_space": False, "bos_token": dict(_added("<|startoftext|>"), __type="AddedToken"),
    "do_lower_case": True, "eos_token": dict(_added("<|endoftext|>"), __type="AddedToken"),
    "errors": "replace", "model_max_length": 77, "pad_token": "<|endoftext|>",
    "processor_class": "CLIPProcessor", "tokenizer_class": "CLIPTokenizer",
    "unk_token": dict(_added("<|endoftext|>"), __type="AddedToken"),
}
CLIP_SPECIAL_TOKENS = {"bos_token": _added("<|startoftext|>"), "eos_token": _added("<|endoftext|>"),
                       "pad_token": "<|endoftext|>", "unk_token": _added("<|endoftext|>")}
BLIP_TOKENIZER_CONFIG = {   # as the Salesforce/blip-image-captioning-* repositories ship it
    "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True, "mask_token": "[MASK]",
    "model_max_length": 512, "never_split": None, "pad_token": "[PAD]", "processor_class": "BlipProcessor",
    "sep_token": "[SEP]", "strip_accents": None, "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
}
BLIP_SPECIAL_TOKENS = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                       "sep_token": "[SEP]", "unk_token": "[UNK]"}
PREPROCESS_COMMON = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": OPENAI_MEAN,
                     "image_std": OPENAI_STD, "resample": 3, "rescale_factor": 1 / 255}
CLIP_PREPROCESSOR = dict(PREPROCESS_COMMON, crop_size={"height": IMG, "width": IMG}, do_center_crop=True,
                         do_convert_rgb=True, image_processor_type="CLIPImageProcessor",
                         processor_class="CLIPProcessor", size={"shortest_edge": IMG})
BLIP_PREPROCESSOR = dict(PREPROCESS_COMMON, image_processor_type="BlipImageProcessor",
                         processor_class="BlipProcessor", size={"height": IMG, "width": IMG})


# ============================================================================================
# Models and training
# ============================================================================================

def make_clip(vocab_size, bos, eos):
    text = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                bos_token_id=bos, eos_token_id=eos, pad_token_id=1)
    vision = dict(image_size=IMG, patch_size=16, hidden_size=96, intermediate_size=384, num_hidden_layers=4,
                  num_attention_heads=4, hidden_act="gelu")   # BLIP's activation: its tower starts from this one
    torch.manual_seed(SEED + 1)
    return transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=64))


def make_blip(vocab_size):
    vision = dict(image_size=IMG, patch_size=16, hidden_size=96, intermediate_size=384, num_hidden_layers=4,
                  num_attention_heads=4)
    text = dict(vocab_size=vocab_size + 2, hidden_size=96, encoder_hidden_size=96, intermediate_size=384,
                num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=64,
                bos_token_id=vocab_size, sep_token_id=3, pad_token_id=0, eos_token_id=3)
    torch.manual_seed(SEED + 2)
    return transformers.BlipForConditionalGeneration(transformers.BlipConfig(vision_config=vision, text_config=text))


@torch.no_grad()
def init_blip_vision_from_clip(blip, clip):
    """BLIP's vision tower starts from the trained CLIP vision tower (the real BLIP also starts
    from a pretrained ViT): the same layers under BLIP's names, q/k/v fused into qkv. CLIP's
    pre-layernorm has no BLIP counterpart and is dropped; fine-tuning absorbs the difference."""
    src = {k.removeprefix("vision_model."): v for k, v in clip.state_dict().items() if k.startswith("vision_model.")}
    dst = blip.vision_model.state_dict()
    mapped = {"embeddings.class_embedding": src["embeddings.class_embedding"].view(1, 1, -1),
              "embeddings.position_embedding": src["embeddings.position_embedding.weight"].unsqueeze(0),
              "embeddings.patch_embedding.weight": src["embeddings.patch_embedding.weight"],
              "post_layernorm.weight": src["post_layernorm.weight"], "post_layernorm.bias": src["post_layernorm.bias"]}
    for i in range(blip.config.vision_config.num_hidden_layers):
        a, b = f"encoder.layers.{i}.", f"encoder.layers.{i}.self_attn."
        for part in ("weight", "bias"):
            mapped[b + "qkv." + part] = torch.cat([src[b + f"{x}_proj.{part}"] for x in "qkv"])
            mapped[b + "projection." + part] = src[b + "out_proj." + part]
            for name in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"):
                mapped[a + f"{name}.{part}"] = src[a + f"{name}.{part}"]
    for key, value in mapped.items():
        assert dst[key].shape == value.shape, key
        dst[key].copy_(value)


def pixel_values(images):
    x = torch.from_numpy(np.stack([np.asarray(im, np.float32) / 255.0 for im in images])).permute(0, 3, 1, 2)
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def features(out):
    return out if torch.is_tensor(out) else out.pooler_output


def lr_at(step, steps, peak, warmup=100):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def clip_ids(tokenizer, texts, cache):
    """open_clip ids padded to the batch's longest text (the text tower is causal and pools at the
    first end token, so the features equal those of the 77-wide rows)."""
    rows = []
    for t in texts:
        if t not in cache:
            ids = tokenizer(t)[0].tolist()
            cache[t] = ids[: ids.index(tokenizer.eot_token_id) + 1]
        rows.append(cache[t])
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows])


def soft_ce(logits, positives):
    """Cross-entropy against the normalised positive rows; rows without a positive are skipped."""
    count = positives.sum(dim=1, keepdim=True)
    keep = count.squeeze(1) > 0
    target = positives[keep] / count[keep]
    return -(target * F.log_softmax(logits[keep], dim=1)).sum(dim=1).mean()


def train_clip(model, scenes, pixels, tokenizer, steps, batch, lr, log):
    rng = np.random.default_rng([SEED, 10])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    cache = {}
    table_names = list(TABLES)
    table_texts = [t for name in table_names for t in TABLES[name]]
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        idx = rng.choice(len(scenes), size=batch, replace=False)
        texts = [sample_clip_text(scenes[i], rng) for i in idx]
        parts = [true_parts(scenes[i]) for i in idx]
        img = F.normalize(features(model.get_image_features(pixel_values=pixels[idx])), dim=-1)
        txt = F.normalize(features(model.get_text_features(input_ids=clip_ids(tokenizer, texts + table_texts, cache))), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img @ txt.T
        positives = torch.tensor([[is_true(t, p) for t in texts + table_texts] for p in parts],
                                 dtype=torch.float32)
        loss = soft_ce(logits[:, :batch], positives[:, :batch]) + soft_ce(logits[:, :batch].T, positives[:, :batch].T)
        start = batch
        for name in table_names:   # rank each table against the image, as analyze does
            end = start + len(TABLES[name])
            loss = loss + soft_ce(logits[:, start:end], positives[:, start:end]) / len(table_names)
            start = end
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"clip step {step:5d} loss {loss.item():.4f} scale {scale.item():.1f}")


def blip_batch(captions, tokenizer, bos):
    enc = tokenizer(captions, padding="longest", return_tensors="pt")
    ids = enc.input_ids.clone()
    ids[:, 0] = bos                     # generate() starts from [DEC], not [CLS]
    labels = ids.masked_fill(enc.attention_mask == 0, -100)
    return ids, enc.attention_mask, labels


def train_blip(model, scenes, pixels, tokenizer, steps, batch, lr, log):
    rng = np.random.default_rng([SEED, 20])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    bos = model.config.text_config.bos_token_id
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        idx = rng.choice(len(scenes), size=batch, replace=False)
        ids, mask, labels = blip_batch([caption(scenes[i]) for i in idx], tokenizer, bos)
        loss = model(pixel_values=pixels[idx], input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"blip step {step:5d} loss {loss.item():.4f}")


# ============================================================================================
# Evaluation (on the saved F16 files, loaded in float32 as the reference interrogator does)
# ============================================================================================

CAPTION_OBJECT = re.compile(r"\b(a|an|two) (" + "|".join(COLORS) + r") (" + "|".join(SHAPES) + r")s?\b")


def caption_objects(text):
    """{(colour, shape)} named by a caption of the world's grammar."""
    return {(c, s) for _, c, s in CAPTION_OBJECT.findall(text)}


@torch.no_grad()
def evaluate(out_dir, oc, *pools):
    """The metrics of each (scenes, images) pool, the saved files loaded once."""
    clip = transformers.CLIPModel.from_pretrained(os.path.join(out_dir, "clip"), dtype=torch.float32).eval()
    blip_dir = os.path.join(out_dir, "blip")
    blip = transformers.BlipForConditionalGeneration.from_pretrained(blip_dir, dtype=torch.float32).eval()
    processor = transformers.BlipProcessor.from_pretrained(blip_dir)
    tokenizer = open_clip_tokenizer(oc, os.path.join(out_dir, "clip"))
    table_features = {name: F.normalize(features(clip.get_text_features(input_ids=tokenizer(labels))), dim=-1)
                      for name, labels in TABLES.items()}
    results = []
    for scenes, images in pools:
        image_features = F.normalize(features(clip.get_image_features(pixel_values=pixel_values(images))), dim=-1)
        rows = []
        for i, image in enumerate(images):
            inputs = processor(images=image, return_tensors="pt")
            ids = blip.generate(**inputs, max_new_tokens=32)
            text = processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
            top = {name: TABLES[name][int((image_features[i] @ feats.T).argmax())] for name, feats in table_features.items()}
            rows.append({"caption": text, "top": top})
        truth_objects = [{o[:2] for o in s["objects"]} for s in scenes]
        truths = [scene_truth(s) for s in scenes]
        n = len(scenes)
        metrics = {
            "images": n,
            "caption_exact": sum(r["caption"] == caption(s) for r, s in zip(rows, scenes)) / n,
            "caption_colour_and_shape": sum(caption_objects(r["caption"]) == t for r, t in zip(rows, truth_objects)) / n,
            "top_colour_and_shape": sum(r["top"]["colors"] in t["colors"] and r["top"]["shapes"] in t["shapes"]
                                        for r, t in zip(rows, truths)) / n,
        }
        for name in TABLES:
            metrics[f"top_{name}"] = sum(r["top"][name] in t[name] for r, t in zip(rows, truths)) / n
        results.append(metrics)
    return results


# ============================================================================================
# Main
# ============================================================================================

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=HERE, help="where clip/, blip/, labels/ and metrics.json go")
    ap.add_argument("--train-images", type=int, default=20000)
    ap.add_argument("--clip-steps", type=int, default=1500)
    ap.add_argument("--clip-batch", type=int, default=128)
    ap.add_argument("--clip-lr", type=float, default=2e-3)
    ap.add_argument("--blip-steps", type=int, default=4000)
    ap.add_argument("--blip-batch", type=int, default=64)
    ap.add_argument("--blip-lr", type=float, default=2e-3)
    args = ap.parse_args()
    fixture_utils.check_reference_environment("train_demo.py", ["torch", "transformers"])
    fixture_utils.make_torch_deterministic()
    out = os.path.abspath(args.out)
    writes_repo_fixtures = out == HERE
    clip_dir, blip_dir, label_dir = (os.path.join(out, d) for d in ("clip", "blip", "labels"))
    for d in (clip_dir, blip_dir, label_dir):
        os.makedirs(d, exist_ok=True)
    started = time.time()
    timing = {}

    def log(message):
        print(f"[{time.time() - started:7.1f}s] {message}", flush=True)

    oc = open_clip_tokenizer_module()
    clip_vocab = write_clip_tokenizer(oc, reduced_clip_merges(oc), clip_dir)
    clip_tokenizer = open_clip_tokenizer(oc, clip_dir)
    full = oc.SimpleTokenizer(bpe_path=BPE_GZ, context_length=77)
    for word in world_words():   # the reduced merges split the world's words as the full list does
        assert [clip_vocab[i] for i in clip_tokenizer.encode(word)] == \
               [full.decoder[i] for i in full.encode(word)], word
    with open(os.path.join(blip_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(bert_vocab()) + "\n")
    for path, obj in [(os.path.join(clip_dir, "tokenizer_config.json"), CLIP_TOKENIZER_CONFIG),
                      (os.path.join(clip_dir, "special_tokens_map.json"), CLIP_SPECIAL_TOKENS),
                      (os.path.join(clip_dir, "preprocessor_config.json"), CLIP_PREPROCESSOR),
                      (os.path.join(blip_dir, "tokenizer_config.json"), BLIP_TOKENIZER_CONFIG),
                      (os.path.join(blip_dir, "special_tokens_map.json"), BLIP_SPECIAL_TOKENS),
                      (os.path.join(blip_dir, "preprocessor_config.json"), BLIP_PREPROCESSOR),
                      (os.path.join(label_dir, "label-set.json"), LABEL_SET)]:
        write_json(path, obj)
    for name, labels in list(TABLES.items()) + [("negative", NEGATIVE)]:
        with open(os.path.join(label_dir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(labels) + "\n")
    bert_tokenizer = transformers.BertTokenizer(os.path.join(blip_dir, "vocab.txt"))
    for text in [caption(s) for s in make_pool(0, 200)[0]]:   # every word is a whole token
        assert bert_tokenizer.unk_token_id not in bert_tokenizer(text).input_ids, text

    t0 = time.time()
    scenes, images = make_pool(0, args.train_images)
    pixels = pixel_values(images)
    timing["data_s"] = round(time.time() - t0, 1)
    log(f"{len(scenes)} training images")

    t0 = time.time()
    clip = make_clip(len(clip_vocab), clip_vocab.index("<|startoftext|>"), clip_vocab.index("<|endoftext|>"))
    train_clip(clip, scenes, pixels, clip_tokenizer, args.clip_steps, args.clip_batch, args.clip_lr, log)
    clip.half().save_pretrained(clip_dir)
    clip.float()
    timing["clip_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    blip = make_blip(len(bert_vocab()))
    init_blip_vision_from_clip(blip, clip)
    train_blip(blip, scenes, pixels, bert_tokenizer, args.blip_steps, args.blip_batch, args.blip_lr, log)
    blip.half().save_pretrained(blip_dir)
    timing["blip_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    held_scenes, held_images = make_pool(1, N_HELDOUT)
    metrics, train_metrics = evaluate(out, oc, (held_scenes, held_images), (scenes[:N_HELDOUT], images[:N_HELDOUT]))
    timing["evaluation_s"] = round(time.time() - t0, 1)
    timing["total_s"] = round(time.time() - started, 1)
    log(f"held-out {metrics}")

    heldout_dir = HELDOUT_DIR if writes_repo_fixtures else os.path.join(out, "heldout")
    os.makedirs(os.path.join(heldout_dir, "heldout"), exist_ok=True)
    entries = []
    for i, (scene, image) in enumerate(zip(held_scenes, held_images)):
        name = f"heldout/{i:02d}.png"
        image.save(os.path.join(heldout_dir, name), optimize=False, compress_level=9)
        entries.append({"file": name, "caption": caption(scene), "truth": scene_truth(scene)})
    write_json(os.path.join(heldout_dir, "heldout.json"), {"images": entries, "tables": TABLES})
    examples_dir = EXAMPLES_DIR if writes_repo_fixtures else os.path.join(out, "examples")
    os.makedirs(examples_dir, exist_ok=True)
    example_scenes, example_images = make_pool(2, 3)
    for scene, image in zip(example_scenes, example_images):
        slug = caption(scene).split(",")[0].replace(" ", "-")
        image.save(os.path.join(examples_dir, f"{slug}.png"), compress_level=9)

    files = sorted(os.path.relpath(os.path.join(d, f), out) for d in (clip_dir, blip_dir, label_dir)
                   for f in os.listdir(d))
    write_json(os.path.join(out, "metrics.json"), {
        "heldout": metrics, "train_first_100": train_metrics, "seed": SEED, "settings": vars(args) | {"out": None},
        "threads": 1, "timing": timing,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
        "files": {f: {"bytes": os.path.getsize(os.path.join(out, f)), "sha256": sha256_file(os.path.join(out, f))}
                  for f in files},
    })
    log("done")


if __name__ == "__main__":
    main()
