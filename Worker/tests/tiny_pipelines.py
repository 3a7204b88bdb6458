"""Tiny random-weight pipelines of every family the worker runs, built in code (no downloads).

They have the real pipelines' structure (text encoders, tokenizers, VAE with a scale factor of 8, UNet or
SD3 transformer, the real repos' scheduler configs) at a few megabytes, so the worker's own
`from_pretrained`, scheduler mapping, img2img and refiner code run on them unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    PNDMScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

# The scheduler configs of the real repos, including the keys their constructors reject but
# `from_config` of other scheduler classes reads (written into the JSON after saving).
SD15_SCHEDULER_EXTRA = {"clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True}
SDXL_SCHEDULER_EXTRA = {"clip_sample": False, "set_alpha_to_one": False, "sample_max_value": 1.0,
                        "skip_prk_steps": True, "interpolation_type": "linear"}


def _seeded(seed: int, build):
    torch.manual_seed(seed)
    return build().eval()


def _byte_unicode() -> list[str]:
    # GPT-2's reversible byte -> printable character table, which CLIP's BPE works on.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def clip_tokenizer(folder: Path, pad_token: str) -> None:
    """A CLIP tokenizer with single-character tokens, saved as the real repos do (vocab.json, merges.txt)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _byte_unicode():
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                  pad_token=pad_token, model_max_length=77).save_pretrained(folder)


def _clip_config() -> CLIPTextConfig:
    return CLIPTextConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                          vocab_size=1000, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=1,
                          max_position_embeddings=77)


def _vae(latent_channels: int, scaling_factor: float, shift_factor: float | None = None,
         quant_conv: bool = True) -> AutoencoderKL:
    # Four blocks keep the real VAE scale factor of 8.
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4, sample_size=64,
        scaling_factor=scaling_factor, shift_factor=shift_factor,
        use_quant_conv=quant_conv, use_post_quant_conv=quant_conv)


def _patch_scheduler_config(folder: Path, extra: dict) -> None:
    path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(path.read_text())
    config.update(extra)
    path.write_text(json.dumps(config, indent=2))


def build_sd15(folder: Path) -> Path:
    clip_tokenizer(folder / "tokenizer", pad_token="<|endoftext|>")
    pipe = StableDiffusionPipeline(
        vae=_seeded(1, lambda: _vae(4, 0.18215)),
        text_encoder=_seeded(2, lambda: CLIPTextModel(_clip_config())),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        unet=_seeded(3, lambda: UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)),
        scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                num_train_timesteps=1000, steps_offset=1, skip_prk_steps=True),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    _patch_scheduler_config(folder, SD15_SCHEDULER_EXTRA)
    return folder


def _sdxl_unet(cross_attention_dim: int, time_ids: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=time_ids * 8 + 32, cross_attention_dim=cross_attention_dim,
        norm_num_groups=1)


def _sdxl_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")


def build_sdxl_base(folder: Path, seed: int = 10) -> Path:
    clip_tokenizer(folder / "tokenizer", pad_token="<|endoftext|>")
    clip_tokenizer(folder / "tokenizer_2", pad_token="!")
    pipe = StableDiffusionXLPipeline(
        vae=_seeded(seed + 1, lambda: _vae(4, 0.13025)),
        text_encoder=_seeded(seed + 2, lambda: CLIPTextModel(_clip_config())),
        text_encoder_2=_seeded(seed + 3, lambda: CLIPTextModelWithProjection(_clip_config())),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
        unet=_seeded(seed + 4, lambda: _sdxl_unet(cross_attention_dim=64, time_ids=6)),
        scheduler=_sdxl_scheduler())
    pipe.save_pretrained(folder)
    _patch_scheduler_config(folder, SDXL_SCHEDULER_EXTRA)
    return folder


