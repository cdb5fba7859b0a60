#!/usr/bin/env python3
"""pytorch_bench.py: the PyTorch (reference) side of interrogate-bench.

The same stages, shapes and measurement rules as the Swift benchmark
(Benchmarks/interrogate-bench/*.swift), run with PyTorch + transformers (the
stack clip-interrogator 0.6.0 runs on), synthetic random weights, float32, CPU.

    .venv-ref/bin/python Benchmarks/pytorch_bench.py [--stage N] [--threads N] [--runs N] [--json FILE]

Stages (each measurement: one warm-up run, then `runs` timed runs; median, min, max;
stages 2-5 use max(2, runs // 3) runs, as the Swift side does):
  1  sgemm probe: y[M,N] = x[M,K] @ W[N,K]^T (torch.mm into a preallocated output).
  2  CLIP image embedding, ViT-B/32 and ViT-L/14, batch 1 and 8:
     get_image_features + L2 normalisation (transformers CLIPModel, eager attention).
  3  Labels: open_clip's SimpleTokenizer over all 111,867 reference labels the way
     LabelTable does it (per table, np.array_split chunks of ~2048, padded to 77),
     cold (fresh tokenizer, one run) and warm; then the reference's embedding method
     (tokens padded to 77, get_text_features, L2 normalisation) with the ViT-L/14
     text tower on the Swift side's label sample (--text-labels of them, default 256).
  4  One best-mode chain step with the reference's rank_top: tokenise 2048
     "prompt, flavor" candidates to 77 tokens, encode them in one batch, normalise,
     similarity with an image feature, argmax (--chain-candidates, default 2048).
  5  BLIP-large (random weights): the vision tower on one 384x384 image; generate with
     exactly 20 new tokens, greedy and num_beams=3; greedy with 1 new token, and from the
     two a greedy decoder step inside generate, (t20 - t1) / 19; and one decoder step alone (token 11
     after a cached 10-token prefix: text_decoder with past_key_values, argmax, cache cropped back).
  6  (only with --stage 6 --checkpoints DIR, in a fresh process) clip-interrogator 0.6.0 itself:
     time to load the ViT-L/14 and BLIP-large checkpoints that `interrogate-bench
     --write-checkpoints DIR` wrote (transformers from_pretrained, F32), the BLIP processor and
     the Interrogator with its label tables from DIR/cache (each cache checked to be a hit
     first), then one interrogate_fast on FullInterrogation's 640x480 image; peak RSS.
  7  (only with --stage 7 --checkpoints DIR) dataset throughput: the reference's own per-image
     loop (generate_caption, interrogate_fast, interrogate_classic) over --throughput-images
     640x480 images (Throughput.image(k) of the Swift side), in each of --throughput-modes.

Other options: --text-labels N, --chain-candidates N (subsets for a slow machine; the
count is in the measurement's name), --clip-attn eager|sdpa (default eager),
--meta FILE (machine / torch / thread metadata as JSON).

The JSON written by --json is a list of {stage, name, runs, medianSeconds, minSeconds,
maxSeconds, gflops, itemsPerSecond, peakResidentMB}, the Swift side's schema; names are
the Swift side's where the workload is the same.
"""

import argparse
import ast
import importlib.util
import json
import os
import resource
import sys
import time
import warnings

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ beside the fixture scripts
sys.path.insert(0, os.path.join(ROOT, "Weights", "fixtures"))
from fixture_utils import (REFERENCE_SITES, OpenClipLikeCLIP, cpu_model, install_open_clip_standin,  # noqa: E402
                           load_label_list, open_clip_eval_transform, open_clip_tokenizer_module,
                           pooled_features as features, reference_trending_labels)
DATA = os.path.join(ROOT, "Sources", "ClipInterrogator", "Resources", "data")
CONTEXT = 77
CHUNK_SIZE = 2048          # clip-interrogator 0.6.0 Config.chunk_size

