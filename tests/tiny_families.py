"""Tiny PaliGemma and LLaVA-NeXT checkpoints built on the spot: real architecture classes, random weights, a
tokenizer trained here with the families' real special tokens, the real (PIL) image processors.

- PaliGemma: SigLIP vision tower (224-px squares, patch 14 -> 256 image tokens) + Gemma decoder; a
  `GemmaTokenizer` (BPE with byte fallback, Gemma's `▁` spaces) with `<pad> <eos> <bos> <unk> <mask>` first
  (ids 0-4 as in Gemma), then `<loc0000>`..`<loc1023>` and `<seg000>`..`<seg127>` in their real order, then
  `<image>`; `PaliGemmaProcessor` + `SiglipImageProcessorPil` (size 224x224, image_seq_length 256).
- LLaVA-NeXT: CLIP vision tower (336-px crops, patch 14) + Llama decoder; a Llama-style BPE tokenizer with
  `<unk> <s> </s>` and `<image>`; `LlavaNextProcessor` + `LlavaNextImageProcessorPil` (pinpoints of llava-v1.6).
Widths >= 64. Text is garbage; loading, preprocessing, generation and token counts are real.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "detect text line ; each line's text",
    "Transcribe all the text in the image exactly as printed, one text line per output line.",
    "Invoice No. 2024-0117 Date: 12/03/2024 Total amount due: 1,234.56 EUR",
    "Qty Description Unit price Amount VAT 20% Subtotal Grand total Cash Change",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?()[]{}<>\"'-_/\\@#$%&*+=",
]
HIDDEN = 64


def _bpe(specials: list[str], space: str | None, vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace() if space is None else pre_tokenizers.Split(
        pattern=space, behavior="merged_with_previous")
    bytes_ = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size + 256, special_tokens=specials + bytes_, show_progress=False)
    corpus = [c.replace(" ", space) if space else c for c in _CORPUS] * 8
    bpe.train_from_iterator(corpus, trainer)
    import json

    spec = json.loads(bpe.to_str())
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    return spec["model"]["vocab"], merges


def build_tiny_paligemma(out_dir: Path, *, side: int = 224, seed: int = 0) -> Path:
    """A tiny PaliGemma checkpoint at `side` (224 keeps CPU tests fast: 256 image tokens)."""
    import torch
    from transformers import (
        AddedToken,
        GemmaTokenizer,
        GenerationConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = _bpe(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], "▁")
    tok = GemmaTokenizer(vocab=vocab, merges=merges)
    tok.add_tokens([AddedToken(f"<loc{i:04d}>", special=False, normalized=False) for i in range(1024)]
                   + [AddedToken(f"<seg{i:03d}>", special=False, normalized=False) for i in range(128)])
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<image>", normalized=False, special=True)]})
    tokens = (side // 14) ** 2
    ip = SiglipImageProcessorPil(size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                 resample=3)
    ip.image_seq_length = tokens
    processor = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)
    vocab_size = ((len(processor.tokenizer) + 63) // 64) * 64
    config = PaliGemmaConfig(
        vision_config={"model_type": "siglip_vision_model", "hidden_size": HIDDEN, "intermediate_size": 128,
                       "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": side, "patch_size": 14,
                       "projection_dim": HIDDEN},
        text_config={"model_type": "gemma", "vocab_size": vocab_size, "hidden_size": HIDDEN,
                     "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 2048},
        image_token_id=processor.image_token_id, projection_dim=HIDDEN,
    )
    config.text_config.pad_token_id = tok.pad_token_id
    config.text_config.eos_token_id = tok.eos_token_id
    config.text_config.bos_token_id = tok.bos_token_id
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST] {% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    " [/INST]{% elif message['role'] == 'system' %}{% for c in message['content'] %}{{ c['text'] }}\n{% endfor %}"
    "{% else %}{% for c in message['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
)
"""llava-v1.6-mistral's [INST] format, with the image placeholder first in the user turn."""


def build_tiny_llava_next(out_dir: Path, *, seed: int = 0) -> Path:
    """A tiny LLaVA-NeXT checkpoint (CLIP 336-px crops, llava-v1.6 pinpoints) with a Llama-style tokenizer."""
    import torch
    from transformers import (
        AddedToken,
        GenerationConfig,
        LlamaTokenizer,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab, merges = _bpe(["<unk>", "<s>", "</s>"], "▁")
    tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<image>", normalized=False, special=True)]})
    tok.pad_token = "<unk>"
    tok.chat_template = LLAVA_CHAT_TEMPLATE
    pins = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    ip = LlavaNextImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                    image_grid_pinpoints=pins, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=LLAVA_CHAT_TEMPLATE)
    vocab_size = ((len(tok) + 63) // 64) * 64
    config = LlavaNextConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": HIDDEN, "intermediate_size": 128,
                       "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 336, "patch_size": 14,
                       "projection_dim": HIDDEN},
        text_config={"model_type": "llama", "vocab_size": vocab_size, "hidden_size": HIDDEN,
                     "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 8192},
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_grid_pinpoints=pins,
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )
    config.text_config.pad_token_id = tok.pad_token_id
    config.text_config.eos_token_id = tok.eos_token_id
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_florence2(out_dir: Path, *, seed: int = 0) -> Path:
    """A tiny Florence-2 checkpoint (DaViT at 768 px -> 24x24 + 1 = 577 image tokens, BART encoder-decoder) with
    a byte-level BPE `BartTokenizer` (`<s> <pad> </s> <unk>` first as in BART), `<image>` as its image token,
    the 1000 `<loc_N>` tokens and the task tokens; `CLIPImageProcessorPil` resizing to 768x768 without a crop."""
    import json

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        AddedToken,
        BartTokenizer,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        GenerationConfig,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    bpe.train_from_iterator(_CORPUS * 8, trainer)
    spec = json.loads(bpe.to_str())
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    tok = BartTokenizer(vocab=spec["model"]["vocab"], merges=merges, extra_special_tokens={"image_token": "<image>"})
    tok.add_tokens([AddedToken(f"<loc_{i}>", normalized=False) for i in range(1000)])
    tok.add_tokens(["<OCR_WITH_REGION>", "<OD>", "<CAPTION_TO_PHRASE_GROUNDING>"])
    ip = CLIPImageProcessorPil(size={"height": 768, "width": 768}, crop_size={"height": 768, "width": 768},
                               do_center_crop=False, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    ip.image_seq_length = 577
    processor = Florence2Processor(image_processor=ip, tokenizer=tok, num_additional_image_tokens=1)
    vocab_size = ((len(tok) + 63) // 64) * 64
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "decoder_start_token_id": tok.eos_token_id}
    config = Florence2Config(
        vision_config={"depths": [1, 1, 1, 1], "embed_dim": [32, 32, 64, 64], "num_heads": [1, 1, 2, 2],
                       "num_groups": [1, 1, 2, 2], "projection_dim": HIDDEN, "window_size": 12},
        text_config={"model_type": "bart", "vocab_size": vocab_size, "d_model": HIDDEN, "encoder_layers": 1,
                     "decoder_layers": 1, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                     "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "max_position_embeddings": 1024, **ids},
        image_token_id=tok.image_token_id,
    )
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(do_sample=False, **ids)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