def build_sdxl_refiner(folder: Path) -> Path:
    clip_tokenizer(folder / "tokenizer_2", pad_token="!")
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=_seeded(21, lambda: _vae(4, 0.13025)),
        text_encoder=None, tokenizer=None,
        text_encoder_2=_seeded(22, lambda: CLIPTextModelWithProjection(_clip_config())),
        tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
        # The refiner conditions on an aesthetic score instead of the target size: 5 time ids, not 6.
        unet=_seeded(23, lambda: _sdxl_unet(cross_attention_dim=32, time_ids=5)),
        scheduler=_sdxl_scheduler(), requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    pipe.save_pretrained(folder)
    _patch_scheduler_config(folder, SDXL_SCHEDULER_EXTRA)
    return folder


def _t5_tokenizer(folder: Path) -> T5Tokenizer:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for code in range(33, 127):
        pieces.append((chr(code), -5.0))
        pieces.append(("▁" + chr(code), -4.0))
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=100)
    tokenizer.save_pretrained(folder)
    return T5Tokenizer.from_pretrained(folder)


def build_sd3(folder: Path, with_t5: bool = True) -> Path:
    clip_tokenizer(folder / "tokenizer", pad_token="<|endoftext|>")
    clip_tokenizer(folder / "tokenizer_2", pad_token="!")
    text_encoder_3 = tokenizer_3 = None
    if with_t5:
        tokenizer_3 = _t5_tokenizer(folder / "tokenizer_3")
        text_encoder_3 = _seeded(34, lambda: T5EncoderModel(T5Config(
            d_model=64, d_ff=64, d_kv=8, num_layers=1, num_heads=4, vocab_size=400)))
    pipe = StableDiffusion3Pipeline(
        vae=_seeded(31, lambda: _vae(16, 1.5305, shift_factor=0.0609, quant_conv=False)),
        text_encoder=_seeded(32, lambda: CLIPTextModelWithProjection(_clip_config())),
        text_encoder_2=_seeded(33, lambda: CLIPTextModelWithProjection(_clip_config())),
        text_encoder_3=text_encoder_3,
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(folder / "tokenizer_2"),
        tokenizer_3=tokenizer_3,
        transformer=_seeded(35, lambda: SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
            attention_head_dim=8, num_attention_heads=4, joint_attention_dim=64,
            caption_projection_dim=32, pooled_projection_dim=64, pos_embed_max_size=32)),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.save_pretrained(folder)
    return folder


# A models file over the pipelines `build_all` saves, relative to their root.
MODELS_YAML = """\
weights:
  sd15: { kind: sd1.5, source: ./sd15 }
  sdxl-base: { kind: sdxl, source: ./sdxl-base }
  sdxl-other: { kind: sdxl, source: ./sdxl-other }
  sdxl-refiner: { kind: sdxl-refiner, source: ./sdxl-refiner }
  sd3: { kind: sd3, source: ./sd3 }
  sd3-no-t5: { kind: sd3, source: ./sd3, text_encoder_3: false }
models:
  sd1.5-img2img: { weights: sd15 }
  sdxl-img2img:
    base_models: { juggernaut: sdxl-other, sdxl: sdxl-base }
    default_base_model: juggernaut
  sdxl1.0-txt2img: { weights: sdxl-base, refiner: sdxl-refiner }
  sdxl-no-refiner: { weights: sdxl-base }
  sd3-med-img2img: { weights: sd3-no-t5 }
  sd3-with-t5: { weights: sd3 }
"""


def build_all(root: Path) -> dict[str, Path]:
    """Builds and saves every tiny pipeline under `root`; returns their folders by weights name."""
    return {
        "sd15": build_sd15(root / "sd15"),
        "sdxl-base": build_sdxl_base(root / "sdxl-base"),
        # A second SDXL base with other weights, so `base_model` visibly chooses between two.
        "sdxl-other": build_sdxl_base(root / "sdxl-other", seed=50),
        "sdxl-refiner": build_sdxl_refiner(root / "sdxl-refiner"),
        "sd3": build_sd3(root / "sd3"),
    }