# Benchmarks/interrogate-bench/Models.swift
VIT_B32 = {"projection_dim": 512,
           "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                           "num_attention_heads": 8},
           "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                             "num_attention_heads": 12, "image_size": 224, "patch_size": 32}}
VIT_L14 = {"projection_dim": 768,
           "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                           "num_attention_heads": 12},
           "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                             "num_attention_heads": 16, "image_size": 224, "patch_size": 14}}
# Benchmarks/interrogate-bench/BlipStage.swift (Salesforce/blip-image-captioning-large's shapes)
BLIP_LARGE = {"text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 1024,
                              "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                              "max_position_embeddings": 512, "bos_token_id": 30522, "sep_token_id": 102,
                              "pad_token_id": 0},
              "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                "num_attention_heads": 16, "image_size": 384, "patch_size": 16}}

# Benchmark.swift sgemmProbe
SGEMM_SHAPES = [
    ("ViT-L/14 qkv 257x1024x1024", 257, 1024, 1024),
    ("ViT-L/14 mlp 257x4096x1024", 257, 4096, 1024),
    ("ViT-L/14 mlp 257x1024x4096", 257, 1024, 4096),
    ("ViT-L/14 batch8 2056x4096x1024", 2056, 4096, 1024),
    ("text 77x768x768", 77, 768, 768),
    ("text batch 4096x768x768", 4096, 768, 768),
    ("decoder step 3x768x768", 3, 768, 768),
    ("decoder step 1x768x768", 1, 768, 768),
    ("decoder step 1x3072x768", 1, 3072, 768),
    ("decoder step 1x768x3072", 1, 768, 3072),
    ("skinny 1x1024x4096", 1, 1024, 4096),
    ("skinny 1x4096x1024", 1, 4096, 1024),
    ("beams 3x3072x768", 3, 3072, 768),
    ("beams 8x768x768", 8, 768, 768),
    ("beams 6x768x768", 6, 768, 768),
    ("beams 4x768x768", 4, 768, 768),
    ("beams 6x3072x768", 6, 3072, 768),
]

# TextStages.chainStep's prompt
CHAIN_PROMPT = ("a painting of a lighthouse on a rocky coast at sunset, by greg rutkowski, trending on artstation, "
                "highly detailed, dramatic lighting, oil on canvas")



# ---------------------------------------------------------------------------------------------
# measurement (Measurement.swift)
# ---------------------------------------------------------------------------------------------

def peak_resident_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1_048_576 if sys.platform == "darwin" else r / 1024


def measure(stage, name, runs, body, flops=None, items=None, warmup=True, repeats=1):
    """One warm-up call of body, then `runs` timed runs (Measurement.swift's measure); with
    `repeats`, each run calls body that many times and the times are per call. Also records
    the process's CPU time per call (cpuMedianSeconds), as the Swift side does."""
    if warmup:
        body()
    times, cpu = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            body()
        times.append((time.perf_counter() - start) / repeats)
        cpu.append((time.process_time() - cpu_start) / repeats)
    cpu.sort()
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 == 1 else (times[n // 2 - 1] + times[n // 2]) / 2
    m = {"stage": stage, "name": name, "runs": runs, "medianSeconds": median, "minSeconds": times[0],
         "maxSeconds": times[-1], "gflops": None if flops is None else flops / median / 1e9,
         "itemsPerSecond": None if items is None else items / median, "peakResidentMB": peak_resident_mb(),
         "cpuMedianSeconds": cpu[n // 2] if n % 2 == 1 else (cpu[n // 2 - 1] + cpu[n // 2]) / 2}
    print(f"  {stage} | {name}: {median * 1000:.3f} ms", flush=True)
    return m


def print_table(results):
    header = ["stage", "name", "median", "spread", "GFLOP/s", "items/s", "peak RSS"]
    rows = [header]
    for r in results:
        spread = (r["maxSeconds"] - r["minSeconds"]) / 2 / r["medianSeconds"] * 100 if r["medianSeconds"] > 0 else 0
        rows.append([r["stage"], r["name"], f"{r['medianSeconds'] * 1000:.3f} ms", f"±{spread:.1f}%",
                     "" if r["gflops"] is None else f"{r['gflops']:.1f}",
                     "" if r["itemsPerSecond"] is None else f"{r['itemsPerSecond']:.0f}",
                     f"{r['peakResidentMB']:.0f} MB"])
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------------------------------------
# models and inputs
# ---------------------------------------------------------------------------------------------

def clip_model(spec, attn, seed=1):
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(seed)
    config = CLIPConfig(text_config=dict(spec["text_config"]), vision_config=dict(spec["vision_config"]),
                        projection_dim=spec["projection_dim"])
    config._attn_implementation = attn
    model = CLIPModel(config).float().eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attn)
    assert model.config.text_config._attn_implementation == attn, model.config.text_config._attn_implementation
    assert model.config.vision_config._attn_implementation == attn
    return model


def pixels(batch, size):
    """BenchmarkModels.pixels: Float((i * 2654435761) % 4001) / 1000 - 2, [batch, 3, size, size]."""
    i = np.arange(batch * 3 * size * size, dtype=np.int64)
    values = ((i * 2_654_435_761) % 4001).astype(np.float32) / 1000 - 2
    return torch.from_numpy(values.reshape(batch, 3, size, size))


def vit_flops(vision_config, images):
    """BenchmarkModels.vitFlops: multiply-adds x2 of a ViT forward pass."""
    c = float(vision_config["hidden_size"])
    p = vision_config["patch_size"]
    t = float((vision_config["image_size"] // p) ** 2 + 1)
    i = float(vision_config["intermediate_size"])
    layers = float(vision_config["num_hidden_layers"])
    per_layer = 2 * t * c * (4 * c + 2 * i) + 2 * 2 * t * t * c
    patch = 2 * (t - 1) * c * float(3 * p * p)
    return images * (layers * per_layer + patch)


def reference_tokenizer():
    """What open_clip.get_tokenizer('ViT-L-14') returns: SimpleTokenizer(context_length=77)."""
    return open_clip_tokenizer_module().SimpleTokenizer(context_length=CONTEXT)


def load_list(filename):
    """clip-interrogator 0.6.0 load_list of the vendored list."""
    return load_label_list(os.path.join(DATA, filename))


def check_sites():
    """fixture_utils.REFERENCE_SITES is the installed clip_interrogator 0.6.0's (read, not imported:
    importing it pulls in open_clip's package __init__)."""
    spec = importlib.util.find_spec("clip_interrogator")
    if spec is None or not spec.submodule_search_locations:
        warnings.warn("clip_interrogator is not installed: trending sites not checked")
        return
    path = os.path.join(list(spec.submodule_search_locations)[0], "clip_interrogator.py")
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "sites" for t in node.targets):
            assert ast.literal_eval(node.value) == REFERENCE_SITES, "trending sites differ from clip_interrogator's"
            return
    raise AssertionError("no `sites` list in " + path)


def reference_tables():
    """The five tables the reference embeds, in its order (negative excluded)."""
    check_sites()
    raw_artists = load_list("artists.txt")
    artists = [f"by {a}" for a in raw_artists] + [f"inspired by {a}" for a in raw_artists]
    trendings = reference_trending_labels()
    return [("artists", artists), ("flavors", load_list("flavors.txt")), ("mediums", load_list("mediums.txt")),
            ("movements", load_list("movements.txt")), ("trendings", trendings)]


def sample(labels, count):
    """TextStages.sample: every (len // count)-th label, at most count of them."""
    step = max(1, len(labels) // count)
    return [labels[i] for i in range(0, len(labels), step)][:count]


# ---------------------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------------------

def sgemm_probe(runs):
    results = []
    for name, m, n, k in SGEMM_SHAPES:
        x = torch.from_numpy((np.arange(m * k) % 7).astype(np.float32) * 0.01).reshape(m, k)
        w = torch.from_numpy((np.arange(n * k) % 5).astype(np.float32) * 0.01).reshape(n, k)
        y = torch.empty(m, n)
        wt = w.t()
        flops = 2.0 * m * n * k
        # short products repeat so that one timed run lasts ~50 ms (Benchmark.swift's sgemmProbe)
        repeats = max(1, int(2.5e9 / flops / 20))
        results.append(measure("1 sgemm", name, runs, lambda: torch.mm(x, wt, out=y), flops=flops, repeats=repeats))
    return results


def clip_image_stage(runs, attn):
    results = []
    for name, spec in [("ViT-B/32", VIT_B32), ("ViT-L/14", VIT_L14)]:
        model = clip_model(spec, attn)
        vc = spec["vision_config"]
        for batch in [1, 8]:
            px = pixels(batch, vc["image_size"])

            def body():
                with torch.no_grad():
                    f = features(model.get_image_features(pixel_values=px))
                    f = f / f.norm(dim=-1, keepdim=True)
                return f

            results.append(measure("2 clip image", f"{name} batch {batch}", runs, body,
                                   flops=vit_flops(vc, batch), items=float(batch)))
        del model
    return results


def tokenize_like_label_table(tokenize, tables):
    """LabelTable.__init__'s tokenisation: per table, np.array_split into chunks of ~chunk_size,
    tokenize(chunk) -> [n, 77] int64."""
    out = []
    for _, labels in tables:
        for chunk in np.array_split(labels, max(1, len(labels) / CHUNK_SIZE)):
            out.append(tokenize(chunk))
    return out


def encode_text_normalised(model, tokens):
    """The reference's encode_text + `text_features /= text_features.norm(dim=-1, keepdim=True)`."""
    with torch.no_grad():
        f = features(model.get_text_features(input_ids=tokens))
        f /= f.norm(dim=-1, keepdim=True)
    return f


def label_stage(runs, sample_size, text_labels, attn):
    tables = reference_tables()
    labels = [label for _, table in tables for label in table]
    count = len(labels)
    fresh = reference_tokenizer()
    results = [measure("3 labels", f"tokenize {count} labels (first run, cold cache)", 1,
                       lambda: tokenize_like_label_table(fresh, tables), items=float(count), warmup=False)]
    tokenize = reference_tokenizer()
    results.append(measure("3 labels", f"tokenize {count} labels (warm cache)", runs,
                           lambda: tokenize_like_label_table(tokenize, tables), items=float(count)))
    model = clip_model(VIT_L14, attn)
    subset = sample(labels, sample_size)[:text_labels]
    tokens = tokenize(subset)
    assert tokens.shape == (len(subset), CONTEXT)
    # batches of chunk_size (one batch for the 2048-label sample), as LabelTable encodes
    batches = [tokens[i:i + CHUNK_SIZE] for i in range(0, len(subset), CHUNK_SIZE)]
    results.append(measure("3 labels", f"ViT-L/14 text, padded to 77, {len(subset)} labels", runs,
                           lambda: [encode_text_normalised(model, b) for b in batches], items=float(len(subset))))
    return results


def chain_step_stage(runs, candidates_count, attn):
    flavors = sample(load_list("flavors.txt"), 2048)[:candidates_count]
    candidates = [f"{CHAIN_PROMPT}, {f}" for f in flavors]
    tokenize = reference_tokenizer()
    model = clip_model(VIT_L14, attn)
    g = torch.Generator().manual_seed(3)
    image_features = torch.randn(1, VIT_L14["projection_dim"], generator=g)
    image_features /= image_features.norm(dim=-1, keepdim=True)

    def rank_top():
        # clip-interrogator 0.6.0 Interrogator.rank_top (reverse=False)
        text_tokens = tokenize([text for text in candidates])
        with torch.no_grad():
            text_features = features(model.get_text_features(input_ids=text_tokens))
            text_features /= text_features.norm(dim=-1, keepdim=True)
            similarity = text_features @ image_features.T
        return candidates[similarity.argmax().item()]

    return [measure("4 chain step", f"{len(candidates)} candidates, rank_top (tokenize, padded to 77, one batch)",
                    runs, rank_top, items=float(len(candidates)))]


def blip_stage(runs):
    from transformers import BlipConfig, BlipForConditionalGeneration
    torch.manual_seed(2)
    config = BlipConfig(text_config=dict(BLIP_LARGE["text_config"]), vision_config=dict(BLIP_LARGE["vision_config"]))
    model = BlipForConditionalGeneration(config).float().eval()
    px = pixels(1, 384)
    attn = f"vision {model.vision_model.config._attn_implementation}, text {model.text_decoder.config._attn_implementation}"
    print(f"  BLIP attention: {attn}", flush=True)

    def vision():
        with torch.no_grad():
            return model.vision_model(pixel_values=px).last_hidden_state

    results = [measure("5 blip", "BLIP-large vision tower (384², batch 1)", runs, vision, items=1.0)]
    for beams in [1, 3]:
        def generate(beams=beams):
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model.generate(pixel_values=px, max_new_tokens=20, min_new_tokens=20, num_beams=beams,
                                     do_sample=False)
            # BLIP's generate starts from [bos]: 1 + 20 tokens
            assert out.shape[-1] == 21, out.shape
            return out

        results.append(measure("5 blip", f"BLIP-large 20-token caption, {'greedy' if beams == 1 else f'{beams} beams'}",
                               runs, generate, items=1.0))

    def generate_one():
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.generate(pixel_values=px, max_new_tokens=1, min_new_tokens=1, num_beams=1, do_sample=False)
        assert out.shape[-1] == 2, out.shape
        return out

    one = measure("5 blip", "BLIP-large 1-token caption, greedy", runs, generate_one, items=1.0)
    results.append(one)
    # a greedy decoder step inside generate: (20-token - 1-token caption) / 19 (BlipStage.swift's decoderStep)
    twenty = results[1]
    step = dict(twenty)
    step["name"] = "BLIP-large decoder step, greedy ((20-token − 1-token caption) / 19)"
    step["medianSeconds"] = max(0.0, twenty["medianSeconds"] - one["medianSeconds"]) / 19
    step["minSeconds"] = max(0.0, twenty["minSeconds"] - one["maxSeconds"]) / 19
    step["maxSeconds"] = max(0.0, twenty["maxSeconds"] - one["minSeconds"]) / 19
    step["cpuMedianSeconds"] = max(0.0, twenty["cpuMedianSeconds"] - one["cpuMedianSeconds"]) / 19
    step["itemsPerSecond"] = 1 / step["medianSeconds"] if step["medianSeconds"] > 0 else None
    results.append(step)

    # one greedy decoder step on its own (BlipStage.swift's decoderStepAlone): token 11 after a cached
    # 10-token prefix, logits over the vocabulary and their argmax; the cache is cropped back after each step
    decoder = model.text_decoder
    with torch.no_grad():
        image_embeds = model.vision_model(pixel_values=px).last_hidden_state
        prefix = torch.tensor([[BLIP_LARGE["text_config"]["bos_token_id"]] + list(range(1000, 1009))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache = decoder(input_ids=prefix, encoder_hidden_states=image_embeds, use_cache=True).past_key_values
    token = torch.tensor([[1009]])

    def step_alone():
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = decoder(input_ids=token, encoder_hidden_states=image_embeds, past_key_values=cache, use_cache=True)
            best = out.logits[:, -1].argmax(-1)
        cache.crop(-1)
        assert cache.get_seq_length() == 10
        return best

    results.append(measure("5 blip", "BLIP-large decoder step alone (token 11 after a cached 10-token prefix, greedy)",
                           max(5, runs * 5), step_alone, items=1.0))
    return results


# ---------------------------------------------------------------------------------------------
# stage 6: the reference (clip-interrogator 0.6.0 itself) loading from files + one fast interrogation
# ---------------------------------------------------------------------------------------------

STAGE6_MODEL_NAME = "bench/ViT-L-14-synthetic"     # FullInterrogation.cacheModelName


def clip_preprocess_224(img):
    """open_clip's eval transform for OpenAI models (Resize(224, bicubic) on the shortest side,
    CenterCrop(224), convert("RGB"), ToTensor, Normalize), without torchvision (fixture_utils)."""
    return open_clip_eval_transform(img, 224)


def stage6_image():
    """FullInterrogation.run's 640x480 image: UInt8(truncatingIfNeeded: i &* 2654435761 >> 13);
    Swift's >> binds tighter than &*, so byte = (i * (2654435761 >> 13)) mod 256."""
    from PIL import Image
    i = np.arange(640 * 480 * 3, dtype=np.int64)
    pixels = ((i * (2_654_435_761 >> 13)) & 0xFF).astype(np.uint8).reshape(480, 640, 3)
    return Image.fromarray(pixels, "RGB")


def check_caches(cache_dir, tables):
    """Every table's cache must be a hit: a miss would make the reference embed the labels.
    Reads only the hash and the embeddings' shape (the peak RSS is measured afterwards)."""
    import hashlib
    from safetensors import safe_open
    sanitized = STAGE6_MODEL_NAME.replace("/", "_").replace("@", "_")
    for name, labels in tables:
        path = os.path.join(cache_dir, f"{sanitized}_{name}.safetensors")
        if not os.path.exists(path):
            sys.exit(f"pytorch_bench.py: stage 6: {path} is missing (interrogate-bench --write-checkpoints DIR)")
        digest = hashlib.sha256(",".join(labels).encode()).hexdigest()
        with safe_open(path, framework="np") as f:
            stored_hash = f.get_tensor("hash")
            rows = f.get_slice("embeds").get_shape()[0]
        if not np.array_equal(stored_hash, np.array([ord(c) for c in digest], dtype=np.int8)) or rows != len(labels):
            sys.exit(f"pytorch_bench.py: stage 6: {path} does not match the reference's {name} table")


def load_reference_interrogator(checkpoints, attn):
    """The reference's Interrogator over the checkpoint folder's models and label caches (both models
    from the folder, the processor, its label tables from the caches). Returns (interrogator, seconds to
    load, peak RSS after loading); imports are not timed (the Swift side's load starts in a running
    process too)."""
    directory = os.path.abspath(checkpoints)
    tables = reference_tables() + [("negative", load_list("negative.txt"))]
    check_caches(os.path.join(directory, "cache"), tables)
    install_open_clip_standin(CONTEXT)
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor, CLIPConfig, CLIPModel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import clip_interrogator.clip_interrogator as ci_mod
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The folders' config.json carry only the shape fields (no model_type): read them with the
        # model's own config class, as from_pretrained does for a real checkpoint.
        clip_config = CLIPConfig.from_pretrained(os.path.join(directory, "clip"))
        clip_config._attn_implementation = attn
        hf_clip, clip_info = CLIPModel.from_pretrained(os.path.join(directory, "clip"), config=clip_config,
                                                       dtype=torch.float32, attn_implementation=attn,
                                                       output_loading_info=True)
        hf_clip.eval()
        blip_config = BlipConfig.from_pretrained(os.path.join(directory, "blip"))
        blip, blip_info = BlipForConditionalGeneration.from_pretrained(os.path.join(directory, "blip"),
                                                                       config=blip_config, dtype=torch.float32,
                                                                       output_loading_info=True)
        blip.eval()
        processor = BlipProcessor.from_pretrained(os.path.join(directory, "blip"))
        cfg = ci_mod.Config(clip_model_name=STAGE6_MODEL_NAME, cache_path=os.path.join(directory, "cache"),
                            download_cache=False, device="cpu", quiet=True)
        cfg.clip_model, cfg.clip_preprocess = OpenClipLikeCLIP(hf_clip), clip_preprocess_224
        cfg.caption_model, cfg.caption_processor = blip, processor
        ci = ci_mod.Interrogator(cfg)
    loaded = time.perf_counter()
    load_peak = peak_resident_mb()
    for label, info in [("CLIP", clip_info), ("BLIP", blip_info)]:
        missing, unexpected = list(info.get("missing_keys", [])), list(info.get("unexpected_keys", []))
        print(f"  {label} checkpoint: {len(missing)} missing {missing[:4]}, {len(unexpected)} unexpected "
              f"{unexpected[:4]}", flush=True)
    for name, labels in tables:
        assert len(getattr(ci, name).embeds) == len(labels), name
    return ci, loaded - start, load_peak


def single_measurement(stage, name, seconds, peak, items=None):
    return {"stage": stage, "name": name, "runs": 1, "medianSeconds": seconds, "minSeconds": seconds,
            "maxSeconds": seconds, "gflops": None, "itemsPerSecond": None if items is None else items / seconds,
            "peakResidentMB": peak}


def full_interrogation_stage(checkpoints, attn):
    """Load time and one interrogate_fast on a 640x480 image."""
    ci, load_seconds, load_peak = load_reference_interrogator(checkpoints, attn)
    image = stage6_image()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prompt = ci.interrogate_fast(image)
    done = time.perf_counter()
    print(f"  prompt: {prompt[:120]}...", flush=True)
    stage = "6 full interrogation"
    return [single_measurement(stage, STAGE6_LOAD, load_seconds, load_peak),
            single_measurement(stage, STAGE6_FAST, done - start, peak_resident_mb(), items=1.0)]


def throughput_image(k):
    """Throughput.image(k) of the Swift side: byte i = ((i + 7919k) * (2654435761 >> 13)) mod 256."""
    from PIL import Image
    i = np.arange(640 * 480 * 3, dtype=np.int64) + 7919 * k
    pixels = ((i * (2_654_435_761 >> 13)) & 0xFF).astype(np.uint8).reshape(480, 640, 3)
    return Image.fromarray(pixels, "RGB")


def throughput_stage(checkpoints, attn, count, modes):
    """The reference's own per-image loop over `count` images in each mode (generate_caption,
    interrogate_fast, interrogate_classic: each captions and embeds its image itself)."""
    ci, _, _ = load_reference_interrogator(checkpoints, attn)
    images = [throughput_image(k) for k in range(count)]
    methods = {"caption": ci.generate_caption, "fast": ci.interrogate_fast, "classic": ci.interrogate_classic}
    results = []
    for mode in modes:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for image in images:
                methods[mode](image)
        seconds = time.perf_counter() - start
        results.append(single_measurement("7 throughput", f"{mode} mode, {count} images, per-image loop", seconds,
                                          peak_resident_mb(), items=float(count)))
    return results


STAGE6_LOAD = "load ViT-L/14 + BLIP-large + label caches from files"
STAGE6_FAST = "fast-mode interrogation, one 640x480 image"


# ---------------------------------------------------------------------------------------------

def metadata(threads):
    import transformers
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": threads, "torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas": "MKL" if torch.backends.mkl.is_available() else "other",
            "mkldnn": torch.backends.mkldnn.is_available(),
            "torch_config": torch.__config__.show(), "parallel_info": torch.__config__.parallel_info(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "env": {k: os.environ.get(k) for k in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                   "OPENBLAS_L2_SIZE", "KMP_AFFINITY", "MKL_ENABLE_INSTRUCTIONS"]}}


def main():
    parser = argparse.ArgumentParser(description="PyTorch side of interrogate-bench")
    parser.add_argument("--stage", help="run one stage (1-5; 6 and 7 only when named, with --checkpoints)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch.set_num_threads (default: the number of processors, as the Swift side)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", help="write the measurements here (the Swift side's schema)")
    parser.add_argument("--meta", help="write machine / library metadata here (JSON)")
    parser.add_argument("--text-labels", type=int, default=256,
                        help="stage 3: how many of the 2048-label sample to embed padded to 77 "
                             "(default 256, the Swift side's padded count; 2048 = the reference's full chunk)")
    parser.add_argument("--chain-candidates", type=int, default=2048,
                        help="stage 4: candidates in the rank_top batch (default 2048, the reference's)")
    parser.add_argument("--clip-attn", default="eager", choices=["eager", "sdpa"])
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="stages 6 and 7 (only when named): the folder interrogate-bench --write-checkpoints DIR wrote")
    parser.add_argument("--throughput-images", type=int, default=16, help="stage 7: images per mode (default 16)")
    parser.add_argument("--throughput-modes", default="caption,fast,classic", help="stage 7: modes (default %(default)s)")
    args = parser.parse_args()

    threads = max(1, args.threads)
    torch.set_num_threads(threads)
    meta = metadata(threads)
    print(f"threads: {threads}; torch {torch.__version__} ({meta['blas']}, {meta['cpu_capability']}); "
          f"transformers {meta['transformers']}; CLIP attention {args.clip_attn}", flush=True)
    if args.meta:
        with open(args.meta, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)

    def wanted(s):
        return args.stage is None or args.stage == s

    model_runs = max(2, args.runs // 3)
    results = []
    if wanted("1"):
        results += sgemm_probe(args.runs)
    if wanted("2"):
        results += clip_image_stage(model_runs, args.clip_attn)
    if wanted("3"):
        results += label_stage(model_runs, 2048, args.text_labels, args.clip_attn)
    if wanted("4"):
        results += chain_step_stage(model_runs, args.chain_candidates, args.clip_attn)
    if wanted("5"):
        results += blip_stage(model_runs)
    if args.stage == "6":
        if not args.checkpoints:
            parser.error("--stage 6 needs --checkpoints DIR (written by interrogate-bench --write-checkpoints DIR)")
        results += full_interrogation_stage(args.checkpoints, args.clip_attn)
    if args.stage == "7":
        if not args.checkpoints:
            parser.error("--stage 7 needs --checkpoints DIR (written by interrogate-bench --write-checkpoints DIR)")
        results += throughput_stage(args.checkpoints, args.clip_attn, args.throughput_images,
                                    args.throughput_modes.split(","))
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
