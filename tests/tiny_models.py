"""Tiny Qwen-VL checkpoints built on the spot: real architecture classes, random weights, a real tokenizer.

Each family gets a checkpoint folder written with `save_pretrained` and read back through the real
`from_pretrained` path by the hf engine: config (few small layers, widths >= 64 so bitsandbytes' CPU kernels
accept them), random weights, a byte-level BPE tokenizer trained here on a small corpus and wrapped in
`Qwen2Tokenizer` with the real Qwen special tokens in their real order, Qwen2-VL's chat template, and the PIL
image processor. Text is garbage; the loading, preprocessing, generation and token counts are real.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_FAMILIES: tuple[str, ...] = ("qwen2", "qwen2.5", "qwen3")

SPECIAL_TOKENS: tuple[str, ...] = (
    # The real Qwen2-VL added tokens, in id order (151643 .. 151656 in the released tokenizers).
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Invoice No. 2024-0117  Date: 12/03/2024  Total amount due: 1,234.56 EUR",
    "Qty Description Unit price Amount VAT 20% Subtotal Grand total Cash Change",
    'Read all text lines. Answer in JSON: [{"bbox_2d": [x1, y1, x2, y2], "text_content": "..."}]',
    '```json\n[{"bbox_2d": [12, 40, 388, 71], "text_content": "TOTAL 12.50"}]\n```',
    "<|object_ref_start|>the total<|object_ref_end|><|box_start|>(120,340),(560,380)<|box_end|>",
    '<p data-bbox="10 20 300 40">Thank you for shopping with us</p>',
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?()[]{}<>\"'-_/\\@#$%&*+=",
]

_HIDDEN = 64  # bitsandbytes' CPU 4-bit path wants layer widths >= 64
_HEADS = 4
_HEAD_DIM = _HIDDEN // _HEADS  # 16 -> mrope_section must sum to 8


def build_tokenizer(out_dir: Path):
    """Train a byte-level BPE on the small corpus and wrap it as a Qwen2Tokenizer with the real special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=480, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[], show_progress=False
    )
    bpe.train_from_iterator(_CORPUS * 8, trainer)
    spec = json.loads(bpe.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    # No default eos/pad/unk at construction: the special tokens must get ids in their real order.
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=None, pad_token=None, unk_token=None)
    tok.add_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL_TOKENS], special_tokens=True)
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE
    tok.save_pretrained(out_dir)
    return tok


def _text_config(vocab_size: int, family: str) -> dict:
    cfg = {
        "vocab_size": vocab_size,
        "hidden_size": _HIDDEN,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": _HEADS,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    }
    if family == "qwen3":
        cfg["head_dim"] = _HEAD_DIM
        cfg["rope_parameters"] = {
            "rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [4, 2, 2], "mrope_interleaved": True,
        }
    else:
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}
    return cfg


def _vision_config(family: str) -> dict:
    if family == "qwen2":
        return {"depth": 1, "embed_dim": _HIDDEN, "hidden_size": _HIDDEN, "num_heads": _HEADS, "mlp_ratio": 2,
                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if family == "qwen2.5":
        return {"depth": 2, "hidden_size": _HIDDEN, "intermediate_size": 128, "num_heads": _HEADS,
                "out_hidden_size": _HIDDEN, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                "window_size": 112, "fullatt_block_indexes": [1]}
    return {"depth": 2, "hidden_size": _HIDDEN, "intermediate_size": 128, "num_heads": _HEADS,
            "out_hidden_size": _HIDDEN, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "num_position_embeddings": 144, "deepstack_visual_indexes": [0]}


def build_tiny_checkpoint(family: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write a tiny random checkpoint of `family` ("qwen2", "qwen2.5", "qwen3") into `out_dir`; return it."""
    import torch
    from transformers import GenerationConfig, Qwen2VLImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out_dir)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    vocab_size = ((len(tok) + 63) // 64) * 64
    common = {
        "text_config": _text_config(vocab_size, family),
        "vision_config": _vision_config(family),
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
    }
    if family == "qwen2":
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
    elif family == "qwen2.5":
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
    elif family == "qwen3":
        from transformers import Qwen3VLConfig as Config
        from transformers import Qwen3VLForConditionalGeneration as Model
    else:
        raise ValueError(f"unknown family {family!r}")
    config = Config(**common)
    config.text_config.bos_token_id = ids["<|endoftext|>"]
    config.text_config.eos_token_id = ids["<|im_end|>"]
    config.text_config.pad_token_id = ids["<|endoftext|>"]
    torch.manual_seed(seed)
    model = Model(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    model.save_pretrained(out_dir)
    patch = 16 if family == "qwen3" else 14
    mean_std = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]} if family == "qwen3" else {}
    # Deliberately narrow defaults (16..64 tokens): an image reaches the model unresized only because the
    # engine passes its own per-call size budget, which the tests check through image_grid_thw.
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch, merge_size=2, temporal_patch_size=2,
        min_pixels=(patch * 2) ** 2 * 16, max_pixels=(patch * 2) ** 2 * 64, **mean_std,
    )
    image_processor.save_pretrained(out_dir)
    (out_dir / "chat_template.jinja").write_text(QWEN2_VL_CHAT_TEMPLATE)
    return out_dir
